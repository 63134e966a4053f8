/**
 * The floor: the least a relay on `ws` can do per delivery, to tell what any server on this
 * runtime and machine must spend. Rooms keyed by URL path like the naive relay, but no parse at
 * all, and each message framed once and written to every other socket of its room as one
 * pre-framed buffer (this server's fast path, without anything else it does). No thread, no
 * ordering, no validation, no store: not a server anyone should run.
 *
 *     PORT=0 node --import tsx bench/floor_relay.ts    prints `naive listening on <port>`
 */
import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import * as wsModule from 'ws';
import { WebSocketServer, type WebSocket } from 'ws';

type FrameFn = (data: Buffer, options: { fin: boolean; opcode: number; mask: boolean; readOnly: boolean; rsv1: boolean }) => Buffer[];
const frame = (wsModule as unknown as { Sender: { frame: FrameFn } }).Sender.frame;
const TEXT = { fin: true, opcode: 0x01, mask: false, readOnly: true, rsv1: false };

const rooms = new Map<string, Set<WebSocket>>();
const wss = new WebSocketServer({ port: Number(process.env.PORT ?? 0), host: '127.0.0.1' });

wss.on('connection', (ws, request) => {
  const room = request.url ?? '/';
  let members = rooms.get(room);
  if (!members) rooms.set(room, (members = new Set()));
  members.add(ws);
  ws.send(JSON.stringify({ operation: 'connected', data: { id: randomUUID(), mode: 'edit', version: 0 } }));
  ws.on('message', (data) => {
    const framed = Buffer.concat(frame(data as Buffer, TEXT));
    for (const client of members) {
      if (client !== ws && client.readyState === 1) (client as unknown as { _socket: Socket })._socket.write(framed);
    }
  });
  ws.on('close', () => {
    members.delete(ws);
    if (members.size === 0) rooms.delete(room);
  });
  ws.on('error', () => {});
});

wss.on('listening', () => {
  const address = wss.address();
  process.stdout.write(`naive listening on ${typeof address === 'object' && address ? address.port : address}\n`);
});
