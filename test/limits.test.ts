/** Limits that protect neighbours: slow consumers, message rate, connections, document size. */
import { afterEach, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from './support/server.ts';
import { TestClient, waitFor } from './support/ws_client.ts';

let server: TestServer | null = null;
const clients: TestClient[] = [];

afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  await server?.close();
  server = null;
});

async function join(token: string, codec: 'json' | 'msgpack' | 'none' = 'none'): Promise<TestClient> {
  const { client } = await TestClient.join(server!.urlFor(token), codec);
  clients.push(client);
  return client;
}

describe('a slow consumer', () => {
  it('is closed with 1013 while its codespace-mates keep receiving every change', async () => {
    server = await startTestServer({ slowConsumerBytes: 64 * 1024, rateLimitPerS: 0 });
    const writer = await join('tmp-slow');
    const reader = await join('tmp-slow', 'msgpack');
    const slow = await join('tmp-slow');
    slow.socket.pause();
    const chunk = 'x'.repeat(16 * 1024);
    let version = 0;
    // Insert and delete a 16 KiB chunk until the server gives up on the paused client (bounded).
    while (server.hub.slowConsumerCloses === 0 && version < 4000) {
      const changes = version % 2 === 0 ? [{ from: 0, to: 0, insert: chunk }] : [{ from: 0, to: chunk.length, insert: '' }];
      writer.send({ operation: 'insert_value', changes, version, ref: `w${version}` });
      await writer.next((m) => m.operation === 'ack');
      version++;
    }
    expect(server.hub.slowConsumerCloses).toBe(1);
    expect(server.logs.find((line) => line.event === 'slow_consumer_closed')?.fields.codespace).toBe('tmp-slow');
    // The reader got every change, in order, while the slow one was stuck.
    await waitFor(() => reader.all((m) => m.operation === 'insert_value').length === version, 10_000, 'reader caught up');
    expect(reader.all((m) => m.operation === 'insert_value').map((m) => m.version)).toEqual(Array.from({ length: version }, (_, i) => i + 1));
    slow.socket.resume();
    expect((await slow.closedWith(10_000)).code).toBe(1013);
    expect(reader.closed).toBeNull();
  }, 60_000);

  it('gets only the newest selection of each sender while it lags, never losing an edit', async () => {
    server = await startTestServer({ slowConsumerBytes: 64 * 1024, rateLimitPerS: 0 });
    const writer = await join('tmp-lagging');
    const { client: lagging, connected } = await TestClient.join(server.urlFor('tmp-lagging'));
    clients.push(lagging);
    lagging.socket.pause();
    const session = [...server.acceptor.sessions].find((candidate) => candidate.connection.id === connected.data.id)!;
    const chunk = 'y'.repeat(8 * 1024);
    // Fill its queue past the soft limit (the kernel's buffers first), but not to 4x.
    let version = 0;
    while (session.socket.bufferedAmount <= 80 * 1024 && version < 2000) {
      const changes = version % 2 === 0 ? [{ from: 0, to: 0, insert: chunk }] : [{ from: 0, to: chunk.length, insert: '' }];
      writer.send({ operation: 'insert_value', changes, version, ref: `l${version}` });
      await writer.next((m) => m.operation === 'ack');
      version++;
    }
    expect(session.socket.bufferedAmount).toBeGreaterThan(64 * 1024);
    for (let i = 0; i < 200; i++) writer.send({ operation: 'create_selection', selections: [{ anchor: i, head: i }] });
    writer.send({ operation: 'insert_value', changes: [{ from: 0, to: 0, insert: '!' }], version, ref: 'last' });
    await writer.next((m) => m.operation === 'ack' && m.ref === 'last');
    await new Promise((resolve) => setTimeout(resolve, 200));
    lagging.socket.resume();
    await waitFor(() => lagging.all((m) => m.operation === 'create_selection').some((m) => m.selections[0].anchor === 199), 10_000, 'newest selection');
    const selections = lagging.all((m) => m.operation === 'create_selection');
    expect(selections.length).toBeLessThan(200);
    expect(selections[selections.length - 1].selections[0].anchor).toBe(199);
    await waitFor(() => lagging.all((m) => m.operation === 'insert_value').length === version + 1, 10_000, 'every edit');
    expect(lagging.all((m) => m.operation === 'insert_value').map((m) => m.version)).toEqual(Array.from({ length: version + 1 }, (_, i) => i + 1));
    expect(lagging.closed).toBeNull();
  }, 30_000);
});

describe('the message rate', () => {
  it('answers rate_limited beyond the burst (edits with their ref), then closes 4429 when it goes on', async () => {
    server = await startTestServer({ rateLimitPerS: 50, rateLimitBurst: 20 });
    const flooder = await join('tmp-flood');
    const neighbour = await join('tmp-flood');
    for (let i = 0; i < 40; i++) flooder.send({ operation: 'create_selection', selections: [{ anchor: 0, head: 0 }] });
    flooder.send({ operation: 'insert_value', changes: [{ from: 0, to: 0, insert: 'x' }], version: 0, ref: 'limited' });
    expect((await flooder.next((m) => m.operation === 'error' && m.data.ref === 'limited')).data.code).toBe('rate_limited');
    // At most 20 (the burst) plus what refilled went through to the neighbour.
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(neighbour.all((m) => m.operation === 'create_selection').length).toBeLessThan(35);
    // Far above the limit for seconds: closed.
    const flood = setInterval(() => {
      for (let i = 0; i < 30; i++) flooder.send({ operation: 'create_selection', selections: [{ anchor: 0, head: 0 }] });
    }, 100);
    try {
      expect((await flooder.closedWith(8000)).code).toBe(4429);
    } finally {
      clearInterval(flood);
    }
    // The neighbour is fine and the codespace serves it.
    neighbour.send({ operation: 'insert_value', changes: [{ from: 0, to: 0, insert: 'ok' }], version: 0, ref: 'n1' });
    expect((await neighbour.next((m) => m.operation === 'ack')).version).toBe(1);
  }, 20_000);
});

describe('connections and size', () => {
  it('refuses upgrades past MAX_CONNECTIONS with HTTP 503, and accepts again once one left', async () => {
    server = await startTestServer({ maxConnections: 2 });
    const a = await join('tmp-cap');
    await join('tmp-cap');
    await expect(TestClient.open(server.urlFor('tmp-cap'))).rejects.toThrow('HTTP 503');
    a.close();
    await waitFor(() => server!.acceptor.connections === 1, 3000, 'a left');
    await join('tmp-cap');
  });

  it('answers too_large past MAX_DOC_LENGTH', async () => {
    server = await startTestServer({ maxDocLength: 10 });
    const client = await join('tmp-size');
    client.send({ operation: 'insert_value', changes: [{ from: 0, to: 0, insert: 'x'.repeat(11) }], version: 0, ref: 'big' });
    expect((await client.next((m) => m.operation === 'error')).data).toMatchObject({ code: 'too_large', ref: 'big' });
  });
});
