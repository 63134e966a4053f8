/**
 * examples/desktop: the sidecar a desktop app starts. It prints where its editor page and hub
 * listen (loopback), serves the page, and the page, in a real browser, edits one document with
 * an SDK client over the hub; it stops when its parent's pipe closes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { connect, type CodespaceClient } from '../src/client/client.ts';
import { waitFor } from './support/ws_client.ts';

const CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

let sidecar: ChildProcess | null = null;
let browser: BrowserContext | null = null;
let client: CodespaceClient | null = null;
const dirs: string[] = [];

afterEach(async () => {
  client?.close();
  client = null;
  await browser?.close();
  browser = null;
  if (sidecar && sidecar.exitCode === null) {
    const exited = once(sidecar, 'exit');
    sidecar.kill('SIGTERM');
    await exited;
  }
  sidecar = null;
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

interface Announced {
  editor: string;
  server: string;
  token: string;
  dataDir: string;
}

/** Starts the sidecar as an app would and reads its one line. */
async function startSidecar(env: Record<string, string> = {}): Promise<Announced> {
  const dataDir = mkdtempSync(join(tmpdir(), 'codespace-desktop-'));
  dirs.push(dataDir);
  // `node`, as an app's main process runs it (under `bun --bun` this suite's own runtime is Bun).
  const inherited = { ...process.env };
  delete inherited.PORT;
  sidecar = spawn('node', ['examples/desktop/sidecar.mjs', '--exit-with-parent'], {
    env: { ...inherited, HOST: '0.0.0.0', DATA_DIR: dataDir, ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  sidecar.stderr!.on('data', (chunk) => (out += chunk));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no line from the sidecar: ${out}`)), 20_000);
    sidecar!.stdout!.on('data', (chunk) => {
      out += chunk;
      const line = out.split('\n').find((each) => each.startsWith('{'));
      if (!line) return;
      clearTimeout(timer);
      resolve(JSON.parse(line) as Announced);
    });
    sidecar!.on('exit', (code) => reject(new Error(`sidecar exited ${code}: ${out}`)));
  });
}

describe('examples/desktop sidecar', () => {
  it('announces its editor page and hub on loopback, with the data directory it was given', async () => {
    const announced = await startSidecar({ DOC: 'plans' });
    expect(announced.editor).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    // Loopback although HOST said otherwise; any free port.
    expect(announced.server).toMatch(/^ws:\/\/127\.0\.0\.1:\d+$/);
    expect(announced.server).not.toBe('ws://127.0.0.1:8080');
    expect(announced.token).toBe('tmp-plans');
    expect(announced.dataDir).toBe(dirs[0]);
    const page = await fetch(announced.editor);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain(`${announced.server}/codespace/tmp-plans/`);
    const script = await fetch(new URL('/client.js', announced.editor));
    expect(script.headers.get('content-type')).toMatch(/javascript/);
    expect(await script.text()).toMatch(/export\s*\{[^}]*connect/);
    expect((await fetch(new URL('/nothing', announced.editor))).status).toBe(404);
  });

  it('serves an editor page that edits the document with another client, in a real browser', async () => {
    const announced = await startSidecar();
    client = connect(announced.server, announced.token, { WebSocket });
    await waitFor(() => client!.state === 'open', 10_000, 'the other client open');
    client.applyLocal([{ from: 0, to: 0, insert: 'from the app;' }]);
    const userDataDir = mkdtempSync(join(tmpdir(), 'codespace-chromium-'));
    dirs.push(userDataDir);
    browser = await chromium.launchPersistentContext(userDataDir, { executablePath: '/usr/bin/chromium', args: CHROMIUM_FLAGS });
    const page = await browser.newPage();
    await page.goto(announced.editor);
    const editor = page.locator('#editor');
    await editor.waitFor({ state: 'visible' });
    await page.waitForFunction(() => (document.getElementById('editor') as HTMLTextAreaElement).value === 'from the app;', undefined, { timeout: 10_000 });
    await editor.click();
    await page.keyboard.press('End');
    await page.keyboard.type(' typed');
    await waitFor(() => client!.text === 'from the app; typed' && client!.synced, 10_000, 'the typing reached the other client');
    client.applyLocal([{ from: 0, to: 0, insert: '>' }]);
    await page.waitForFunction(() => (document.getElementById('editor') as HTMLTextAreaElement).value === '>from the app; typed', undefined, { timeout: 10_000 });
    expect(await page.locator('#state').textContent()).toBe('open');
  }, 60_000);

  it('stops when its parent closes the pipe', async () => {
    await startSidecar();
    const exited = once(sidecar!, 'exit');
    sidecar!.stdin!.end();
    const [code] = await exited;
    expect(code).toBe(0);
  });
});
