#!/usr/bin/env node
/**
 * Builds the demo editor (`/`) and the live status page (`/status`) ahead of time with esbuild:
 * one minified ESM bundle and one stylesheet per page, named by content hash under assets/, and
 * the HTML with those names filled in. Output: dist/pages/ (the server reads it from there; see
 * src/server/static_pages.ts). Nothing is fetched at run time, from a CDN or anywhere else.
 *
 *     node scripts/build_pages.mjs [outdir]
 *
 * or from another build script: `import { buildPages } from './build_pages.mjs'`.
 */
import { build } from 'esbuild';
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

export const PAGES = [
  { key: 'demo', entry: 'src/pages/demo/demo.ts', html: 'src/pages/demo/index.html', out: 'index.html' },
  { key: 'status', entry: 'src/pages/status/status.ts', html: 'src/pages/status/index.html', out: 'status.html' },
];

/**
 * Builds every page into `outdir` (default dist/pages), replacing what was there at once (a
 * server reading it meanwhile sees the old set or the new one). Returns the files written.
 */
export async function buildPages({ outdir = join(ROOT, 'dist/pages'), minify = true } = {}) {
  const staging = `${outdir}.tmp-${process.pid}-${Date.now()}`;
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(join(staging, 'assets'), { recursive: true });
  const result = await build({
    absWorkingDir: ROOT,
    entryPoints: Object.fromEntries(PAGES.map((page) => [page.key, page.entry])),
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: ['chrome111', 'firefox113', 'safari16.4'],
    minify,
    outdir: join(staging, 'assets'),
    entryNames: '[name]-[hash]',
    assetNames: '[name]-[hash]',
    metafile: true,
    logLevel: 'warning',
  });
  const written = [];
  for (const page of PAGES) {
    const [path, output] = Object.entries(result.metafile.outputs).find(([, candidate]) => candidate.entryPoint === page.entry) ?? [];
    if (!path) throw new Error(`esbuild wrote no bundle for ${page.entry}`);
    const names = { js: `/assets/${basename(path)}`, css: output.cssBundle ? `/assets/${basename(output.cssBundle)}` : null };
    let html = readFileSync(join(ROOT, page.html), 'utf8');
    html = html.replaceAll(`%${page.key}.js%`, names.js);
    if (names.css) html = html.replaceAll(`%${page.key}.css%`, names.css);
    if (/%[a-z]+\.(js|css)%/.test(html)) throw new Error(`${page.html} names an asset the build did not make: ${html.match(/%[a-z]+\.(js|css)%/)[0]}`);
    writeFileSync(join(staging, page.out), html);
    written.push(page.out, relative(staging, join(ROOT, path)));
    if (output.cssBundle) written.push(relative(staging, join(ROOT, output.cssBundle)));
  }
  const old = `${outdir}.old-${process.pid}-${Date.now()}`;
  mkdirSync(dirname(outdir), { recursive: true });
  try {
    renameSync(outdir, old);
  } catch {
    // nothing built before
  }
  renameSync(staging, outdir);
  rmSync(old, { recursive: true, force: true });
  return written;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const outdir = process.argv[2] ? resolve(process.argv[2]) : undefined;
  const started = Date.now();
  buildPages({ outdir }).then(
    (files) => console.log(`pages built in ${Date.now() - started} ms: ${files.join(', ')}`),
    (error) => {
      console.error(`build_pages: ${error instanceof Error ? error.message : String(error)}`);
      process.exit(1);
    },
  );
}
