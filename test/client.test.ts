/** The client SDK against a real server: convergence through disconnects, resume and resync. */
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer, type WebSocket } from 'ws';
import { connect, type WebSocketConstructor } from '../src/client/client.ts';
import { CloseCode } from '../src/protocol/close_codes.ts';
import { editLocal, openTracked, sawEveryVersionOnce, settle, storm, totalAcks, type Tracked } from './support/sdk_storm.ts';
import { startTestServer, type TestServer } from './support/server.ts';
import { TestClient, waitFor } from './support/ws_client.ts';

let server: TestServer | null = null;
let clients: Tracked[] = [];

afterEach(async () => {
  for (const tracked of clients) tracked.client.close();
  clients = [];
  await server?.close();
  server = null;
});

async function open(count: number, token: string): Promise<Tracked[]> {
  const opened = await Promise.all(Array.from({ length: count }, (_, i) => openTracked(server!.url, token, i % 2 ? 'msgpack' : 'json')));
  clients.push(...opened);
  return opened;
}

/** Closes every connection of the codespace from the server side, as a restarting instance would. */
function dropConnections(codespace: string): number {
  const ref = server!.hub.supervisor.channel(codespace);
  let dropped = 0;
  for (const member of ref ? [...ref.members()] : []) {
    if (Math.random() < 0.5) continue;
    member.closeWith(CloseCode.shuttingDown);
    dropped++;
  }
  return dropped;
}

describe('CodespaceClient', () => {
  it('starts from the server text and follows remote changes', async () => {
    server = await startTestServer();
    const { client: raw } = await TestClient.join(server.urlFor('tmp-sdk-basic'));
    raw.send({ operation: 'insert_value', changes: [{ from: 0, to: 0, insert: 'hello' }], version: 0, ref: 'r1' });
    await raw.next((m) => m.operation === 'ack');
    const [sdk] = await open(1, 'tmp-sdk-basic');
    expect(sdk.client.text).toBe('hello');
    expect(sdk.client.version).toBe(1);
    raw.send({ operation: 'insert_value', changes: [{ from: 5, to: 5, insert: ' world' }], version: 1, ref: 'r2' });
    await waitFor(() => sdk.client.text === 'hello world', 3000, 'remote change');
    sdk.client.applyLocal([{ from: 0, to: 5, insert: 'HELLO' }]);
    expect((await raw.next((m) => m.operation === 'insert_value')).changes).toEqual([{ from: 0, to: 5, insert: 'HELLO' }]);
    await waitFor(() => sdk.client.synced, 3000, 'ack');
    raw.close();
  });

  it('converges under concurrent edits while connections drop at random, each version seen once', async () => {
    server = await startTestServer();
    const tracked = await open(4, 'tmp-sdk-drops');
    const running = storm(tracked, 40, 10, false);
    let drops = 0;
    for (let i = 0; i < 5; i++) {
      await new Promise((resolve) => setTimeout(resolve, 60));
      drops += dropConnections('tmp-sdk-drops');
    }
    await running;
    const n = await settle(tracked);
    expect(drops).toBeGreaterThan(0);
    expect(n).toBe(totalAcks(tracked));
    const text = tracked[0].client.text;
    for (const one of tracked) {
      expect(one.mirror).toBe(one.client.text);
      expect(one.client.text).toBe(text);
      expect(sawEveryVersionOnce(one, n)).toBe(true);
    }
    expect(tracked.reduce((sum, one) => sum + one.client.reconnects, 0)).toBeGreaterThan(0);
  });

  it('resumes with ?version= after a drop and keeps every token it typed while away', async () => {
    server = await startTestServer();
    const [a, b] = await open(2, 'tmp-sdk-resume');
    const rejoins: { resumed: boolean; hasCode: boolean }[] = [];
    for (const one of [a, b]) one.client.on('connected', (data) => rejoins.push({ resumed: data.resumed === true, hasCode: data.code !== undefined }));
    await storm([a, b], 5, 5, true);
    await settle([a, b]);
    for (const member of [...(server.hub.supervisor.channel('tmp-sdk-resume')?.members() ?? [])]) member.closeWith(CloseCode.shuttingDown);
    await storm([a, b], 10, 5, true);
    await settle([a, b]);
    expect(a.client.text).toBe(b.client.text);
    for (const one of [a, b]) for (const token of one.inserted) expect(a.client.text).toContain(token);
    // Both came back with a resume: the missed changes, not the whole text.
    expect(rejoins.length).toBeGreaterThanOrEqual(2);
    for (const rejoin of rejoins) expect(rejoin).toEqual({ resumed: true, hasCode: false });
  });

  it('after a resync resends what was not acked, and loses nothing', async () => {
    server = await startTestServer({ workers: 2 });
    const tracked = await open(3, 'tmp-sdk-resync');
    const ref = server.hub.supervisor.channel('tmp-sdk-resync')!;
    await waitFor(() => ref.thread > 0, 3000, 'channel ready');
    const running = storm(tracked, 30, 10, true);
    await new Promise((resolve) => setTimeout(resolve, 120));
    expect(server.hub.placement.terminateThread(ref.thread)).toBe(true);
    await running;
    await settle(tracked);
    const text = tracked[0].client.text;
    for (const one of tracked) {
      expect(one.mirror).toBe(one.client.text);
      expect(one.client.text).toBe(text);
      for (const token of one.inserted) expect(text).toContain(token);
    }
    expect(tracked.reduce((sum, one) => sum + one.resyncs, 0)).toBeGreaterThan(0);
  });

  it('takes a refused edit back out of its text and keeps what was typed after it', async () => {
    server = await startTestServer({ maxDocLength: 20 });
    const [a] = await open(1, 'tmp-sdk-refused');
    editLocal(a, [{ from: 0, to: 0, insert: 'abc' }]);
    await waitFor(() => a.client.synced, 3000, 'first ack');
    editLocal(a, [{ from: 3, to: 3, insert: 'x'.repeat(30) }]);
    editLocal(a, [{ from: 0, to: 0, insert: '>' }]);
    await waitFor(() => a.client.synced, 3000, 'settled');
    expect(a.errors).toContain('too_large');
    expect(a.client.text).toBe('>abc');
    // The editor was told to show the text without the refused edit.
    expect(a.mirror).toBe('>abc');
    const { client: fresh, connected } = await TestClient.join(server.urlFor('tmp-sdk-refused'));
    expect(connected.data.code).toBe('>abc');
    fresh.close();
  });
});

