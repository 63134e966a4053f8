#!/usr/bin/env node
/**
 * Builds dist/ from src/: ES modules and .d.ts files by tsc (incremental: a run with nothing
 * changed takes well under a second), then the browser bundle of the client SDK by esbuild.
 * `npm pack` runs it (prepack), `make run` before starting, the test suite before it starts.
 * Nothing compiles at run time: the server, its workers and bin/ load what this writes.
 *
 * Each step is one entry of STEPS: a later build (pages, say) adds its own.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const DIST = `${ROOT}dist/`;

/** JavaScript and declarations, one file per source file, relative imports rewritten to `.js`. */
function compile() {
  const tsc = `${ROOT}node_modules/typescript/bin/tsc`;
  const result = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd: ROOT, stdio: 'inherit' });
  if (result.status !== 0) throw new Error(`tsc failed (exit ${result.status})`);
  rewriteDeclarationImports(DIST);
}

/**
 * Declarations a user's standard `nodenext` project accepts: tsc rewrites `./x.ts` to `./x.js`
 * in JavaScript (rewriteRelativeImportExtensions) but keeps `.ts` in declarations, which such a
 * project refuses without allowImportingTsExtensions; `.js` resolves to the `.d.ts` beside it.
 */
function rewriteDeclarationImports(dir) {
  for (const name of readdirSync(dir)) {
    const path = `${dir}${name}`;
    if (statSync(path).isDirectory()) rewriteDeclarationImports(`${path}/`);
    else if (name.endsWith('.d.ts')) {
      const text = readFileSync(path, 'utf8');
      let rewritten = text.replace(/((?:from|import)\s*\(?\s*['"])(\.{1,2}\/[^'"]*?)\.ts(['"])/g, '$1$2.js$3');
      // The sources see MessagePort through the DOM lib; a Node user's project has no DOM lib,
      // and Node's own type of the ports these files pass around is worker_threads'.
      if (/\bMessagePort\b/.test(rewritten) && !/import[^;]*\bMessagePort\b/.test(rewritten)) {
        rewritten = `import type { MessagePort } from 'node:worker_threads';\n${rewritten}`;
      }
      if (rewritten !== text) writeFileSync(path, rewritten);
    }
  }
}

/** The client SDK as one browser ES module (standard WebSocket, no Node imports), for pages. */
async function browserClient() {
  const { build } = await import('esbuild');
  await build({
    entryPoints: [`${ROOT}src/client/client.ts`],
    outfile: `${DIST}browser/client.js`,
    bundle: true,
    platform: 'browser',
    format: 'esm',
    target: 'es2022',
    logLevel: 'warning',
  });
}

const STEPS = [
  ['tsc', compile],
  ['browser client', browserClient],
];

for (const [name, step] of STEPS) {
  try {
    await step();
  } catch (error) {
    process.stderr.write(`build: ${name}: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  }
}
