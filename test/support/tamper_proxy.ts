/**
 * A WebSocket proxy in front of a real server that misbehaves when told to, so that tests can
 * show the stress tool catching it: it copies one codespace's `insert_value` frames to a client
 * of another (cross-talk), or drops every `insert_value` to a codespace's clients (loss).
 */
import type { IncomingMessage } from 'node:http';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import { decodeServerFrame, encodeMessage } from '../../src/protocol/codec.ts';
import { SUBPROTOCOL_MSGPACK, type Codec } from '../../src/protocol/messages.ts';

export interface TamperProxy {
  /** `ws://127.0.0.1:<port>`: a server base for clients. */
  readonly url: string;
  /** Copies every insert_value the first client of `from` gets to the first client of `to`. */
  crossTalk(from: string, to: string): void;
  /** Drops every insert_value to clients of `token` from now on (their own acks still pass). */
  dropInserts(token: string): void;
  /** Frames tampered with so far: copied plus dropped. */
  readonly tampered: number;
  close(): Promise<void>;
}

interface Leg {
  token: string;
  codec: Codec;
  downstream: WebSocket;
}

function tokenOf(url: string | undefined): string {
  const match = /^\/codespace\/([^/?]+)/.exec(url ?? '');
  return match ? decodeURIComponent(match[1]) : '';
}

/** Close codes a peer may not send (1005, 1006, 1015) become a plain 1000. */
function sendableCode(code: number): number {
  return code === 1005 || code === 1006 || code === 1015 || code < 1000 ? 1000 : code;
}

export async function startTamperProxy(target: string): Promise<TamperProxy> {
  const legs: Leg[] = [];
  const copies = new Map<string, string>();
  const drops = new Set<string>();
  let tampered = 0;
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false, handleProtocols: (protocols) => [...protocols][0] ?? false });

  const firstLeg = (token: string): Leg | undefined => legs.find((leg) => leg.token === token && leg.downstream.readyState === WebSocket.OPEN);

  function forward(leg: Leg, data: RawData, isBinary: boolean): void {
    const bytes = Buffer.isBuffer(data) ? data : Buffer.from(data as ArrayBuffer);
    const message = decodeServerFrame(isBinary ? new Uint8Array(bytes) : bytes.toString('utf8'), leg.codec) as Record<string, unknown>;
    if (message.operation === 'insert_value') {
      if (drops.has(leg.token)) {
        tampered++;
        return;
      }
      const to = copies.get(leg.token);
      const target = to === undefined || firstLeg(leg.token) !== leg ? undefined : firstLeg(to);
      if (target) {
        tampered++;
        const copy = encodeMessage(message, target.codec);
        target.downstream.send(target.codec === 'json' ? Buffer.from(copy).toString('utf8') : copy, { binary: target.codec === 'msgpack' });
      }
    }
    leg.downstream.send(bytes, { binary: isBinary });
  }

  server.on('connection', function proxyOnConnection(downstream: WebSocket, request: IncomingMessage) {
    const leg: Leg = { token: tokenOf(request.url), codec: downstream.protocol === SUBPROTOCOL_MSGPACK ? 'msgpack' : 'json', downstream };
    legs.push(leg);
    const upstream = new WebSocket(`${target}${request.url}`, downstream.protocol ? [downstream.protocol] : [], { perMessageDeflate: false });
    const waiting: { data: RawData; isBinary: boolean }[] = [];
    upstream.on('open', function upstreamOnOpen() {
      for (const frame of waiting.splice(0)) upstream.send(frame.data, { binary: frame.isBinary });
    });
    upstream.on('message', function upstreamOnMessage(data, isBinary) {
      if (downstream.readyState === WebSocket.OPEN) forward(leg, data, isBinary);
    });
    upstream.on('close', (code, reason) => downstream.close(sendableCode(code), reason));
    upstream.on('error', () => downstream.terminate());
    downstream.on('message', function downstreamOnMessage(data, isBinary) {
      if (upstream.readyState === WebSocket.OPEN) upstream.send(data, { binary: isBinary });
      else waiting.push({ data, isBinary });
    });
    downstream.on('close', function downstreamOnClose(code, reason) {
      const index = legs.indexOf(leg);
      if (index >= 0) legs.splice(index, 1);
      if (upstream.readyState === WebSocket.CONNECTING) upstream.terminate();
      else upstream.close(sendableCode(code), reason);
    });
    downstream.on('error', () => upstream.terminate());
  });

  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  const { port } = server.address() as { port: number };
  return {
    url: `ws://127.0.0.1:${port}`,
    crossTalk(from, to) {
      copies.set(from, to);
    },
    dropInserts(token) {
      drops.add(token);
    },
    get tampered() {
      return tampered;
    },
    async close() {
      for (const client of server.clients) client.terminate();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
