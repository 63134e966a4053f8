/**
 * The server on the file backplane (DATA_DIR), in this process: channels in workers and in-process
 * (WORKERS=0) keep documents, versions, resume and ref dedupe across a restart; one server per
 * directory; abandoned codespaces expire from the file and the memory store, open ones never.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { DataDirError } from '../src/backplane/data_dir.ts';
import { loadConfig } from '../src/config.ts';
import { startTestServer, type TestServer } from './support/server.ts';
import { canMount, mountTmpfs, unmount } from './support/tmpfs.ts';

const isBun = (globalThis as { Bun?: unknown }).Bun !== undefined;
import { TestClient, waitFor, type Message } from './support/ws_client.ts';

const root = mkdtempSync(join(tmpdir(), 'codespace-file-server-'));
let n = 0;
const newDir = (): string => join(root, `data-${n++}`);
afterAll(() => rmSync(root, { recursive: true, force: true }));

const servers: TestServer[] = [];
const clients: TestClient[] = [];
afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  for (const server of servers.splice(0)) await server.close();
});

async function start(dataDir: string, workers: number, overrides: Parameters<typeof startTestServer>[0] = {}): Promise<TestServer> {
  const server = await startTestServer({ dataDir, workers, ...overrides });
  servers.push(server);
  return server;
}

async function joinAt(url: string): Promise<{ client: TestClient; connected: Message }> {
  const joined = await TestClient.join(url);
  clients.push(joined.client);
  return joined;
}

async function stop(server: TestServer): Promise<void> {
  servers.splice(servers.indexOf(server), 1);
  await server.close();
}

describe('the server on a file backplane', () => {
  for (const workers of [2, 0]) {
    it(`keeps text, versions, resume and ref dedupe across a restart (WORKERS=${workers})`, async () => {
      const dataDir = newDir();
      let server = await start(dataDir, workers);
      expect(server.hub.backplaneName).toBe('file');
      const query = 'client=restart-test-client-key';
      const { client: writer } = await joinAt(server.urlFor('tmp-restart', query));
      for (let i = 1; i <= 30; i++) {
        writer.send({ operation: 'insert_value', changes: [{ from: 0, to: 0, insert: `<${i}>` }], version: i - 1, ref: `r${i}` });
        expect(await writer.next((m) => m.operation === 'ack')).toMatchObject({ version: i, ref: `r${i}` });
      }
      const text = Array.from({ length: 30 }, (_, i) => `<${30 - i}>`).join('');
      writer.close();
      await stop(server);

      server = await start(dataDir, workers);
      const { connected } = await joinAt(server.urlFor('tmp-restart'));
      expect(connected.data).toMatchObject({ version: 30, code: text });
      const { client: resumed, connected: resumedWelcome } = await joinAt(server.urlFor('tmp-restart', `version=25&${query}`));
      expect(resumedWelcome.data).toMatchObject({ resumed: true, version: 30 });
      for (let v = 26; v <= 30; v++) expect(await resumed.next((m) => m.operation === 'insert_value')).toMatchObject({ version: v, ref: `r${v}` });
      // The last acked change, resent after the restart: acked with its version, not applied again.
      resumed.send({ operation: 'insert_value', changes: [{ from: 0, to: 0, insert: '<30>' }], version: 29, ref: 'r30' });
      expect(await resumed.next((m) => m.operation === 'ack')).toMatchObject({ version: 30, ref: 'r30' });
      resumed.send({ operation: 'insert_value', changes: [{ from: 0, to: 0, insert: '<31>' }], version: 30, ref: 'r31' });
      expect(await resumed.next((m) => m.operation === 'ack')).toMatchObject({ version: 31, ref: 'r31' });
      const { connected: after } = await joinAt(server.urlFor('tmp-restart'));
      expect(after.data).toMatchObject({ version: 31, code: `<31>${text}` });
    });
  }

  // Needs root (mount), as here and in CI: lmdb-js grows its map by itself, so only a small
  // filesystem makes a full disk.
  // Not on Bun: Bun 1.4.5 with lmdb's native addon in worker threads aborted the whole test
  // process on a full disk ("malloc(): corrupted top size", then "Bun has crashed"), in CI on
  // 2026-12-02; the file backplane's own full-disk test (file_backplane.test.ts) runs on Bun.
  it.runIf(canMount(newDir()) && !isBun)('answers edits `unavailable` on a full disk, keeps its channels, and takes edits again once there is space', async () => {
    const mountPoint = newDir();
    expect(mountTmpfs(mountPoint, 'size=4m')).toBe(true);
    try {
      const filler = join(mountPoint, 'filler');
      writeFileSync(filler, Buffer.alloc(2 * 1024 * 1024));
      const server = await start(join(mountPoint, 'data'), 2, { snapshotIntervalMs: 50 });
      const { client } = await joinAt(server.urlFor('tmp-full', 'client=full-disk-client-key'));
      const big = 'y'.repeat(16_000);
      let version = 0;
      let refusal: Message | null = null;
      for (let i = 1; i < 400 && !refusal; i++) {
        client.send({ operation: 'insert_value', changes: [{ from: 0, to: 0, insert: big }], version, ref: `r${i}` });
        const answer = await client.next((m) => m.operation === 'ack' || m.operation === 'error');
        if (answer.operation === 'ack') version = answer.version;
        else refusal = answer;
      }
      expect(refusal).toMatchObject({ data: { code: 'unavailable' } });
      rmSync(filler);
      client.send({ operation: 'insert_value', changes: [{ from: 0, to: 0, insert: 'after' }], version, ref: 'after' });
      expect(await client.next((m) => m.operation === 'ack' || m.operation === 'error')).toMatchObject({ operation: 'ack', version: version + 1 });
      expect(server.logs.filter((entry) => entry.event === 'channel_crashed')).toEqual([]);
      await stop(server);
      const again = await start(join(mountPoint, 'data'), 0);
      const { connected } = await joinAt(again.urlFor('tmp-full'));
      expect(connected.data.version).toBe(version + 1);
      expect(connected.data.code.length).toBe(version * big.length + 'after'.length);
      await stop(again);
    } finally {
      unmount(mountPoint);
    }
  }, 60_000);

  it('refuses a second server on the same DATA_DIR while the first runs, with a clear message', async () => {
    const dataDir = newDir();
    await start(dataDir, 0);
    await expect(startTestServer({ dataDir, workers: 0 })).rejects.toThrow(DataDirError);
    await expect(startTestServer({ dataDir, workers: 0 })).rejects.toThrow(/DATA_DIR .* is in use by this process/);
  });

  it('expires an abandoned codespace from the file store, never an open one', async () => {
    const server = await start(newDir(), 2, { tmpCodespaceTtlS: 1, channelGraceMs: 50 });
    const fileStore = server.hub.fileStore!;
    const { client: open } = await joinAt(server.urlFor('tmp-open'));
    const { client: gone } = await joinAt(server.urlFor('tmp-gone'));
    for (const client of [open, gone]) {
      client.send({ operation: 'insert_value', changes: [{ from: 0, to: 0, insert: 'x' }], version: 0, ref: 'r' });
      await client.next((m) => m.operation === 'ack');
    }
    gone.close();
    await waitFor(() => server.hub.supervisor.channel('tmp-gone') === undefined, 10_000, 'tmp-gone to stop');
    expect(fileStore.size).toBe(2);
    expect(await server.hub.sweep(Date.now() + 60_000)).toBe(1);
    expect((await fileStore.load('tmp-gone')).version).toBe(0);
    expect((await fileStore.load('tmp-open')).version).toBe(1);
  });

  it('expires an abandoned codespace from the memory store too, never an open one', async () => {
    const server = await startTestServer({ tmpCodespaceTtlS: 1, channelGraceMs: 50, workers: 2 });
    servers.push(server);
    const { client: open } = await joinAt(server.urlFor('tmp-open'));
    const { client: gone } = await joinAt(server.urlFor('tmp-gone'));
    for (const client of [open, gone]) {
      client.send({ operation: 'insert_value', changes: [{ from: 0, to: 0, insert: 'x' }], version: 0, ref: 'r' });
      await client.next((m) => m.operation === 'ack');
    }
    gone.close();
    await waitFor(() => server.hub.supervisor.channel('tmp-gone') === undefined, 10_000, 'tmp-gone to stop');
    expect(server.hub.store.size).toBe(2);
    expect(await server.hub.sweep(Date.now() + 60_000)).toBe(1);
    expect(server.hub.store.size).toBe(1);
    expect(server.hub.store.loadNow('tmp-open').version).toBe(1);
  });

  it('sweeps by itself: an abandoned tmp- codespace goes within its TTL and a sweep', async () => {
    const server = await start(newDir(), 0, { tmpCodespaceTtlS: 1, channelGraceMs: 50 });
    const { client } = await joinAt(server.urlFor('tmp-swept'));
    client.send({ operation: 'insert_value', changes: [{ from: 0, to: 0, insert: 'x' }], version: 0, ref: 'r' });
    await client.next((m) => m.operation === 'ack');
    client.close();
    await waitFor(() => server.logs.some((entry) => entry.event === 'codespaces_expired'), 10_000, 'the sweep to remove tmp-swept');
    expect(server.hub.fileStore!.size).toBe(0);
  });

  it('is off unless asked for: startServer() and loadConfig() keep the memory backplane and write no ./data', async () => {
    expect(loadConfig({}).dataDir).toBe('');
    const existed = existsSync('data');
    const server = await startTestServer();
    servers.push(server);
    expect(server.hub.backplaneName).toBe('memory');
    expect(server.hub.fileStore).toBeNull();
    expect(existsSync('data')).toBe(existed);
  });

  it('refuses DATA_DIR together with REDIS_URL', () => {
    expect(() => loadConfig({ DATA_DIR: '/tmp/x', REDIS_URL: 'redis://127.0.0.1:1' })).toThrow(/DATA_DIR and REDIS_URL/);
  });
});
