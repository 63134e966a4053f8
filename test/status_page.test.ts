/**
 * The live status page at `/status` in a real browser: it lists a channel and its numbers move
 * while demo pages type; with FAULT_INJECTION its buttons make one channel throw (that channel
 * alone restarts) or hang (its whole worker is replaced, and the channels that were on it
 * restart), and the page shows it. No console errors; screenshots in .test-artifacts/.
 */
import type { Browser, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { statusIdOf } from '../src/server/status_feed.ts';
import { launchBrowser, openPage, screenshot, type WatchedPage } from './support/browser.ts';
import { eventually, typeAtEnd, waitForState } from './support/demo_page.ts';
import { startTestServer, type TestServer } from './support/server.ts';
import { TestClient, waitFor } from './support/ws_client.ts';


let browser: Browser;
let server: TestServer | null = null;
const pages: WatchedPage[] = [];
const clients: TestClient[] = [];

beforeAll(async () => {
  browser = await launchBrowser();
}, 60_000);

afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  for (const watched of pages.splice(0)) await watched.context.close();
  await server?.close();
  server = null;
});

afterAll(async () => {
  await browser?.close();
});

async function openStatus(): Promise<WatchedPage> {
  const watched = await openPage(browser, `http://127.0.0.1:${server!.port}/status`, { width: 1400, height: 1000 });
  pages.push(watched);
  await watched.page.waitForSelector('#feed[data-state="live"]', { timeout: 45_000 });
  return watched;
}

function row(id: string): string {
  return `tr[data-channel="${id}"]`;
}

async function rowData(page: Page, id: string): Promise<{ thread: number; restarts: number; members: number; edits: number; state: string } | null> {
  return page.evaluate((selector) => {
    const found = document.querySelector(selector) as HTMLElement | null;
    if (!found) return null;
    const data = found.dataset;
    return { thread: Number(data.thread), restarts: Number(data.restarts), members: Number(data.members), edits: Number(data.edits), state: data.state ?? '' };
  }, row(id));
}

async function text(page: Page, selector: string): Promise<string> {
  return (await page.textContent(selector)) ?? '';
}

/** Codespaces with one ws client each (a channel with no members is stopped, not restarted). */
async function populate(tokens: string[]): Promise<void> {
  for (const token of tokens) clients.push((await TestClient.join(server!.urlFor(token))).client);
  await waitFor(() => tokens.every((token) => (server!.hub.supervisor.channel(token)?.thread ?? -1) > 0), 30_000, 'channels ready on workers');
}

