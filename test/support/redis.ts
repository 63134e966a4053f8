/**
 * A throwaway `redis-server` of the test's own, on a free loopback port (never 6379), optionally
 * with an append-only file so that a restart keeps what was acked.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';

export interface TestRedis {
  readonly port: number;
  readonly url: string;
  /** A client for asserts on the keys; closed by `stop`. */
  readonly client: Redis;
  /** Kills the server (SIGKILL: with persistence, every acked write is already in its AOF). */
  kill(): Promise<void>;
  /** Starts it again on the same port and directory. */
  start(): Promise<void>;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export async function startRedis(options: { persistent?: boolean } = {}): Promise<TestRedis> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'codespace-redis-'));
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--dir', dir, '--daemonize', 'no', '--loglevel', 'warning'];
  args.push(...(options.persistent ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no']));
  let child: ChildProcess | null = null;

  async function start(): Promise<void> {
    child = spawn('redis-server', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    const spawned = child;
    let stderr = '';
    spawned.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const failed = new Promise<never>((_, reject) => {
      spawned.once('error', (error) => reject(new Error(`cannot start redis-server (is it installed? make test installs it): ${error.message}`)));
      spawned.once('exit', (code) => reject(new Error(`redis-server exited with ${code}: ${stderr}`)));
    });
    const probe = new Redis(port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    probe.on('error', () => {});
    const deadline = Date.now() + 10_000;
    try {
      for (;;) {
        const ok = await Promise.race([probe.connect().then(() => probe.ping()).then(() => true, () => false), failed]);
        if (ok) break;
        if (Date.now() > deadline) throw new Error('redis-server did not answer within 10 s');
        probe.disconnect();
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    } finally {
      probe.disconnect();
    }
    failed.catch(() => {});
  }

  async function kill(): Promise<void> {
    const running = child;
    child = null;
    if (!running || running.exitCode !== null) return;
    const exited = new Promise((resolve) => running.once('exit', resolve));
    running.kill('SIGKILL');
    await exited;
  }

  await start();
  const client = new Redis(port, '127.0.0.1', { maxRetriesPerRequest: 1 });
  client.on('error', () => {});
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    client,
    kill,
    start,
    async stop() {
      client.disconnect();
      await kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
