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
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
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

/** Folders of dist/ that bundling steps write, not one file per source file: add yours here. */
const BUNDLE_DIRS = new Set(['browser', 'pages']);

/**
 * Built files whose source is gone (a module deleted or renamed): tsc leaves them, and `npm
 * pack` would ship them.
 */
function pruneOrphans(dir = DIST, relative = '') {
  for (const name of readdirSync(dir)) {
    const path = `${dir}${name}`;
    if (statSync(path).isDirectory()) {
      if (!BUNDLE_DIRS.has(`${relative}${name}`)) pruneOrphans(`${path}/`, `${relative}${name}/`);
      continue;
    }
    const source = /^(.*)\.(d\.ts|js)$/.exec(name);
    if (source && !existsSync(`${ROOT}src/${relative}${source[1]}.ts`)) rmSync(path);
  }
}

/** Writes `text` to `file` only when it differs: a running server or test may be reading it. */
function writeIfChanged(file, text) {
  if (existsSync(file) && readFileSync(file, 'utf8') === text) return;
  mkdirSync(file.slice(0, file.lastIndexOf('/')), { recursive: true });
  writeFileSync(`${file}.tmp`, text);
  renameSync(`${file}.tmp`, file);
}

/** The client SDK as one browser ES module (standard WebSocket, no Node imports), for pages. */
async function browserClient() {
  const { build } = await import('esbuild');
  const result = await build({
    entryPoints: [`${ROOT}src/client/client.ts`],
    bundle: true,
    minify: true,
    platform: 'browser',
    format: 'esm',
    target: 'es2022',
    write: false,
    logLevel: 'warning',
  });
  writeIfChanged(`${DIST}browser/client.js`, result.outputFiles[0].text);
}

/** The demo editor and the status page, bundled ahead of time into dist/pages/ (build_pages.mjs). */
async function pages() {
  const { buildPages } = await import('./build_pages.mjs');
  await buildPages({ outdir: `${DIST}pages` });
}

const STEPS = [
  ['tsc', compile],
  ['prune', () => pruneOrphans()],
  ['browser client', browserClient],
  ['pages', pages],
];

for (const [name, step] of STEPS) {
  try {
    await step();
  } catch (error) {
    process.stderr.write(`build: ${name}: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  }
}

// The stamp `make` compares with the sources (Makefile BUILD_STAMP): written by every build, so
// a build the test suite ran is not run again by `make run`.
writeFileSync(`${DIST}.built`, `${new Date().toISOString()}\n`);
