/**
 * Per-channel isolation under faults (FAULT_INJECTION=1): with 20 codespaces over 2 workers all
 * editing, one channel throws, hangs or runs out of memory. Codespaces elsewhere notice nothing;
 * the faulted one (and, for hang and oom, its worker-mates) resyncs and loses no edit.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { FaultKind } from '../src/protocol/messages.ts';
import { openTracked, sawEveryVersionOnce, settle, storm, totalAcks, type Tracked } from './support/sdk_storm.ts';
import { startTestServer, type TestServer } from './support/server.ts';
import { TestClient, waitFor } from './support/ws_client.ts';
import { startInstance } from './support/instances.ts';

const CODESPACES = 20;

let server: TestServer | null = null;
const opened: Tracked[] = [];

afterEach(async () => {
  for (const tracked of opened.splice(0)) tracked.client.close();
  await server?.close();
  server = null;
});

/** Commands of `pid`'s children that exited and were never reaped (state Z in /proc). */
function zombieChildren(parentPid: number): string[] {
  const zombies: string[] = [];
  for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const end = stat.lastIndexOf(')');
      const [state, parent] = stat.slice(end + 2).split(' ');
      if (state === 'Z' && Number(parent) === parentPid) zombies.push(stat.slice(stat.indexOf('(') + 1, end));
    } catch {
      // gone while we looked
    }
  }
  return zombies;
}

function faultServer(overrides: Parameters<typeof startTestServer>[0] = {}): Promise<TestServer> {
  return startTestServer({
    workers: 2,
    faultInjection: true,
    heartbeatIntervalMs: 100,
    heartbeatTimeoutMs: 800,
    workerMaxOldMb: 64,
    ...overrides,
  });
}

async function openRooms(prefix: string): Promise<{ token: string; clients: Tracked[] }[]> {
  const rooms: { token: string; clients: Tracked[] }[] = [];
  for (let r = 0; r < CODESPACES; r++) {
    const token = `tmp-${prefix}-${r}`;
    const clients = [await openTracked(server!.url, token), await openTracked(server!.url, token, 'msgpack')];
    opened.push(...clients);
    rooms.push({ token, clients });
  }
  // Forty joins on a busy machine (load 8-13 on 2 cores) took longer than 5 s: wait for the
  // condition, with a deadline far beyond it.
  await waitFor(() => rooms.every((room) => (server!.hub.supervisor.channel(room.token)?.thread ?? -1) > 0), 30_000, 'channels ready');
  return rooms;
}

/** Data directories of the file-backplane runs: a worker killed mid-commit must not harm the store. */
const dataRoot = mkdtempSync(join(tmpdir(), 'codespace-faults-'));
afterAll(() => rmSync(dataRoot, { recursive: true, force: true }));
let dataDirs = 0;

