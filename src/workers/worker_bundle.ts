/**
 * Which file a pool worker loads. Nothing is compiled at run time: from the built package
 * (dist/, what `npm pack` ships and `make run` starts) a worker loads the built channel host
 * beside this file. From the TypeScript sources, Bun and Deno load the host as it is; Node 20
 * cannot, and registering tsx in every worker started one esbuild service process per worker
 * that nobody reaped once the worker was terminated (a zombie per hung worker replaced, seen in
 * the stress tool's hang runs), so Node loads the host that `scripts/build.mjs` built into
 * dist/ (the test suite builds it before it starts).
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** True on Node itself, false on Bun and Deno (which load TypeScript and speak Node's APIs). */
export function onNode(): boolean {
  const runtimes = globalThis as { Bun?: unknown; Deno?: unknown };
  return !runtimes.Bun && !runtimes.Deno;
}

/** True when this module runs from the TypeScript sources, not from dist/. */
function fromSources(moduleUrl: string): boolean {
  return moduleUrl.endsWith('.ts');
}

/**
 * The URL a worker is started from. `moduleUrl` is this module's own (a parameter for tests).
 * Throws when Node runs the sources and dist/ was never built: the error says how to build it.
 */
export function channelHostEntry(moduleUrl: string = import.meta.url): string {
  if (!fromSources(moduleUrl)) return new URL('./channel_host.js', moduleUrl).href;
  if (!onNode()) return new URL('./channel_host.ts', moduleUrl).href;
  const built = new URL('../../dist/workers/channel_host.js', moduleUrl);
  if (!existsSync(built)) {
    throw new Error(`Node runs the TypeScript sources, and its workers load the built channel host, which is missing: run \`npm run build\` (${fileURLToPath(built)})`);
  }
  return built.href;
}
