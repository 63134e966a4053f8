/**
 * Three server processes, one Redis: clients of one codespace spread over them converge, see
 * every version once, survive `kill -9` of an instance and a Redis restart, and keys expire.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startRedis, type TestRedis } from './support/redis.ts';
import { startInstance, type Instance } from './support/instances.ts';
import { openTracked, sawEveryVersionOnce, settle, storm, totalAcks, type Tracked } from './support/sdk_storm.ts';
import { TestClient, waitFor } from './support/ws_client.ts';

let redis: TestRedis;
let instances: Instance[] = [];
let clients: Tracked[] = [];

beforeAll(async () => {
  redis = await startRedis({ persistent: true });
});
afterAll(async () => {
  await redis.stop();
});
afterEach(async () => {
  for (const tracked of clients) tracked.client.close();
  clients = [];
  await Promise.all(instances.map((instance) => instance.kill()));
  instances = [];
});

async function startInstances(count: number, env: Record<string, string> = {}): Promise<Instance[]> {
  instances = await Promise.all(Array.from({ length: count }, () => startInstance({ REDIS_URL: redis.url, SNAPSHOT_INTERVAL_MS: '200', ...env })));
  return instances;
}

/** `perInstance` clients on each instance; each lists the others to fail over to. */
async function spread(token: string, perInstance: number): Promise<Tracked[]> {
  const urls = instances.map((instance) => instance.url);
  const opened: Tracked[] = [];
  for (let i = 0; i < instances.length; i++) {
    const order = [...urls.slice(i), ...urls.slice(0, i)];
    for (let k = 0; k < perInstance; k++) opened.push(await openTracked(order, token, (i + k) % 2 === 0 ? 'json' : 'msgpack'));
  }
  clients.push(...opened);
  return opened;
}

async function textOnEachInstance(token: string): Promise<string[]> {
  return Promise.all(instances.filter((instance) => instance.process.exitCode === null && instance.process.signalCode === null).map(async (instance) => {
    const { client, connected } = await TestClient.join(`${instance.url}/codespace/${token}/`);
    client.close();
    return connected.data.code as string;
  }));
}

