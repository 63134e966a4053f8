/** Which file a pool worker loads: built JavaScript on Node, never compiled at run time. */
import { existsSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { workerExecArgv } from '../src/workers/pool.ts';
import { channelHostEntry, onNode } from '../src/workers/worker_bundle.ts';

const ROOT = new URL('..', import.meta.url);

describe('channelHostEntry', () => {
  it('from dist/, loads the built host beside it, on every runtime', () => {
    expect(channelHostEntry(new URL('dist/workers/worker_bundle.js', ROOT).href)).toBe(new URL('dist/workers/channel_host.js', ROOT).href);
  });

  it.runIf(onNode())('from the sources on Node, loads the host built into dist/ (plain JavaScript, exporting the task entry)', async () => {
    // Nothing is written into node_modules at run time (an old version bundled into its .cache;
    // test/package.test.ts checks a fresh install as a whole).
    const cache = new URL('node_modules/.cache/codespace/', ROOT);
    const cached = (): string[] => (existsSync(cache) ? readdirSync(cache) : []);
    const before = cached();
    const entry = channelHostEntry();
    expect(entry).toBe(new URL('dist/workers/channel_host.js', ROOT).href);
    const loaded = (await import(entry)) as { default: unknown };
    expect(typeof loaded.default).toBe('function');
    expect(cached()).toEqual(before);
  });

  it.runIf(onNode())('from the sources on Node without a build, says how to build', () => {
    const elsewhere = new URL('file:///nonexistent/src/workers/worker_bundle.ts').href;
    expect(() => channelHostEntry(elsewhere)).toThrow(/npm run build/);
  });

  it.runIf(!onNode())('from the sources on Bun and Deno, loads the TypeScript host as it is', () => {
    expect(channelHostEntry()).toBe(new URL('src/workers/channel_host.ts', ROOT).href);
  });

  it.runIf(onNode())('is loaded by import() in the workers, never by require(esm) (which aborted a process once on Node 20)', async () => {
    const entry = fileURLToPath(channelHostEntry());
    // What piscina does first: `require(filename)`. In a pool's worker it must throw at once.
    const code = `const { parentPort, workerData } = require('node:worker_threads');
      try { require(workerData); parentPort.postMessage('required'); } catch (error) { parentPort.postMessage(error.code); }`;
    const worker = new Worker(code, { eval: true, workerData: entry, execArgv: workerExecArgv() });
    const answer = await new Promise((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    await worker.terminate();
    expect(answer).toBe('ERR_REQUIRE_ESM');
    // A flag of main's own about require(esm) is left as it is.
    expect(workerExecArgv(['--experimental-require-module'])).toEqual(['--experimental-require-module']);
  });
});
