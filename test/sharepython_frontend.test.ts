/**
 * The SharePython frontend against the real server (issue 12): pages that load their text from
 * a SharePython-style API, join with padded base64 tokens, and type at the same time as each
 * other and as an SDK client, with a view_only page watching.
 */
import fc from 'fast-check';
import { WebSocket } from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type CodespaceClient, type WebSocketConstructor } from '../src/client/client.ts';
import { openFrontend, type FrontendClient } from './support/frontend_client.ts';
import { Keystrokes } from './support/keystrokes.ts';
import { startApiStub, type ApiStub, type ApiStubOptions } from './support/sharepython_api.ts';
import { startTestServer, type TestServer } from './support/server.ts';
import { TestClient, waitFor } from './support/ws_client.ts';

let server: TestServer;
let api: ApiStub;
let http: string;
const apiOptions: ApiStubOptions = {};
let codespaces = 0;

beforeAll(async () => {
  api = await startApiStub(apiOptions);
  server = await startTestServer({ apiBaseUrl: api.base, authCacheMs: 60_000 });
  http = server.url.replace(/^ws:/, 'http:');
  apiOptions.serverHttp = http;
});

afterAll(async () => {
  await server.close();
  await api.close();
});

function newCodespace() {
  return api.createCodespace(`cs-${process.pid}-${++codespaces}`);
}