async function snapshotOf(codespace: string, version: number): Promise<string> {
  let code: string | null = null;
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const hash = await redis.client.hgetall(codespace);
    if (Number(hash.code_version) === version) {
      code = hash.code;
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  if (code === null) throw new Error(`no snapshot at version ${version} of ${codespace}`);
  return code;
}

async function waitForStatus(url: string, status: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const response = await fetch(url).catch(() => null);
    if (response?.status === status) return;
    if (Date.now() > deadline) throw new Error(`${url} never answered ${status}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('three instances on one Redis', () => {
  it('converge under random concurrent edits; every client sees versions 1..N once each', async () => {
    await startInstances(3);
    const token = 'tmp-multi-converge';
    const tracked = await spread(token, 2);
    await storm(tracked, 25, 15, false);
    const n = await settle(tracked);
    expect(n).toBe(totalAcks(tracked));
    expect(n).toBeGreaterThan(25);
    const text = tracked[0].client.text;
    for (const one of tracked) {
      expect(one.mirror).toBe(one.client.text);
      expect(one.client.text).toBe(text);
      expect(sawEveryVersionOnce(one, n)).toBe(true);
      expect(one.errors).toEqual([]);
    }
    expect(await textOnEachInstance(token)).toEqual([text, text, text]);
    expect(await snapshotOf(token, n)).toBe(text);
  });

  it('loses no edit when an instance is killed mid-storm: its clients resume on another', async () => {
    await startInstances(3);
    const token = 'tmp-multi-kill';
    const tracked = await spread(token, 2);
    const running = storm(tracked, 40, 15, true);
    await new Promise((resolve) => setTimeout(resolve, 250));
    await instances[0].kill();
    await running;
    const n = await settle(tracked);
    expect(n).toBe(totalAcks(tracked));
    const text = tracked[0].client.text;
    for (const one of tracked) {
      expect(one.mirror).toBe(one.client.text);
      expect(one.client.text).toBe(text);
      for (const token of one.inserted) expect(text).toContain(token);
      expect(sawEveryVersionOnce(one, n)).toBe(true);
    }
    // The killed instance's clients came back through another one.
    expect(tracked[0].client.reconnects + tracked[1].client.reconnects).toBeGreaterThan(0);
    expect(await textOnEachInstance(token)).toEqual([text, text]);
  });

  it('keeps serving through a Redis restart: nothing crashes, no acked edit is lost', async () => {
    // Fail fast while Redis is away: edits are answered `unavailable` within half a second.
    await startInstances(2, { REDIS_TIMEOUT_MS: '500' });
    const token = 'tmp-multi-redis-restart';
    const tracked = await spread(token, 2);
    const running = storm(tracked, 40, 20, true);
    await new Promise((resolve) => setTimeout(resolve, 250));
    await redis.kill();
    const readyz = `${instances[0].url.replace('ws:', 'http:')}/readyz`;
    await waitForStatus(readyz, 503);
    await new Promise((resolve) => setTimeout(resolve, 300));
    await redis.start();
    await waitForStatus(readyz, 200);
    await running;
    const n = await settle(tracked, 40_000);
    expect(n).toBe(totalAcks(tracked));
    const text = tracked[0].client.text;
    for (const one of tracked) {
      expect(one.mirror).toBe(one.client.text);
      expect(one.client.text).toBe(text);
      for (const inserted of one.inserted) expect(text).toContain(inserted);
    }
    // Edits made while Redis was away were answered `unavailable` and sent again.
    expect(tracked.flatMap((one) => one.errors)).toContain('unavailable');
    for (const instance of instances) expect(instance.process.exitCode).toBeNull();
    expect(instances[0].logs.map((line) => line.event)).toEqual(expect.arrayContaining(['backplane_down', 'backplane_up']));
    expect(await textOnEachInstance(token)).toEqual([text, text]);
    expect(await snapshotOf(token, n)).toBe(text);
  });

  it('opens a codespace whose hash the SharePython API wrote (only `code`)', async () => {
    await startInstances(1);
    await redis.client.hset('tmp-from-api', 'code', 'def main():\n    pass\n');
    const { client, connected } = await TestClient.join(`${instances[0].url}/codespace/tmp-from-api/`);
    expect(connected.data).toMatchObject({ version: 0, code: 'def main():\n    pass\n' });
    client.send({ operation: 'insert_value', changes: [{ from: 0, to: 0, insert: '# hi\n' }], version: 0, ref: 'api-1' });
    expect((await client.next((m) => m.operation === 'ack')).version).toBe(1);
    client.close();
  });
});

describe('expiry', () => {
  it('never expires an open codespace; an abandoned tmp- codespace is gone after its TTL', async () => {
    await startInstances(1, { TMP_CODESPACE_TTL_S: '1', CHANNEL_GRACE_MS: '100' });
    const { client } = await TestClient.join(`${instances[0].url}/codespace/tmp-expiring/`);
    client.send({ operation: 'insert_value', changes: [{ from: 0, to: 0, insert: 'short-lived' }], version: 0, ref: 'x1' });
    await client.next((m) => m.operation === 'ack');
    const ttl = await redis.client.pttl('tmp-expiring');
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(1000);
    expect(await redis.client.pttl('tmp-expiring:log')).toBeGreaterThan(0);
    // Open for three TTLs: refreshed, never gone.
    for (let i = 0; i < 6; i++) {
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(await redis.client.exists('tmp-expiring', 'tmp-expiring:log')).toBe(2);
    }
    client.close();
    const deadline = Date.now() + 5_000;
    while ((await redis.client.exists('tmp-expiring', 'tmp-expiring:log')) > 0) {
      if (Date.now() > deadline) throw new Error('keys of the abandoned codespace did not expire');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  });
});
