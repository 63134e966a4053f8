/**
 * The demo editor at `/` in a real browser (Debian's chromium through playwright-core): pages
 * typing at once converge, remote cursors carry the peer's name, a page taken offline keeps its
 * edits and catches up, a SharePython-like client in the same codespace is not disturbed, and
 * no page logs an error. Screenshots go to .test-artifacts/.
 */
import type { Browser } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { statusIdOf } from '../src/server/status_feed.ts';
import { launchBrowser, openPage, screenshot, type WatchedPage } from './support/browser.ts';
import { editorText, eventually, typeAt, typeAtEnd, waitForState } from './support/demo_page.ts';
import { startTestServer, type TestServer } from './support/server.ts';
import { TestClient } from './support/ws_client.ts';


let server: TestServer;
let browser: Browser;
let base: string;
const pages: WatchedPage[] = [];
const clients: TestClient[] = [];

beforeAll(async () => {
  server = await startTestServer({ workers: 2 });
  base = `http://127.0.0.1:${server.port}`;
  browser = await launchBrowser();
}, 60_000);

afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  for (const watched of pages.splice(0)) await watched.context.close();
});

afterAll(async () => {
  await browser?.close();
  await server?.close();
});

async function open(token: string): Promise<WatchedPage> {
  const watched = await openPage(browser, `${base}/#${token}`);
  pages.push(watched);
  await waitForState(watched.page, 'connected');
  await watched.page.waitForSelector('.cm-content');
  return watched;
}

function uniqueToken(name: string): string {
  return `tmp-${name}-${Math.random().toString(36).slice(2, 10)}`;
}

