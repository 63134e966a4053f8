/**
 * deploy/haproxy.cfg for real: HAProxy (Debian package) in front of two instances and a Redis.
 * A codespace split over both converges through the proxy; one instance killed, its clients
 * come back through the proxy and resume.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startInstance, type Instance } from './support/instances.ts';
import { freePort, startRedis, type TestRedis } from './support/redis.ts';
import { openTracked, settle, storm, type Tracked } from './support/sdk_storm.ts';

const CONFIG = fileURLToPath(new URL('../deploy/haproxy.cfg', import.meta.url));

let redis: TestRedis;
let instances: Instance[] = [];
let proxy: ChildProcess;
let proxyPort: number;
const clients: Tracked[] = [];

async function connectionsOf(instance: Instance): Promise<number> {
  const response = await fetch(`${instance.url.replace('ws:', 'http:')}/readyz`);
  return ((await response.json()) as { connections: number }).connections;
}

beforeAll(async () => {
  redis = await startRedis();
  instances = await Promise.all([0, 1].map(() => startInstance({ REDIS_URL: redis.url })));
  proxyPort = await freePort();
  const haproxy = process.env.HAPROXY_BIN ?? 'haproxy';
  proxy = spawn(haproxy, ['-db', '-f', CONFIG], {
    env: { ...process.env, CODESPACE_PROXY_PORT: String(proxyPort), CODESPACE_PORT_1: String(instances[0].port), CODESPACE_PORT_2: String(instances[1].port) },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  proxy.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  proxy.once('error', (error) => {
    throw new Error(`cannot start haproxy (make test installs it): ${error.message}`);
  });
  const deadline = Date.now() + 10_000;
  for (;;) {
    const response = await fetch(`http://127.0.0.1:${proxyPort}/readyz`).catch(() => null);
    if (response?.status === 200) break;
    if (proxy.exitCode !== null || Date.now() > deadline) throw new Error(`haproxy did not come up: ${stderr}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}, 30_000);

afterAll(async () => {
  for (const tracked of clients) tracked.client.close();
  proxy?.kill('SIGKILL');
  await Promise.all(instances.map((instance) => instance.kill()));
  await redis?.stop();
});

describe('two instances behind HAProxy', () => {
  it('converge through the proxy, and survive the death of one instance', async () => {
    const url = `ws://127.0.0.1:${proxyPort}`;
    for (let i = 0; i < 6; i++) clients.push(await openTracked(url, 'tmp-behind-proxy', i % 2 ? 'msgpack' : 'json'));
    // leastconn spreads the connections: the codespace is split over both instances.
    const counts = await Promise.all(instances.map(connectionsOf));
    expect(counts[0]).toBeGreaterThan(0);
    expect(counts[1]).toBeGreaterThan(0);
    await storm(clients, 10, 15, true);
    await settle(clients);
    const text = clients[0].client.text;
    for (const one of clients) expect(one.client.text).toBe(text);

    const running = storm(clients, 30, 15, true);
    await new Promise((resolve) => setTimeout(resolve, 150));
    await instances[0].kill();
    await running;
    await settle(clients, 40_000);
    const after = clients[0].client.text;
    for (const one of clients) {
      expect(one.client.text).toBe(after);
      for (const token of one.inserted) expect(after).toContain(token);
    }
    expect(clients.reduce((sum, one) => sum + one.client.reconnects, 0)).toBeGreaterThan(0);
    expect(await connectionsOf(instances[1])).toBe(6);
  });
});
