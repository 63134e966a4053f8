#!/usr/bin/env node
/**
 * A desktop app's collaboration sidecar: the codespace hub embedded in one process, its
 * documents in a local DATA_DIR, an editor page served on loopback. The app's main process
 * starts it (see electron-main.mjs), reads the one JSON line it prints, and opens `editor` in a
 * window; other machines' editors may join through `server` if the app exposes it.
 *
 *     node examples/desktop/sidecar.mjs [--exit-with-parent]
 *
 * Settings are the server's (README, Settings), from the environment. Defaults for a desktop:
 * loopback only, any free port (PORT=0), channels in-process (WORKERS=0), DATA_DIR ./codespace-data, document `notes`
 * (DOC). --exit-with-parent: stop when stdin closes, so that the sidecar never outlives an app
 * that crashed.
 */
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { startServer } from 'codespace';

const EDITOR_PAGE = new URL('./editor.html', import.meta.url);
// The SDK built for browsers, shipped in the package (dist/browser/client.js).
const BROWSER_CLIENT = createRequire(import.meta.url).resolve('codespace/browser-client');

const env = { PORT: '0', WORKERS: '0', DATA_DIR: 'codespace-data', ...process.env };
const doc = /^[A-Za-z0-9_-]{1,100}$/.test(env.DOC ?? '') ? env.DOC : 'notes';
// Loopback whatever HOST says: the editor page and its hub stay on this machine.
const server = await startServer({ host: '127.0.0.1' }, undefined, env);

const pages = createServer(async function servePage(request, response) {
  const path = new URL(request.url ?? '/', 'http://localhost').pathname;
  try {
    if (path === '/') {
      const html = (await readFile(EDITOR_PAGE, 'utf8')).replace('__CODESPACE_URL__', JSON.stringify(`${server.url}/codespace/tmp-${doc}/`));
      return send(response, 200, 'text/html; charset=utf-8', html);
    }
    if (path === '/client.js') return send(response, 200, 'text/javascript; charset=utf-8', await readFile(BROWSER_CLIENT));
    send(response, 404, 'text/plain', 'not found');
  } catch (error) {
    send(response, 500, 'text/plain', String(error));
  }
});

function send(response, status, type, body) {
  response.writeHead(status, { 'Content-Type': type, 'Cache-Control': 'no-store' });
  response.end(body);
}

await new Promise((resolve) => pages.listen(0, '127.0.0.1', resolve));
const { port } = pages.address();
process.stdout.write(`${JSON.stringify({ editor: `http://127.0.0.1:${port}/`, server: server.url, token: `tmp-${doc}`, dataDir: env.DATA_DIR })}\n`);

let stopping = false;
async function stop() {
  if (stopping) return;
  stopping = true;
  pages.close();
  // Flushes every document to DATA_DIR and closes every editor with 1001.
  await server.close();
  process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
if (process.argv.includes('--exit-with-parent')) {
  process.stdin.on('end', stop);
  process.stdin.resume();
}