/** A scripted server on a free port: `onConnection` gets each socket and the URL it asked for. */
async function fakeServer(onConnection: (socket: WebSocket, url: string) => void): Promise<{ url: string; close(): Promise<void> }> {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await new Promise((resolve) => wss.once('listening', resolve));
  wss.on('connection', (socket, request) => onConnection(socket, request.url ?? ''));
  const { port } = wss.address() as { port: number };
  return {
    url: `ws://127.0.0.1:${port}`,
    close: () => new Promise((resolve) => {
      for (const client of wss.clients) client.terminate();
      wss.close(() => resolve());
    }),
  };
}

const welcome = (version: number, code?: string) => JSON.stringify({
  operation: 'connected',
  data: code === undefined ? { id: 'me', mode: 'edit', codespace: 'tmp-fake', version, peers: [], resumed: true } : { id: 'me', mode: 'edit', codespace: 'tmp-fake', version, code, peers: [] },
});

describe('CodespaceClient against a server that misbehaves', () => {
  let fake: Awaited<ReturnType<typeof fakeServer>> | null = null;
  afterEach(async () => {
    await fake?.close();
    fake = null;
  });

  it('resumes when an ack skips versions it never saw, and takes its own change from the missed ones', async () => {
    const urls: string[] = [];
    fake = await fakeServer((socket, url) => {
      urls.push(url);
      if (!url.includes('version=')) {
        socket.send(welcome(0, 'abc'));
        // Acks the edit as version 2: version 1 never reached this client.
        socket.on('message', (data) => socket.send(JSON.stringify({ operation: 'ack', version: 2, ref: JSON.parse(String(data)).ref })));
        return;
      }
      socket.send(welcome(2));
      socket.once('message', (data) => {
        const ref = JSON.parse(String(data)).ref;
        socket.send(JSON.stringify({ operation: 'insert_value', sender: 'other', version: 1, changes: [{ from: 0, to: 0, insert: '>' }], doc_length: 3 }));
        socket.send(JSON.stringify({ operation: 'insert_value', sender: 'me-before', version: 2, changes: [{ from: 4, to: 4, insert: '!' }], doc_length: 4, ref }));
      });
    });
    const tracked = await openTracked(fake.url, 'tmp-fake');
    clients.push(tracked);
    editLocal(tracked, [{ from: 3, to: 3, insert: '!' }]);
    await waitFor(() => tracked.client.synced, 5000, 'the edit acked after the resume');
    expect(urls[1]).toContain('?version=0');
    expect(tracked.client.version).toBe(2);
    expect(tracked.client.text).toBe('>abc!');
    expect(tracked.mirror).toBe('>abc!');
  });

  it('reports a change that does not fit the document, and reconnects instead of throwing', async () => {
    let connections = 0;
    fake = await fakeServer((socket) => {
      connections++;
      socket.send(welcome(0, 'abc'));
      if (connections === 1) socket.send(JSON.stringify({ operation: 'insert_value', sender: 'x', version: 1, changes: [{ from: 5, to: 9, insert: '' }], doc_length: 3 }));
    });
    const tracked = await openTracked(fake.url, 'tmp-fake');
    clients.push(tracked);
    await waitFor(() => connections === 2 && tracked.client.state === 'open', 5000, 'reconnected');
    expect(tracked.errors).toContain('bad_message');
    expect(tracked.client.text).toBe('abc');
    expect(tracked.client.version).toBe(0);
  });
});

describe('CodespaceClient with an application listener that throws', () => {
  it('lets the error through as it is, not as an unusable message from the server', () => {
    const sockets: FakeSocket[] = [];
    class FakeSocket {
      binaryType = '';
      readyState = 1;
      closedWith: number | undefined;
      onopen: ((event: unknown) => void) | null = null;
      onmessage: ((event: { data: unknown }) => void) | null = null;
      onclose: ((event: { code: number; reason: string }) => void) | null = null;
      onerror: ((event: unknown) => void) | null = null;
      constructor() {
        sockets.push(this);
      }
      send(): void {}
      close(code?: number): void {
        this.closedWith = code;
      }
    }
    const client = connect('ws://127.0.0.1:1', 'tmp-fake', { WebSocket: FakeSocket as unknown as WebSocketConstructor });
    const errors: string[] = [];
    client.on('error', (error) => errors.push(error.code));
    client.on('connected', () => {
      throw new Error('listener boom');
    });
    expect(() => sockets[0].onmessage!({ data: welcome(0, 'abc') })).toThrow('listener boom');
    expect(errors).toEqual([]);
    expect(sockets[0].closedWith).toBeUndefined();
    expect(client.text).toBe('abc');
    client.close();
  });
});