describe('a faulted channel', () => {
  for (const [kind, store] of [['throw', 'memory'], ['hang', 'memory'], ['oom', 'memory'], ['hang', 'file'], ['oom', 'file']] as [FaultKind, 'memory' | 'file'][]) {
    it(`${kind}${store === 'file' ? ' (file backplane)' : ''}: others keep every message in order; the faulted side resyncs and loses nothing`, async () => {
      server = await faultServer(store === 'file' ? { dataDir: join(dataRoot, `data-${dataDirs++}`) } : {});
      const rooms = await openRooms(`fault-${kind}`);
      const victim = rooms[3];
      const victimThread = server.hub.supervisor.channel(victim.token)!.thread;
      const mates = rooms.filter((room) => server!.hub.supervisor.channel(room.token)!.thread === victimThread);
      const running = storm(rooms.flatMap((room) => room.clients), 20, 15, true);
      await new Promise((resolve) => setTimeout(resolve, 100));
      const faulter = await TestClient.join(server.urlFor(victim.token));
      faulter.client.send({ operation: '__fault', kind });
      await running;

      for (const room of rooms) {
        const n = await settle(room.clients, 20_000);
        const text = room.clients[0].client.text;
        for (const tracked of room.clients) {
          expect(tracked.client.text).toBe(text);
          for (const token of tracked.inserted) expect(text).toContain(token);
        }
        expect(n).toBe(totalAcks(room.clients));
      }
      // Untouched: every codespace that did not share the victim's fate. On the file backplane a
      // restarted channel may load versions its clients have not seen yet (the dead worker's last
      // queued commit lands after it): their SDK then resumes over a new connection instead of
      // taking the `resync` text (client.ts #connected), which counts as having been restarted.
      const resynced = rooms.filter((room) => room.clients.some((tracked) => tracked.resyncs > 0 || (store === 'file' && tracked.client.reconnects > 0)));
      expect(resynced).toContain(victim);
      for (const room of rooms.filter((candidate) => !resynced.includes(candidate))) {
        for (const tracked of room.clients) {
          expect(tracked.errors).toEqual([]);
          expect(sawEveryVersionOnce(tracked, tracked.client.version)).toBe(true);
          expect(tracked.client.reconnects).toBe(0);
        }
      }
      if (kind === 'throw') {
        // Only the channel that threw restarted.
        expect(resynced).toEqual([victim]);
      } else {
        // The whole worker went: its channels, and only its channels, resynced.
        expect(new Set(resynced)).toEqual(new Set(mates));
        expect(mates.length).toBeLessThan(CODESPACES);
        expect(server.logs.some((line) => line.event === 'worker_replaced')).toBe(true);
      }
      if (kind === 'hang') expect(server.logs.some((line) => line.event === 'worker_hung' && line.fields.thread === victimThread)).toBe(true);
      // Clients of resynced codespaces kept their connections.
      if (store === 'memory') for (const room of resynced) for (const tracked of room.clients) expect(tracked.client.reconnects).toBe(0);
      expect(server.logs.some((line) => line.event === 'fault_injected' && line.fields.codespace === victim.token)).toBe(true);
      faulter.client.close();
    }, 180_000);
  }

  it('replacing a hung worker leaves no unreaped process behind (make run, in its own process)', async () => {
    // tsx registered in each worker started an esbuild service that became a zombie when the
    // worker was terminated; workers now load the built JavaScript of dist/.
    const instance = await startInstance({ WORKERS: '2', FAULT_INJECTION: '1', HEARTBEAT_INTERVAL_MS: '100', HEARTBEAT_TIMEOUT_MS: '800' });
    try {
      for (let round = 0; round < 2; round++) {
        const { client } = await TestClient.join(`${instance.url}/codespace/tmp-zombie-${round}/`);
        client.send({ operation: '__fault', kind: 'hang' });
        await waitFor(() => instance.logs.filter((line) => line.event === 'worker_replaced').length > round, 15_000, 'worker replaced');
        client.close();
      }
      const { client } = await TestClient.join(`${instance.url}/codespace/tmp-zombie-after/`);
      client.close();
      expect(zombieChildren(instance.process.pid!)).toEqual([]);
    } finally {
      await instance.kill();
    }
  }, 40_000);

  it('with FAULT_INJECTION off, __fault is an unknown operation', async () => {
    server = await startTestServer({ faultInjection: false });
    const { client } = await TestClient.join(server.urlFor('tmp-no-faults'));
    client.send({ operation: '__fault', kind: 'throw' });
    expect((await client.next((m) => m.operation === 'error')).data.code).toBe('unknown_operation');
    expect(server.hub.supervisor.counts.restarts).toBe(0);
    client.close();
  });
});

describe('the restart budget', () => {
  it('a codespace that faults on every start ends with 4500 and is refused for the cool-down; others go on', async () => {
    server = await faultServer({ maxRestarts: 3, restartWindowMs: 30_000, restartCooldownMs: 1500 });
    const bystander = await openTracked(server.url, 'tmp-bystander');
    opened.push(bystander);
    const { client: doomed } = await TestClient.join(server.urlFor('tmp-doomed'));
    // Every time the channel comes back, it is faulted again.
    doomed.send({ operation: '__fault', kind: 'throw' });
    doomed.socket.on('message', () => {
      const last = doomed.messages[doomed.messages.length - 1];
      if (last?.operation === 'resync') doomed.send({ operation: '__fault', kind: 'throw' });
    });
    const running = storm([bystander], 20, 20, true);
    expect((await doomed.closedWith(10_000)).code).toBe(4500);
    expect(doomed.all((m) => m.operation === 'resync').length).toBe(3);
    // Refused during the cool-down...
    const refused = await TestClient.open(server.urlFor('tmp-doomed'));
    expect((await refused.closedWith()).code).toBe(4500);
    expect(server.logs.some((line) => line.event === 'channel_refused')).toBe(true);
    await running;
    await settle([bystander]);
    expect(bystander.resyncs).toBe(0);
    expect(bystander.errors).toEqual([]);
    // ... and welcome again after it.
    await new Promise((resolve) => setTimeout(resolve, 1600));
    const back = await TestClient.join(server.urlFor('tmp-doomed'));
    expect(back.connected.operation).toBe('connected');
    back.client.close();
  }, 30_000);
});
