/** The client SDK against a real server: convergence through disconnects, resume and resync. */
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { connect, type CodespaceClient, type WebSocketConstructor } from '../src/client/client.ts';
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

describe('CodespaceClient: where it connects, with which key, and when it gives up', () => {
  let fake: Awaited<ReturnType<typeof fakeServer>> | null = null;
  afterEach(async () => {
    await fake?.close();
    fake = null;
  });

  /** Resolves with the client's first error, or with its `closed` state if that comes first. */
  function finalError(client: CodespaceClient): Promise<{ code: string; message: string; state: string }> {
    return new Promise((resolve) => {
      client.on('error', (error) => resolve({ code: error.code, message: error.message, state: client.state }));
    });
  }

  it('takes the full ws://host:port/codespace/<token>/ URL the server prints, and edits through it', async () => {
    server = await startTestServer();
    const tracked = await openTracked(`${server.url}/codespace/tmp-sdk-full-url/`, 'tmp-sdk-full-url');
    clients.push(tracked);
    const bare = connect(`${server.url}/codespace/tmp-sdk-full-url/`, { WebSocket: WebSocket as unknown as WebSocketConstructor });
    await waitFor(() => bare.state === 'open', 5000, 'the client given only the full URL is open');
    editLocal(tracked, [{ from: 0, to: 0, insert: 'full' }]);
    await waitFor(() => bare.text === 'full', 5000, 'the edit reached the other client');
    expect(server.hub.supervisor.channel('tmp-sdk-full-url')).toBeTruthy();
    bare.close();
  });

  it('sends a client key on every connection and keeps it across reconnects; another client has another', async () => {
    const urls: string[] = [];
    fake = await fakeServer((socket, url) => {
      urls.push(url);
      socket.send(welcome(3, 'abc'));
      // The first connection of each client is dropped, as a restarting server would.
      if (urls.filter((each) => clientKeyOf(each) === clientKeyOf(url)).length === 1) setTimeout(() => socket.close(1001, 'restart'), 20);
    });
    const a = connect(fake.url, 'tmp-fake', { WebSocket: WebSocket as unknown as WebSocketConstructor, minReconnectDelayMs: 10 });
    const b = connect(`${fake.url}/codespace/tmp-fake/`, { WebSocket: WebSocket as unknown as WebSocketConstructor, minReconnectDelayMs: 10 });
    await waitFor(() => a.reconnects >= 1 && b.reconnects >= 1 && a.state === 'open' && b.state === 'open', 5000, 'both reconnected');
    const keys = urls.map(clientKeyOf);
    expect(keys.every((key) => /^[A-Za-z0-9_-]{16,64}$/.test(key ?? ''))).toBe(true);
    expect(new Set(keys).size).toBe(2);
    // The reconnect resumes, with the same key.
    const resumes = urls.filter((url) => url.includes('version=3'));
    expect(resumes.length).toBe(2);
    expect(new Set(resumes.map(clientKeyOf))).toEqual(new Set(keys));
    a.close();
    b.close();
  });

  it('takes a client key of its own, and refuses a malformed one', () => {
    expect(() => connect('ws://127.0.0.1:1', 'tmp-x', { WebSocket: WebSocket as unknown as WebSocketConstructor, clientKey: 'short' })).toThrow(/clientKey/);
    const urls: string[] = [];
    class Recorder {
      binaryType = '';
      readyState = 0;
      onopen = null;
      onmessage = null;
      onclose = null;
      onerror = null;
      constructor(url: string) {
        urls.push(url);
      }
      send(): void {}
      close(): void {}
    }
    const client = connect('ws://127.0.0.1:1', 'tmp-x', { WebSocket: Recorder as unknown as WebSocketConstructor, clientKey: 'k'.repeat(20) });
    expect(new URL(urls[0]).searchParams.get('client')).toBe('k'.repeat(20));
    client.close();
  });

  it('resumes naming the epoch of its version, and starts over from a full connected of another epoch', async () => {
    const urls: string[] = [];
    fake = await fakeServer((socket, url) => {
      urls.push(url);
      const epoch = urls.length === 1 ? 'e1' : 'e2';
      // The second history is behind and different: the client must take it, not ask for changes.
      socket.send(JSON.stringify({ operation: 'connected', data: { id: 'me', mode: 'edit', codespace: 'tmp-fake', version: urls.length === 1 ? 5 : 9, epoch, code: urls.length === 1 ? 'old' : 'new history', peers: [] } }));
      if (urls.length === 1) setTimeout(() => socket.close(1001, 'restart'), 20);
    });
    const client = connect(fake.url, 'tmp-fake', { WebSocket: WebSocket as unknown as WebSocketConstructor, minReconnectDelayMs: 10 });
    await waitFor(() => client.text === 'new history', 5000, 'the new history taken');
    expect(new URL(urls[1], 'ws://localhost').searchParams.get('epoch')).toBe('e1');
    expect(new URL(urls[1], 'ws://localhost').searchParams.get('version')).toBe('5');
    expect(client.version).toBe(9);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(urls.length).toBe(2);
    client.close();
  });

  it('takes the server text when its resume is too old to serve, instead of asking again and again', async () => {
    const urls: string[] = [];
    fake = await fakeServer((socket, url) => {
      urls.push(url);
      // A full connected, ahead: the history this client's version needs was trimmed.
      socket.send(welcome(urls.length === 1 ? 0 : 5000, urls.length === 1 ? 'abc' : 'trimmed history'));
      if (urls.length === 1) setTimeout(() => socket.close(1001, 'restart'), 20);
    });
    const client = connect(fake.url, 'tmp-fake', { WebSocket: WebSocket as unknown as WebSocketConstructor, minReconnectDelayMs: 10 });
    await waitFor(() => client.text === 'trimmed history', 5000, 'the server text taken');
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(urls.length).toBe(2);
    expect(client.version).toBe(5000);
    client.close();
  });

  for (const code of [4401, 4404, 4400]) {
    it(`ends with an error event and no more reconnects on ${code}`, async () => {
      let connections = 0;
      fake = await fakeServer((socket) => {
        connections++;
        socket.close(code, 'refused');
      });
      const client = connect(fake.url, 'tmp-fake', { WebSocket: WebSocket as unknown as WebSocketConstructor, minReconnectDelayMs: 5, maxReconnectDelayMs: 10 });
      expect(await finalError(client)).toMatchObject({ code: 'closed', state: 'closed' });
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(connections).toBe(1);
    });
  }

  for (const code of [1013, 4500]) {
    it(`backs off and comes back after ${code}`, async () => {
      let connections = 0;
      fake = await fakeServer((socket) => {
        if (++connections < 3) return socket.close(code, 'later');
        socket.send(welcome(0, 'abc'));
      });
      const client = connect(fake.url, 'tmp-fake', { WebSocket: WebSocket as unknown as WebSocketConstructor, minReconnectDelayMs: 5, maxReconnectDelayMs: 20 });
      await waitFor(() => client.state === 'open', 5000, 'open after two refusals');
      expect(client.text).toBe('abc');
      client.close();
    });
  }

  it('ends with a bad_url error for URLs that name different tokens', async () => {
    const client = connect(['ws://127.0.0.1:1/codespace/tmp-a/', 'ws://127.0.0.1:2/codespace/tmp-b/'], { WebSocket: WebSocket as unknown as WebSocketConstructor });
    expect(await finalError(client)).toMatchObject({ code: 'bad_url', message: 'the URLs name different tokens', state: 'closed' });
  });

  for (const [url, token] of [['not a url', 'tmp-x'], ['ftp://127.0.0.1:1', 'tmp-x'], ['ws://127.0.0.1:1', undefined], ['ws://127.0.0.1:1/codespace/tmp-a/', 'tmp-b']] as const) {
    it(`ends with a bad_url error, having opened nothing, for ${JSON.stringify(url)} with token ${token}`, async () => {
      let constructed = 0;
      class Counter {
        constructor() {
          constructed++;
          throw new Error('no socket may be opened');
        }
      }
      const options = { WebSocket: Counter as unknown as WebSocketConstructor };
      const client = token === undefined ? connect(url, options) : connect(url, token, options);
      expect(await finalError(client)).toMatchObject({ code: 'bad_url', state: 'closed' });
      expect(constructed).toBe(0);
    });
  }

  it('ends with a bad_url error when the WebSocket API refuses the URL', async () => {
    let constructed = 0;
    class Refusing {
      constructor() {
        constructed++;
        // What browsers and `ws` throw for a URL they will not open.
        throw new SyntaxError('The URL is not allowed');
      }
    }
    const client = connect('ws://127.0.0.1:1', 'tmp-x', { WebSocket: Refusing as unknown as WebSocketConstructor });
    expect(await finalError(client)).toMatchObject({ code: 'bad_url', message: 'The URL is not allowed', state: 'closed' });
    expect(constructed).toBe(1);
  });
});

function clientKeyOf(url: string): string | null {
  return new URL(url, 'ws://localhost').searchParams.get('client');
}
