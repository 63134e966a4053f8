/**
 * Which file a pool worker loads. Bun and Deno load the TypeScript host as it is. Node 20 cannot,
 * and registering tsx in every worker starts one esbuild service process per worker that nobody
 * reaps once the worker is terminated: each hung worker replaced left a zombie behind (seen in
 * the stress tool's hang runs). So on Node the main thread bundles the host once, with esbuild,
 * into plain JavaScript under node_modules/.cache (packages stay imports, resolved from there),
 * and every worker loads that file; tsx in the workers is only the fallback.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const HOST_SOURCE = new URL('./channel_host.ts', import.meta.url);
const TSX_ENTRY = new URL('./channel_host_entry.mjs', import.meta.url).href;
const CACHE_DIR = new URL('../../node_modules/.cache/codespace/', import.meta.url);

interface EsbuildApi {
  buildSync(options: Record<string, unknown>): { outputFiles?: { text: string }[] };
}

let cached: string | null = null;

/** True on Node itself, false on Bun and Deno (which load TypeScript and speak Node's APIs). */
export function onNode(): boolean {
  const runtimes = globalThis as { Bun?: unknown; Deno?: unknown };
  return !runtimes.Bun && !runtimes.Deno;
}

/** The URL a worker is started from; `log` hears why the bundle could not be made. */
export function channelHostEntry(log: (event: string, fields: Record<string, unknown>) => void = () => {}): string {
  if (!onNode()) return HOST_SOURCE.href;
  if (cached) return cached;
  try {
    const esbuild = createRequire(import.meta.url)('esbuild') as EsbuildApi;
    const result = esbuild.buildSync({
      entryPoints: [fileURLToPath(HOST_SOURCE)],
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      packages: 'external',
      write: false,
      logLevel: 'silent',
    });
    const code = result.outputFiles![0].text;
    // Named by content: processes starting at once agree on the file, and an old one never
    // serves new code.
    const file = new URL(`channel_host-${createHash('sha256').update(code).digest('hex').slice(0, 16)}.mjs`, CACHE_DIR);
    if (!existsSync(file)) {
      mkdirSync(CACHE_DIR, { recursive: true });
      const partial = new URL(`${file.pathname.split('/').pop()}.${process.pid}.tmp`, CACHE_DIR);
      writeFileSync(partial, code);
      renameSync(partial, file);
    }
    removeStaleBundles(file);
    cached = file.href;
  } catch (error) {
    log('worker_bundle_failed', { error: String(error), fallback: 'tsx in each worker' });
    cached = TSX_ENTRY;
  }
  return cached;
}

/** Bundles of older code, untouched for a day (a process still running old code has loaded its own). */
function removeStaleBundles(keep: URL): void {
  const dayAgo = Date.now() - 86_400_000;
  for (const name of readdirSync(CACHE_DIR)) {
    const file = new URL(name, CACHE_DIR);
    if (!/^channel_host-[0-9a-f]+\.mjs(\.\d+\.tmp)?$/.test(name) || file.href === keep.href) continue;
    try {
      if (statSync(file).mtimeMs < dayAgo) rmSync(file, { force: true });
    } catch {
      // another process removed it first
    }
  }
}
