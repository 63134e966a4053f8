/**
 * The baseline: a relay written the way a user would write one with `ws` (its README's broadcast
 * example, with rooms): rooms in a Map keyed by the URL path, `JSON.parse` of every message to
 * see what it is, `ws.send` of the same data to every other client of the room. It greets each
 * client with a `connected`-like message so that the same load generator can drive it.
 *
 *     PORT=0 node --import tsx bench/naive_server.ts    prints `naive listening on <port>`
 */
import { randomUUID } from 'node:crypto';
import { WebSocketServer, WebSocket } from 'ws';

const rooms = new Map<string, Set<WebSocket>>();
const wss = new WebSocketServer({ port: Number(process.env.PORT ?? 0), host: '127.0.0.1' });

wss.on('connection', (ws, request) => {
  const room = request.url ?? '/';
  let members = rooms.get(room);
  if (!members) {
    members = new Set();
    rooms.set(room, members);
  }
  members.add(ws);
  const id = randomUUID();
  ws.send(JSON.stringify({ operation: 'connected', data: { id, mode: 'edit', version: 0 } }));

  ws.on('message', (data, isBinary) => {
    let message: { operation?: string };
    try {
      message = JSON.parse(data.toString());
    } catch {
      return;
    }
    if (message.operation !== 'insert_value' && message.operation !== 'create_selection') return;
    for (const client of members) {
      if (client !== ws && client.readyState === WebSocket.OPEN) client.send(data, { binary: isBinary });
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
