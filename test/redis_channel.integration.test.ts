/**
 * A channel on the Redis backplane against what other instances (played here by raw Redis
 * commands and a second backplane) do: gaps filled from the log, lost commit races rebased,
 * a flushed Redis written back.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RedisBackplane } from '../src/backplane/redis_backplane.ts';
import type { LogEntry } from '../src/doc/text_doc.ts';
import { startRedis, type TestRedis } from './support/redis.ts';
import { startTestServer, type TestServer } from './support/server.ts';
import { TestClient } from './support/ws_client.ts';

let redis: TestRedis;
let server: TestServer;
let other: RedisBackplane;
const clients: TestClient[] = [];

beforeAll(async () => {
  redis = await startRedis();
  server = await startTestServer({ redisUrl: redis.url, workers: 1, redisTimeoutMs: 1000 });
  other = new RedisBackplane({ url: redis.url, keyPrefix: '', ttlS: 0, tmpTtlS: 0, history: 1000, timeoutMs: 1000 });
});
afterEach(() => {
  for (const client of clients.splice(0)) client.close();
});
afterAll(async () => {
  await other.close();
  await server.close();
  await redis.stop();
});

async function join(token: string): Promise<TestClient> {
  const { client } = await TestClient.join(server.urlFor(token));
  clients.push(client);
  return client;
}

function entry(version: number, docLength: number, insert: string, at = docLength): LogEntry {
  return { version, changes: [{ from: at, to: at, insert }], docLength, sender: 'elsewhere', ref: `o${version}` };
}

/** What an instance whose PUBLISH was lost would leave: the entry in the log, no message. */
async function commitSilently(codespace: string, logged: LogEntry): Promise<void> {
  await redis.client.xadd(`${codespace}:log`, `${logged.version}-0`, 'e', JSON.stringify(logged));
  await redis.client.hset(codespace, 'version', logged.version);
}

describe('a channel on Redis', () => {
  it('fills a gap in pub/sub from the log, in version order', async () => {
    const client = await join('tmp-gap');
    await commitSilently('tmp-gap', entry(1, 0, 'a'));
    expect(await other.commit('tmp-gap', entry(2, 1, 'b'), (await other.load('tmp-gap')).epoch)).toEqual({ ok: true });
    const first = await client.next((m) => m.operation === 'insert_value');
    const second = await client.next((m) => m.operation === 'insert_value');
    expect([first.version, second.version]).toEqual([1, 2]);
    const fresh = await TestClient.join(server.urlFor('tmp-gap'));
    clients.push(fresh.client);
    expect(fresh.connected.data).toMatchObject({ version: 2, code: 'ab' });
  });

  it('loses a commit race, catches up from the log, rebases and commits after it', async () => {
    const client = await join('tmp-race');
    client.send({ operation: 'insert_value', changes: [{ from: 0, to: 0, insert: 'hello' }], version: 0, ref: 'c1' });
    expect((await client.next((m) => m.operation === 'ack')).version).toBe(1);
    await commitSilently('tmp-race', entry(2, 5, '!'));
    // Made on version 1, unaware of version 2: it must land after it, rebased.
    client.send({ operation: 'insert_value', changes: [{ from: 5, to: 5, insert: ' world' }], version: 1, ref: 'c2' });
    expect(await client.next((m) => m.operation === 'insert_value')).toMatchObject({ version: 2, sender: 'elsewhere' });
    expect(await client.next((m) => m.operation === 'ack')).toMatchObject({ version: 3, ref: 'c2' });
    const loaded = await other.load('tmp-race');
    expect(loaded).toMatchObject({ version: 3, text: 'hello! world' });
  });

  it('writes a flushed Redis back from the live channel and goes on', async () => {
    const client = await join('tmp-flushed');
    client.send({ operation: 'insert_value', changes: [{ from: 0, to: 0, insert: 'kept' }], version: 0, ref: 'f1' });
    expect((await client.next((m) => m.operation === 'ack')).version).toBe(1);
    await redis.client.flushall();
    client.send({ operation: 'insert_value', changes: [{ from: 4, to: 4, insert: '!' }], version: 1, ref: 'f2' });
    expect(await client.next((m) => m.operation === 'ack')).toMatchObject({ version: 2, ref: 'f2' });
    expect(await other.load('tmp-flushed')).toMatchObject({ version: 2, text: 'kept!' });
  });
});
