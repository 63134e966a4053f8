/**
 * vitest globalSetup: builds dist/ (incrementally, well under a second when nothing changed)
 * before any test starts, because on Node the pool's workers load the built channel host
 * (src/workers/worker_bundle.ts) and servers started as `make run` does run dist/main.js.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export default function buildDist(): void {
  const root = fileURLToPath(new URL('../..', import.meta.url));
  // `node`, not process.execPath: under `bun --bun` the suite's own runtime is Bun.
  const result = spawnSync('node', ['scripts/build.mjs'], { cwd: root, encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`scripts/build.mjs failed:\n${result.stdout}${result.stderr}`);
}