describe('the demo editor', { timeout: 120_000 }, () => {
  it('opens a fresh tmp- codespace with a share link when the address names none', async () => {
    const watched = await openPage(browser, `${base}/`);
    pages.push(watched);
    await waitForState(watched.page, 'connected');
    const link = await watched.page.inputValue('#share-link');
    expect(link).toMatch(new RegExp(`^${base}/#tmp-[a-z0-9]{8,}$`));
    expect(watched.page.url()).toBe(link);
    const token = link.slice(link.indexOf('#') + 1);
    await eventually(async () => (await watched.page.getAttribute('#status-id', 'data-status-id')) === statusIdOf(token), 30_000, 'the status id of this codespace');
    expect(watched.problems).toEqual([]);
  });

  it('two pages typing at the same time converge, and each shows the other by name', async () => {
    const token = uniqueToken('together');
    const a = await open(token);
    const b = await open(token);
    const nameA = await a.page.inputValue('#name');
    const nameB = await b.page.inputValue('#name');
    // A on the first line, B on the second, at the same time: each one's cursor moves with the other's text.
    await typeAtEnd(a.page, '\n');
    await eventually(async () => (await editorText(b.page)) === '\n', 30_000, 'b seeing the empty line');
    await Promise.all([typeAt(a.page, 'Control+Home', 'alpha '.repeat(6)), typeAt(b.page, 'Control+End', 'beta '.repeat(6))]);
    await eventually(async () => {
      const [textA, textB] = [await editorText(a.page), await editorText(b.page)];
      return textA === textB && textA === `${'alpha '.repeat(6)}\n${'beta '.repeat(6)}`;
    }, 45_000, 'both pages holding both texts', async () => JSON.stringify({ a: await editorText(a.page), b: await editorText(b.page), stateA: await a.page.textContent('#state'), stateB: await b.page.textContent('#state') }));
    // The server holds the same text: a new client joining gets it.
    const { client, connected } = await TestClient.join(server.urlFor(token));
    clients.push(client);
    expect(connected.data.code).toBe(await editorText(a.page));
    expect(Number(await a.page.textContent('#version'))).toBeGreaterThan(0);

    // Each page draws the other's cursor with its name, and lists it as here.
    await b.page.waitForSelector(`.cm-remote-name >> text="${nameA}"`, { timeout: 30_000 });
    await a.page.waitForSelector(`.cm-remote-name >> text="${nameB}"`, { timeout: 30_000 });
    expect(await b.page.textContent('#peers')).toContain(nameA);
    // A selection shows as a tint in the peer's colour.
    await a.page.keyboard.press('Shift+Home');
    await b.page.waitForSelector('.cm-remote-selection', { timeout: 30_000 });
    await screenshot(a.page, 'demo-two-pages-a');
    await screenshot(b.page, 'demo-two-pages-b');
    expect(a.problems).toEqual([]);
    expect(b.problems).toEqual([]);

    // B leaves: A's list and cursors forget it.
    await b.context.close();
    pages.splice(pages.indexOf(b), 1);
    await eventually(async () => !(await a.page.textContent('#peers'))?.includes(nameB), 30_000, 'the peer gone from the list');
    expect(await a.page.locator(`.cm-remote-name >> text="${nameB}"`).count()).toBe(0);
  });

  it('shows reconnecting when the connection drops, and carries on where it was', async () => {
    const token = uniqueToken('reconnect');
    const a = await open(token);
    await typeAtEnd(a.page, 'before the drop');
    await eventually(async () => (await a.page.getAttribute('#state', 'data-waiting')) === '0', 30_000, 'the first edits acknowledged');
    const versionBefore = Number(await a.page.textContent('#version'));
    // Every state the badge shows from now on, however briefly.
    await a.page.evaluate(() => {
      const badge = document.getElementById('state')!;
      const seen: string[] = [];
      (window as unknown as { seenStates: string[] }).seenStates = seen;
      new MutationObserver(() => seen.push(badge.dataset.state ?? '')).observe(badge, { attributes: true, attributeFilter: ['data-state'] });
    });
    for (const session of [...server.acceptor.sessions]) session.terminate();
    await eventually(async () => (await a.page.evaluate(() => (window as unknown as { seenStates: string[] }).seenStates)).includes('reconnecting'), 30_000, 'the reconnecting state shown');
    await waitForState(a.page, 'connected');
    await typeAtEnd(a.page, ', after it');
    await eventually(async () => (await a.page.getAttribute('#state', 'data-waiting')) === '0', 30_000, 'the later edits acknowledged');
    expect(Number(await a.page.textContent('#version'))).toBeGreaterThan(versionBefore);
    const { client, connected } = await TestClient.join(server.urlFor(token));
    clients.push(client);
    expect(connected.data.code).toBe('before the drop, after it');
    expect(a.problems).toEqual([]);
  });

  it('a page taken offline keeps typing, shows its waiting edits, comes back and converges', async () => {
    const token = uniqueToken('offline');
    const a = await open(token);
    const b = await open(token);
    await typeAtEnd(a.page, 'shared start\n');
    await eventually(async () => (await editorText(b.page)).includes('shared start'), 30_000, 'b seeing the start', async () => JSON.stringify({ a: await editorText(a.page), b: await editorText(b.page), stateA: await a.page.textContent('#state'), stateB: await b.page.textContent('#state'), problems: [...a.problems, ...b.problems] }));

    await a.context.setOffline(true);
    await waitForState(a.page, 'offline');
    await typeAtEnd(a.page, 'typed while offline ');
    await typeAtEnd(b.page, 'typed by the one online ');
    expect(Number(await a.page.getAttribute('#state', 'data-waiting'))).toBeGreaterThan(0);
    expect(await a.page.textContent('#state')).toMatch(/offline · \d+ edits? waiting/);
    await screenshot(a.page, 'demo-offline');
    // Nothing left the offline page.
    expect(await editorText(b.page)).not.toContain('typed while offline');

    await a.context.setOffline(false);
    await waitForState(a.page, 'connected');
    await eventually(async () => {
      const [textA, textB] = [await editorText(a.page), await editorText(b.page)];
      return textA === textB && textA.includes('typed while offline') && textA.includes('typed by the one online');
    }, 45_000, 'both pages converging after the offline one came back');
    await eventually(async () => (await a.page.getAttribute('#state', 'data-waiting')) === '0', 30_000, 'no edits waiting');
    await screenshot(a.page, 'demo-back-online');
    expect(a.problems).toEqual([]);
    expect(b.problems).toEqual([]);
  });

  it('a SharePython-like client in the same codespace gets plain selections with scalar name fields, and its edits reach the pages', async () => {
    const token = uniqueToken('sharepython');
    const a = await open(token);
    const nameA = await a.page.inputValue('#name');
    // As the SharePython frontend: JSON, no version, no client key, edits by `changes` and `doc_length`.
    const { client: legacy } = await TestClient.join(server.urlFor(token));
    clients.push(legacy);
    await typeAtEnd(a.page, 'from the demo');
    const selection = await legacy.next((message) => message.operation === 'create_selection', 30_000);
    expect(selection.selections.every((range: { anchor: unknown; head: unknown }) => Number.isInteger(range.anchor) && Number.isInteger(range.head))).toBe(true);
    expect(selection.name).toBe(nameA);
    expect(selection.color).toMatch(/^#[0-9a-f]{6}$/);
    for (const [field, value] of Object.entries(selection)) {
      if (field !== 'selections') expect(value === null || ['string', 'number', 'boolean'].includes(typeof value)).toBe(true);
    }
    await eventually(async () => (await editorText(a.page)) === 'from the demo', 5000, 'the demo text');
    // Acknowledged, so that the server's text is the page's: the legacy edit names its length.
    await eventually(async () => (await a.page.getAttribute('#state', 'data-waiting')) === '0', 30_000, 'the demo edits acknowledged');
    legacy.send({ operation: 'insert_value', changes: [{ from: 0, to: 0, insert: 'legacy says hi; ' }], doc_length: 'from the demo'.length });
    await eventually(async () => (await editorText(a.page)) === 'legacy says hi; from the demo', 30_000, 'the legacy edit on the page');
    // A selection without a name (SharePython sends none) is drawn as a guest.
    legacy.send({ operation: 'create_selection', selections: [{ anchor: 0, head: 6 }] });
    await a.page.waitForSelector('.cm-remote-name >> text=/^guest /', { timeout: 30_000 });
    expect(a.problems).toEqual([]);
  });
});
