/** The worker bundle on Node: built once, loadable, and old bundles cleared away. */
import { existsSync, mkdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { workerExecArgv } from '../src/workers/pool.ts';
import { channelHostEntry, onNode } from '../src/workers/worker_bundle.ts';

const CACHE_DIR = fileURLToPath(new URL('../node_modules/.cache/codespace/', import.meta.url));

describe('channelHostEntry', () => {
  it.runIf(onNode())('bundles the channel host into plain JavaScript and removes bundles untouched for a day', async () => {
    mkdirSync(CACHE_DIR, { recursive: true });
    const stale = `${CACHE_DIR}channel_host-00000000dead0000.mjs`;
    const recent = `${CACHE_DIR}channel_host-00000000beef0000.mjs`;
    for (const file of [stale, recent]) writeFileSync(file, 'export default null;\n');
    const twoDaysAgo = new Date(Date.now() - 2 * 86_400_000);
    utimesSync(stale, twoDaysAgo, twoDaysAgo);
    const logged: string[] = [];
    const entry = channelHostEntry((event) => logged.push(event));
    expect(logged).toEqual([]);
    expect(entry).toMatch(/\/node_modules\/\.cache\/codespace\/channel_host-[0-9a-f]{16}\.mjs$/);
    // Plain JavaScript that Node loads without a TypeScript loader, exporting the task entry.
    const loaded = (await import(entry)) as { default: unknown };
    expect(typeof loaded.default).toBe('function');
    expect(existsSync(stale)).toBe(false);
    expect(existsSync(recent)).toBe(true);
    rmSync(recent);
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