describe('the status page', { timeout: 150_000 }, () => {
  it('lists the channel of two typing pages, and its numbers move', async () => {
    server = await startTestServer({ workers: 2 });
    const token = `tmp-status-typing-${Math.random().toString(36).slice(2, 8)}`;
    const id = statusIdOf(token);
    const status = await openStatus();
    const editors: WatchedPage[] = [];
    for (let i = 0; i < 2; i++) {
      const editor = await openPage(browser, `http://127.0.0.1:${server.port}/#${token}`);
      pages.push(editor);
      editors.push(editor);
      await waitForState(editor.page, 'connected');
    }
    await status.page.waitForSelector(`${row(id)}[data-members="2"]`, { timeout: 30_000 });
    expect(await text(status.page, '#connections')).toBe('2');
    // The full codespace id (a tmp- id is the key to it) appears nowhere on the page.
    expect(await status.page.content()).not.toContain(token);

    let typing = true;
    const typer = (async () => {
      for (let round = 0; typing && round < 200; round++) await typeAtEnd(editors[round % 2].page, `line ${round}\n`);
    })();
    try {
      await eventually(async () => ((await rowData(status.page, id))?.edits ?? 0) > 0, 45_000, 'edits per second above zero');
      await eventually(async () => Number(await text(status.page, '#messages-in')) > 0 && Number(await text(status.page, '#messages-out')) > 0, 45_000, 'messages in and out per second above zero');
      await eventually(async () => /\d/.test(await text(status.page, '#commit')) && /\d/.test(await text(status.page, '#fanout')), 45_000, 'commit and fan-out latency shown');
      await eventually(async () => (await text(status.page, `${row(id)} td:nth-child(4)`)).includes('ms'), 45_000, 'the channel commit latency shown');
    } finally {
      typing = false;
      await typer;
    }
    expect(await status.page.locator('.chart canvas').count()).toBe(4);
    await screenshot(status.page, 'status-typing');
    expect(status.problems).toEqual([]);
    for (const editor of editors) expect(editor.problems).toEqual([]);
  });

  it('with STATUS_TOKEN: the token once in the address, then the cookie carries the live updates', async () => {
    const token = 'a-status-token-for-the-browser-test';
    server = await startTestServer({ workers: 1, statusToken: token });
    const watched = await openPage(browser, `http://127.0.0.1:${server.port}/status?token=${token}`);
    pages.push(watched);
    await watched.page.waitForSelector('#feed[data-state="live"]', { timeout: 45_000 });
    await watched.page.waitForFunction(() => document.getElementById('connections')?.textContent === '0', undefined, { timeout: 30_000 });
    // The token left the address bar, and the page's scripts cannot read the cookie (HttpOnly).
    expect(watched.page.url()).toBe(`http://127.0.0.1:${server.port}/status`);
    expect(await watched.page.evaluate(() => document.cookie)).toBe('');
    const cookies = await watched.context.cookies();
    expect(cookies).toMatchObject([{ name: 'codespace_status', httpOnly: true, sameSite: 'Strict', path: '/status' }]);
    expect(cookies[0].value).not.toContain(token);
    expect(watched.problems).toEqual([]);
  });

  it('a throw from its button restarts that codespace only', async () => {
    server = await startTestServer({ workers: 2, faultInjection: true, heartbeatIntervalMs: 100, heartbeatTimeoutMs: 5000 });
    const tokens = ['a', 'b', 'c'].map((name) => `tmp-status-throw-${name}`);
    const ids = tokens.map(statusIdOf);
    await populate(tokens);
    const status = await openStatus();
    for (const id of ids) await status.page.waitForSelector(`${row(id)}[data-state="ready"]`, { timeout: 30_000 });

    await status.page.click(`${row(ids[0])} button[data-fault="throw"]`);
    await status.page.waitForSelector(`${row(ids[0])}[data-restarts="1"]`, { timeout: 45_000 });
    await status.page.waitForSelector(`.event.ev-restart >> text=channel ${ids[0]} restarted`, { timeout: 30_000 });
    for (const id of ids.slice(1)) expect((await rowData(status.page, id))?.restarts).toBe(0);
    expect(await text(status.page, '#worker-replacements')).toBe('0');
    expect(await text(status.page, '#restarts')).toBe('1');
    await screenshot(status.page, 'status-after-throw');
    expect(status.problems).toEqual([]);
  });

  it('a hang from its button replaces its worker: the channels that were on it restart, the others do not', async () => {
    server = await startTestServer({ workers: 2, faultInjection: true, heartbeatIntervalMs: 100, heartbeatTimeoutMs: 2500 });
    const tokens = ['a', 'b', 'c', 'd', 'e'].map((name) => `tmp-status-hang-${name}`);
    const ids = tokens.map(statusIdOf);
    await populate(tokens);
    const status = await openStatus();
    for (const id of ids) await status.page.waitForSelector(`${row(id)}[data-state="ready"]`, { timeout: 30_000 });
    const before = new Map<string, number>();
    for (const id of ids) before.set(id, (await rowData(status.page, id))!.thread);
    const hung = ids[0];
    const mates = ids.filter((id) => before.get(id) === before.get(hung));
    const others = ids.filter((id) => before.get(id) !== before.get(hung));
    expect(others.length).toBeGreaterThan(0);

    await status.page.click(`${row(hung)} button[data-fault="hang"]`);
    await status.page.waitForFunction(() => document.getElementById('worker-replacements')?.textContent === '1', undefined, { timeout: 60_000 });
    for (const id of mates) await status.page.waitForSelector(`${row(id)}[data-restarts="1"][data-state="ready"]`, { timeout: 60_000 });
    await status.page.waitForSelector('.event.ev-worker >> text=worker replaced', { timeout: 30_000 });
    // The channels of the replaced worker now run elsewhere; the rest never moved or restarted.
    for (const id of mates) expect((await rowData(status.page, id))?.thread).not.toBe(before.get(hung));
    for (const id of others) expect(await rowData(status.page, id)).toMatchObject({ restarts: 0, thread: before.get(id) });
    await screenshot(status.page, 'status-after-hang');
    expect(status.problems).toEqual([]);
  });
});
