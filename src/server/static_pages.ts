/**
 * The demo and status pages: files built ahead of time by scripts/build_pages.mjs into
 * dist/pages/ (HTML, and hashed JS and CSS under assets/), read once into memory and served
 * from there: a request names a file in that table or gets 404, and never reaches the disk.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

export interface PageFile {
  body: Buffer;
  /** The same bytes gzipped, for text worth compressing (the editor's bundle: ~500 KB, ~170 KB gzipped). */
  gzipped: Buffer | null;
  contentType: string;
  etag: string;
  /** Hashed assets never change under their name; HTML is checked on every load. */
  immutable: boolean;
}

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
};

/**
 * Where the build puts the pages, seen from this module: from src/server/ (run from source) and
 * from a compiled dist/server/ or dist/src/server/ (the package). PAGES_DIR_CANDIDATES is the
 * one place to add another layout.
 */
const PAGES_DIR_CANDIDATES = ['../../dist/pages/', '../pages/', '../../pages/'];

export function findPagesDir(): string | null {
  for (const candidate of PAGES_DIR_CANDIDATES) {
    const dir = fileURLToPath(new URL(candidate, import.meta.url));
    if (existsSync(`${dir}index.html`)) return dir;
  }
  return null;
}

function contentTypeOf(name: string): string | null {
  const dot = name.lastIndexOf('.');
  return dot < 0 ? null : CONTENT_TYPES[name.slice(dot)] ?? null;
}

/** Every servable file of the pages directory, by URL path (`/index.html`, `/assets/demo-ABC.js`). */
export function loadPages(dir: string): Map<string, PageFile> {
  const files = new Map<string, PageFile>();
  const add = (urlPath: string, file: string, immutable: boolean): void => {
    const contentType = contentTypeOf(file);
    if (!contentType) return;
    const body = readFileSync(file);
    const gzipped = body.length > 1024 && !contentType.startsWith('image/png') ? gzipSync(body, { level: 9 }) : null;
    files.set(urlPath, { body, gzipped, contentType, immutable, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` });
  };
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.isFile()) add(`/${entry.name}`, `${dir}${entry.name}`, false);
  }
  if (existsSync(`${dir}assets`)) {
    for (const entry of readdirSync(`${dir}assets`, { withFileTypes: true })) {
      if (entry.isFile()) add(`/assets/${entry.name}`, `${dir}assets/${entry.name}`, true);
    }
  }
  return files;
}
