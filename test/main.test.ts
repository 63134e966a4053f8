/**
 * The server as `make run` starts it, in a child process, on Node, Bun and Deno: one printed line
 * saying where it listens, then a join/edit/broadcast round trip through real sockets.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { TestClient } from './support/ws_client.ts';

const RUNTIMES: Record<string, string[]> = {
  // When the suite itself runs on Bun, process.execPath is Bun: name Node by its command.
  // The built JavaScript, as `make run` and the package start it (vitest's globalSetup builds it).
  node: [(globalThis as { Bun?: unknown }).Bun ? 'node' : process.execPath, 'dist/main.js'],
  bun: ['node_modules/.bin/bun', 'dist/main.js'],
  // The Deno smoke run: `deno task start` from deno.json, Deno from the npm package `deno`.
  deno: ['node_modules/.bin/deno', 'task', '--quiet', 'start'],
};

let child: ChildProcess | null = null;

afterEach(async () => {
  if (child && child.exitCode === null) {
    child.kill('SIGTERM');
    await once(child, 'exit');
  }
  child = null;
});

async function startMain(runtime: string, env: Record<string, string>, args: string[] = [], runtimeFlags: string[] = []): Promise<{ line: string; port: number }> {
  const [command, ...rest] = RUNTIMES[runtime];
  child = spawn(command, [...runtimeFlags, ...rest, ...args], { env: { ...process.env, PORT: '0', WORKERS: '2', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr!.on('data', (chunk) => (err += chunk));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no listening line; stdout ${out} stderr ${err}`)), 20_000);
    child!.stdout!.on('data', (chunk) => {
      out += chunk;
      const match = /listening on ws:\/\/127\.0\.0\.1:(\d+)/.exec(out);
      if (match) {
        clearTimeout(timer);
        resolve({ line: out.trim(), port: Number(match[1]) });
      }
    });
    child!.on('exit', (code) => reject(new Error(`exited ${code}; stdout ${out} stderr ${err}`)));
  });
}

describe('main', () => {
  for (const runtime of Object.keys(RUNTIMES)) {
    it(`runs on ${runtime}: one line, then join, edit and broadcast`, async () => {
      const { line, port } = await startMain(runtime, {});
      expect(line).toMatch(new RegExp(`2 workers, memory backplane, ${runtime}`));
      const url = `ws://127.0.0.1:${port}/codespace/tmp-${runtime}-round-trip/`;
      const { client: a } = await TestClient.join(url);
      const { client: b } = await TestClient.join(url, 'msgpack');
      a.send({ operation: 'insert_value', changes: [{ from: 0, to: 0, insert: 'héllo 😀' }], version: 0, ref: 'r' });
      expect(await a.next((m) => m.operation === 'ack')).toMatchObject({ version: 1, ref: 'r' });
      expect(await b.next((m) => m.operation === 'insert_value')).toMatchObject({ version: 1, changes: [{ from: 0, to: 0, insert: 'héllo 😀' }] });
      a.close();
      b.close();
    });
  }

  it('starts its workers when Node is given V8 flags, which workers refuse (ERR_WORKER_INVALID_EXEC_ARGV)', async () => {
    const { port } = await startMain('node', {}, [], ['--max-old-space-size=2048', '--stack-size=2000', '--no-warnings']);
    const url = `ws://127.0.0.1:${port}/codespace/tmp-v8-flags/`;
    const { client: a } = await TestClient.join(url);
    const { client: b } = await TestClient.join(url);
    a.send({ operation: 'insert_value', changes: [{ from: 0, to: 0, insert: 'x' }], version: 0, ref: 'r' });
    expect(await a.next((m) => m.operation === 'ack')).toMatchObject({ version: 1, ref: 'r' });
    expect(await b.next((m) => m.operation === 'insert_value')).toMatchObject({ version: 1 });
    a.close();
    b.close();
  });

  for (const runtime of ['bun', 'deno']) {
    it(`make run RUNTIME=${runtime} runs on ${runtime}`, async () => {
      // Its own process group: make does not pass SIGTERM on to the server it started. `-o`: never
      // `npm ci` from inside the suite (a package.json newer than node_modules would ask for it),
      // nor a second build (the suite's setup built dist/; a build under load took past the timeout).
      const make = spawn('make', ['-s', '-o', 'node_modules/.package-lock.json', '-o', 'dist/.built', 'run', `RUNTIME=${runtime}`, 'ARGS='], { env: { ...withoutMake(process.env), PORT: '0', WORKERS: '1', DATA_DIR: '' }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
      try {
        let out = '';
        make.stderr!.on('data', (chunk) => (out += chunk));
        const line = await new Promise<string>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`no listening line: ${out}`)), 25_000);
          make.stdout!.on('data', (chunk) => {
            out += chunk;
            const match = /^codespace listening on .*$/m.exec(out);
            if (match) {
              clearTimeout(timer);
              resolve(match[0]);
            }
          });
          make.on('exit', (code) => reject(new Error(`make exited ${code}: ${out}`)));
        });
        expect(line).toMatch(new RegExp(`\\(1 worker, memory backplane, ${runtime} [0-9.]+\\)$`));
      } finally {
        if (make.exitCode === null && make.signalCode === null) {
          const exited = once(make, 'exit');
          process.kill(-make.pid!, 'SIGTERM');
          await exited;
        }
      }
    });
  }

  it('names a bad setting and exits 2', async () => {
    const [command, ...rest] = RUNTIMES.node;
    const proc = spawn(command, [...rest], { env: { ...process.env, PING_INTERVAL_MS: 'soon' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    proc.stderr!.on('data', (chunk) => (err += chunk));
    const [code] = await once(proc, 'exit');
    expect(code).toBe(2);
    expect(err).toMatch(/PING_INTERVAL_MS/);
  });

  it('lists every setting with --help', async () => {
    const [command, ...rest] = RUNTIMES.node;
    const proc = spawn(command, [...rest, '--help'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    proc.stdout!.on('data', (chunk) => (out += chunk));
    await once(proc, 'exit');
    for (const name of ['PORT', 'HOST', 'WORKERS', 'PING_INTERVAL_MS', 'IDLE_TIMEOUT_MS', 'MAX_MESSAGE_BYTES', 'MAX_DOC_LENGTH', 'HISTORY', 'ALLOW_TMP', 'API_BASE_URL', 'JWT_SECRET']) {
      expect(out).toContain(name);
    }
  });
});

/**
 * The environment without what an outer `make test ARGS=...` passes its sub-makes (MAKEFLAGS
 * carries ARGS: `--reporter=...` reached the server as an option and it exited 2).
 */
function withoutMake(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const { MAKEFLAGS: _flags, MFLAGS: _mflags, MAKELEVEL: _level, MAKEOVERRIDES: _overrides, ...rest } = env;
  return rest;
}
