import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisBackplane, type RedisBackplaneOptions } from '../src/backplane/redis_backplane.ts';
import type { RemoteEvent } from '../src/backplane/backplane.ts';
import { appendEntry, backplaneContract, CONTRACT_HISTORY, epochOf, textAt } from './backplane_contract.ts';
import { startRedis, type TestRedis } from './support/redis.ts';
import { waitFor } from './support/ws_client.ts';

let redis: TestRedis;
const opened: RedisBackplane[] = [];

beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  for (const backplane of opened) await backplane.close();
  await redis.stop();
});

function open(options: Partial<RedisBackplaneOptions> = {}): RedisBackplane {
  const backplane = new RedisBackplane({ url: redis.url, keyPrefix: 'cs:', ttlS: 600, tmpTtlS: 60, history: CONTRACT_HISTORY, timeoutMs: 1000, ...options });
  opened.push(backplane);
  return backplane;
}

backplaneContract('redis', async () => {
  let backplane = open();
  return {
    backplane,
    cleanup: () => backplane.close(),
    reopen: async () => {
      await backplane.close();
      backplane = open();
      return backplane;
    },
  };
}, { durable: true });

describe('RedisBackplane', () => {
  it('stores the layout of PROTOCOL.md §7: a hash with code and versions, a stream with <version>-0 ids', async () => {
    const backplane = open();
    const epoch = await epochOf(backplane, 'layout');
    for (let v = 1; v <= 3; v++) await backplane.commit('layout', appendEntry(v), epoch);
    await backplane.saveSnapshot('layout', textAt(2), 2, epoch);
    expect(await redis.client.hgetall('cs:layout')).toEqual({ code: textAt(2), code_version: '2', version: '3', epoch });
    const ids = (await redis.client.xrange('cs:layout:log', '-', '+')).map(([id]) => id);
    expect(ids).toEqual(['1-0', '2-0', '3-0']);
  });

  it('opens a hash written by the SharePython API (only `code`) as version 0, and builds on it', async () => {
    await redis.client.hset('cs:from-api', 'code', 'print("hi")\n');
    // A stream left from an earlier life of the key must not be replayed over the API's text.
    await redis.client.xadd('cs:from-api:log', '1-0', 'e', JSON.stringify(appendEntry(1)));
    const backplane = open();
    const loaded = await backplane.load('from-api');
    expect(loaded).toMatchObject({ text: 'print("hi")\n', version: 0, log: [] });
    const entry = { version: 1, changes: [{ from: 0, to: 0, insert: '# ' }], docLength: 12, sender: 'a' };
    expect(await backplane.commit('from-api', entry, loaded.epoch)).toEqual({ ok: true });
    expect(await backplane.load('from-api')).toMatchObject({ text: '# print("hi")\n', version: 1 });
  });

  it('puts the TTL on both keys at every commit, the tmp- one for tmp- codespaces', async () => {
    const backplane = open({ ttlS: 500, tmpTtlS: 50 });
    await backplane.commit('kept', appendEntry(1), await epochOf(backplane, 'kept'));
    await backplane.commit('tmp-short', appendEntry(1), await epochOf(backplane, 'tmp-short'));
    for (const key of ['cs:kept', 'cs:kept:log']) expect(await redis.client.ttl(key)).toBeGreaterThan(400);
    for (const key of ['cs:tmp-short', 'cs:tmp-short:log']) {
      const ttl = await redis.client.ttl(key);
      expect(ttl).toBeGreaterThan(40);
      expect(ttl).toBeLessThanOrEqual(50);
    }
    await redis.client.expire('cs:tmp-short', 5);
    await backplane.touch('tmp-short');
    expect(await redis.client.ttl('cs:tmp-short')).toBeGreaterThan(40);
  });

  it('delivers a commit and a selection to the other instances, not back to their origin', async () => {
    const one = open();
    const two = open();
    const heardByOne: RemoteEvent[] = [];
    const heardByTwo: RemoteEvent[] = [];
    await one.subscribe('pubsub', (event) => heardByOne.push(event));
    await two.subscribe('pubsub', (event) => heardByTwo.push(event));
    const epoch = await epochOf(one, 'pubsub');
    await one.commit('pubsub', appendEntry(1), epoch);
    one.publishSelection('pubsub', { operation: 'create_selection', sender: 'x', version: 1, selections: [] });
    await waitFor(() => heardByTwo.length === 2, 3000, 'two events');
    expect(heardByTwo[0]).toEqual({ kind: 'entry', epoch, entry: appendEntry(1) });
    expect(heardByTwo[1]).toMatchObject({ kind: 'selection', message: { sender: 'x' } });
    // The committing instance's own echo (its entry, its selection) is dropped unread (issue 15)...
    await two.commit('pubsub', appendEntry(2), epoch);
    await waitFor(() => heardByOne.length === 1, 3000, "the other instance's entry");
    expect(heardByOne).toEqual([{ kind: 'entry', epoch, entry: appendEntry(2) }]);
    // ...while an entry published by an older instance (no origin) is still taken.
    await redis.client.publish('cs:pubsub', 'e' + JSON.stringify({ epoch, entry: appendEntry(3) }));
    await waitFor(() => heardByOne.length === 2 && heardByTwo.length === 3, 3000, 'the older payload');
    expect(heardByOne[1]).toEqual({ kind: 'entry', epoch, entry: appendEntry(3) });
    two.unsubscribe('pubsub');
    await one.commit('pubsub', appendEntry(3), epoch);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(heardByTwo).toHaveLength(3);
    expect(heardByOne).toHaveLength(2);
  });

  it('commitMany appends consecutive entries in one call, all or none, and publishes each in order (issue 15)', async () => {
    const one = open();
    const two = open();
    const heard: RemoteEvent[] = [];
    await two.subscribe('many', (event) => heard.push(event));
    const epoch = await epochOf(one, 'many');
    await one.commit('many', appendEntry(1), epoch);
    expect(await one.commitMany('many', [2, 3, 4].map((v) => appendEntry(v)), epoch)).toEqual({ ok: true });
    expect((await redis.client.xrange('cs:many:log', '-', '+')).map(([id]) => id)).toEqual(['1-0', '2-0', '3-0', '4-0']);
    expect(await one.load('many')).toMatchObject({ text: textAt(4), version: 4 });
    await waitFor(() => heard.length === 4, 3000, 'four entries');
    expect(heard.map((event) => (event.kind === 'entry' ? event.entry.version : 0))).toEqual([1, 2, 3, 4]);
    expect(await one.commitMany('many', [4, 5].map((v) => appendEntry(v)), epoch)).toMatchObject({ ok: false, reason: 'conflict', stored: 4 });
    expect(await redis.client.hget('cs:many', 'version')).toBe('4');
    expect(await redis.client.xlen('cs:many:log')).toBe(4);
    two.unsubscribe('many');
  });

  it('answers unavailable at once while Redis is away, and commits again once it is back', async () => {
    const own = await startRedis();
    try {
      const backplane = new RedisBackplane({ url: own.url, keyPrefix: '', ttlS: 0, tmpTtlS: 0, history: 10, timeoutMs: 500 });
      opened.push(backplane);
      const epoch = await epochOf(backplane, 'away');
      expect(await backplane.commit('away', appendEntry(1), epoch)).toEqual({ ok: true });
      await own.kill();
      const started = Date.now();
      expect(await backplane.commit('away', appendEntry(2), epoch)).toMatchObject({ ok: false, reason: 'unavailable' });
      expect(Date.now() - started).toBeLessThan(2000);
      await own.start();
      // Redis came back empty (no persistence): its history is gone, restore gives it back.
      await waitFor(() => backplane.connected, 5000, 'reconnect');
      expect(await backplane.commit('away', appendEntry(2), epoch)).toMatchObject({ ok: false, reason: 'conflict', stored: 0, epoch: '' });
      expect(await backplane.restore('away', { text: textAt(1), version: 1, log: [appendEntry(1)], epoch })).toBe(true);
      expect(await backplane.commit('away', appendEntry(2), epoch)).toEqual({ ok: true });
    } finally {
      await own.stop();
    }
  });
});