async function codeOf(token: string): Promise<string> {
  const response = await fetch(`${http}/codespace/${encodeURIComponent(token)}/code`);
  expect(response.status).toBe(200);
  return response.text();
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('SharePython tokens', () => {
  it('joins with padded base64 share tokens, as they are in the path and percent-encoded, and looks them up unchanged', async () => {
    const { editToken, viewToken } = newCodespace();
    expect(editToken).toMatch(/=$/);
    expect(viewToken).toMatch(/==$/);
    const asIs = await TestClient.join(`${server.url}/codespace/${editToken}/`);
    expect(asIs.connected.data.mode).toBe('edit');
    const encoded = await TestClient.join(`${server.url}/codespace/${encodeURIComponent(viewToken)}/`);
    expect(encoded.connected.data.mode).toBe('view_only');
    expect(api.requests).toContain(`GET /codespace/${editToken}/?fields=uuid,mode`);
    expect(api.requests).toContain(`GET /codespace/${viewToken}/?fields=uuid,mode`);
    asIs.client.close();
    encoded.client.close();
  });
});

describe('SharePython pages', () => {
  it('load from the API, join, and type; an owner page gets its token from the API', async () => {
    const { uuid, editToken } = newCodespace();
    const owner = await openFrontend(api.base, server.url, uuid, true);
    const guest = await openFrontend(api.base, server.url, editToken);
    expect([owner.mode, guest.mode]).toEqual(['edit', 'edit']);
    owner.page.type('def f():\n    return 1\n');
    await waitFor(() => guest.page.text === 'def f():\n    return 1\n', 5000, 'the guest to see the owner type');
    guest.page.click(guest.page.length);
    guest.page.type('f()\n');
    await waitFor(() => owner.page.text === guest.page.text, 5000, 'the owner to see the guest type');
    expect(await codeOf(editToken)).toBe(owner.page.text);
    owner.close();
    guest.close();
  });

  /**
   * Two or three pages and an SDK client type at once with random delays while a view_only page
   * joins midway. Every editing party must end with the server's text; the figures say how long
   * that took, how often the view_only page was left behind (it cannot be repaired), and how many
   * typed characters ended up missing or out of place.
   */
  it('end with the server text when typing at the same time as each other and an SDK client', async () => {
    const totals = { runs: 0, keystrokes: 0, missing: 0, misplaced: 0, repairs: 0, lost: 0, refused: 0, viewBehind: 0, convergeMs: [] as number[] };
    const action = fc.record({ kind: fc.constantFrom('type', 'type', 'type', 'type', 'type', 'type', 'backspace', 'click', 'select'), at: fc.double({ min: 0, max: 1, noNaN: true }), delayMs: fc.integer({ min: Number(process.env.MIN_DELAY_MS ?? 0), max: Number(process.env.MAX_DELAY_MS ?? 40) }) });
    const plan = fc.record({
      pages: fc.integer({ min: 2, max: 3 }),
      scripts: fc.array(fc.array(action, { minLength: 10, maxLength: 30 }), { minLength: 4, maxLength: 4 }),
      viewJoinsAfterMs: fc.integer({ min: 0, max: 300 }),
    });
    await fc.assert(
      fc.asyncProperty(plan, async ({ pages: pageCount, scripts, viewJoinsAfterMs }) => {
        const keys = new Keystrokes();
        const { uuid, editToken, viewToken } = newCodespace();
        const seed = await TestClient.join(`${server.url}/codespace/${editToken}/`);
        const initial = Array.from({ length: 6 }, () => keys.fresh()).join('');
        seed.client.send({ operation: 'insert_value', changes: [{ from: 0, to: 0, insert: initial }], doc_length: 0 });
        await seed.client.next((m) => m.operation === 'ack');
        seed.client.close();
        const pages: FrontendClient[] = [];
        for (let i = 0; i < pageCount; i++) pages.push(await openFrontend(api.base, server.url, i === 0 ? uuid : editToken, i === 0));
        const sdk = connect(server.url, editToken, { WebSocket: WebSocket as unknown as WebSocketConstructor, codec: 'json' });
        await new Promise<void>((resolve) => sdk.on('connected', () => resolve()));
        let view: FrontendClient | null = null;
        const viewJoined = sleep(viewJoinsAfterMs).then(async () => (view = await openFrontend(api.base, server.url, viewToken)));
        await Promise.all([...pages.map((page, i) => typeAsPage(page, scripts[i], keys)), typeAsSdk(sdk, scripts[3], keys), viewJoined]);
        const stopped = Date.now();
        let serverText = '';
        const deadline = Date.now() + 20_000;
        for (;;) {
          serverText = await codeOf(editToken);
          if (pages.every((p) => p.page.text === serverText) && sdk.text === serverText && sdk.synced) break;
          if (Date.now() > deadline) {
            const crashes = server.logs.filter((l) => /crash|failed|restart|terminat/.test(l.event)).slice(-3);
            const sockets = pages.map((p) => p.socket.readyState);
            throw new Error(`not converged (server log: ${JSON.stringify(crashes)}, page sockets ${sockets}): server ${JSON.stringify(serverText)}, pages ${JSON.stringify(pages.map((p) => p.page.text))}, sdk ${JSON.stringify(sdk.text)}`);
          }
          await sleep(20);
        }
        totals.convergeMs.push(Date.now() - stopped);
        if (process.env.FIGURES) console.log(`run ${totals.runs + 1}: converged ${Date.now() - stopped} ms after typing stopped`);
        const viewPage = view as FrontendClient | null;
        await waitFor(() => viewPage!.page.text === serverText, 5000).catch(() => {});
        if (viewPage!.page.text !== serverText) {
          totals.viewBehind++;
          if (process.env.FIGURES) console.log(`view_only page behind: ${JSON.stringify(viewPage!.page.text)} vs ${JSON.stringify(serverText)}, ${viewPage!.page.lostChanges} changes lost, ${viewPage!.page.appliedRepairs} catch-ups applied`);
        }
        const figures = keys.figures(serverText);
        totals.runs++;
        totals.keystrokes += figures.keystrokes;
        totals.missing += figures.missing;
        totals.misplaced += figures.misplaced;
        totals.repairs += pages.reduce((n, p) => n + p.page.appliedRepairs, 0);
        totals.lost += pages.reduce((n, p) => n + p.page.lostChanges, 0);
        totals.refused += pages.reduce((n, p) => n + p.received.filter((m) => m.operation === 'error').length, 0);
        for (const p of pages) p.close();
        viewPage!.close();
        sdk.close();
      }),
      { numRuns: Number(process.env.RUNS ?? 8), seed: Number(process.env.SEED ?? 12), endOnFailure: true },
    );
    const sorted = [...totals.convergeMs].sort((a, b) => a - b);
    const perThousand = (n: number) => ((1000 * n) / Math.max(1, totals.keystrokes)).toFixed(1);
    console.log(
      `sharepython pages over sockets: ${totals.runs} runs, ${totals.keystrokes} keystrokes; missing ${perThousand(totals.missing)}/1000, ` +
        `misplaced ${perThousand(totals.misplaced)}/1000; converged after typing stopped in median ${sorted[sorted.length >> 1]} ms, max ${sorted[sorted.length - 1]} ms; ` +
        `${totals.repairs} repairs applied, ${totals.lost} incoming changes lost by pages, ${totals.refused} page edits refused; view_only page left behind in ${totals.viewBehind} of ${totals.runs} runs`,
    );
    expect(totals.runs).toBeGreaterThan(0);
    // Measured 0-12 per 1000 with these delays (keystrokes 20 ms apart, four typists in a few
    // dozen characters); the bound only catches a model gone wrong.
    expect((1000 * totals.missing) / totals.keystrokes).toBeLessThan(50);
  }, Math.max(180_000, Number(process.env.RUNS ?? 8) * 20_000));
});

type Action = { kind: string; at: number; delayMs: number };

async function typeAsPage(client: FrontendClient, script: Action[], keys: Keystrokes): Promise<void> {
  const { page } = client;
  for (const { kind, at, delayMs } of script) {
    await sleep(delayMs);
    const pos = Math.floor(at * (page.length + 1));
    if (kind === 'type') {
      const { anchor, head } = page.selection;
      const char = keys.fresh();
      keys.typed(char, page.text, Math.min(anchor, head), Math.max(anchor, head));
      page.type(char);
    } else if (kind === 'backspace') {
      const { anchor, head } = page.selection;
      const from = anchor === head ? Math.max(0, head - 1) : Math.min(anchor, head);
      keys.removed(page.text.slice(from, Math.max(anchor, head)));
      page.backspace();
    } else if (kind === 'click') {
      page.click(pos);
    } else {
      page.select(pos, Math.min(page.length, pos + 2));
    }
  }
}

async function typeAsSdk(client: CodespaceClient, script: Action[], keys: Keystrokes): Promise<void> {
  for (const { kind, at, delayMs } of script) {
    await sleep(delayMs);
    const text = client.text;
    const pos = Math.min(text.length, Math.floor(at * (text.length + 1)));
    if (kind === 'backspace' && pos > 0) {
      keys.removed(text.slice(pos - 1, pos));
      client.applyLocal([{ from: pos - 1, to: pos, insert: '' }]);
    } else if (kind !== 'backspace') {
      const char = keys.fresh();
      keys.typed(char, text, pos);
      client.applyLocal([{ from: pos, to: pos, insert: char }]);
    }
  }
}
