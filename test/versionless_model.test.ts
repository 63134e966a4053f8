/**
 * The version-less client model (PROTOCOL.md §2): SharePython pages around an in-process Channel,
 * over a network whose every interleaving the test chooses.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { smallestRange } from '../src/doc/versionless_model.ts';
import { VersionlessClients } from '../src/doc/versionless_clients.ts';
import { textOf } from '../src/doc/text_doc.ts';
import { ChannelSim } from './support/channel_sim.ts';
import { Keystrokes } from './support/keystrokes.ts';

function repairsTo(sim: ChannelSim, session: string) {
  return sim.pages.get(session)!.received.filter((m) => m.operation === 'insert_value' && m.sender === 'server');
}

function errorsTo(sim: ChannelSim, session: string) {
  return sim.pages.get(session)!.received.filter((m) => m.operation === 'error');
}

describe('smallestRange', () => {
  it('keeps the common prefix and suffix', () => {
    expect(smallestRange('abcdef', 'abXYef')).toEqual({ from: 2, to: 4, insert: 'XY' });
    expect(smallestRange('abc', 'abc')).toEqual({ from: 3, to: 3, insert: '' });
    expect(smallestRange('aaa', 'aaaa')).toEqual({ from: 3, to: 3, insert: 'a' });
    expect(smallestRange('', 'xyz')).toEqual({ from: 0, to: 0, insert: 'xyz' });
  });

  it('never cuts a surrogate pair', () => {
    expect(smallestRange('a😀b', 'a😁b')).toEqual({ from: 1, to: 3, insert: '😁' });
    expect(smallestRange('x\uD83D\uDE00', 'x\uD83D\uDE01')).toEqual({ from: 1, to: 3, insert: '😁' });
  });
});

describe('VersionlessClients', () => {
  it('gives up a model that throws instead of letting it crash the channel', () => {
    const clients = new VersionlessClients(0, textOf('abc'));
    clients.join('p', 'edit', true);
    Object.assign(clients.model('p')!, { place: () => { throw new Error('a bug'); } });
    expect(clients.place('p', [{ from: 0, to: 0, insert: 'x' }], 3)).toBeUndefined();
    expect(clients.failures).toBe(1);
    expect(clients.model('p')).toBeUndefined();
    expect(clients.repairsFor('p')).toEqual([]);
  });
});

describe('VersionlessModel', () => {
  it('places an edit that crossed another on the wire where it was typed, and repairs the page that lost the other', async () => {
    const sim = new ChannelSim('hello world');
    const a = await sim.join('a');
    const b = await sim.join('b');
    await sim.settle();
    a.page.click(5);
    a.page.type('!');
    b.page.click(0);
    b.page.type('>');
    // Both edits reach the server before either page hears of the other's.
    await sim.toServer('a');
    await sim.toServer('b');
    expect(sim.text).toBe('>hello! world');
    expect(errorsTo(sim, 'b')).toEqual([]);
    await sim.settle();
    expect(a.page.text).toBe(sim.text);
    expect(b.page.text).toBe(sim.text);
    // b lost a's change (its length had moved on): one repair, the smallest range, from "server".
    expect(repairsTo(sim, 'b')).toEqual([{ operation: 'insert_value', sender: 'server', changes: [{ from: 6, to: 6, insert: '!' }], doc_length: 12 }]);
    expect(repairsTo(sim, 'a')).toEqual([]);
  });

  it('sends nothing but the broadcasts to pages that type one after the other', async () => {
    const sim = new ChannelSim('');
    const a = await sim.join('a');
    const b = await sim.join('b');
    for (let i = 0; i < 10; i++) {
      const typist = i % 2 === 0 ? a : b;
      typist.page.click(typist.page.length);
      typist.page.type(String(i));
      await sim.settle();
    }
    expect(sim.text).toBe('0123456789');
    expect(a.page.text).toBe(sim.text);
    expect(repairsTo(sim, 'a')).toEqual([]);
    expect(repairsTo(sim, 'b')).toEqual([]);
  });

  it('repairs a page that loaded an older stored text at its first edit, and sends nothing to one that is up to date', async () => {
    const sim = new ChannelSim('abc');
    const writer = await sim.join('w');
    writer.page.click(3);
    writer.page.type('d');
    writer.page.type('e');
    await sim.settle();
    expect(sim.text).toBe('abcde');
    // The stored `code` was 'abc' (version 0) when this page loaded; it joins at version 2.
    const late = await sim.join('late', 'abc');
    const fresh = await sim.join('fresh');
    await sim.settle();
    // Nothing at the join (PROTOCOL.md §2: a repair only where the model knows the text differs).
    expect(repairsTo(sim, 'late')).toEqual([]);
    expect(repairsTo(sim, 'fresh')).toEqual([]);
    late.page.click(1);
    late.page.type('X');
    await sim.settle();
    expect(sim.text).toBe('aXbcde');
    for (const page of [late, fresh, writer]) expect(page.page.text).toBe(sim.text);
    expect(repairsTo(sim, 'late')).toHaveLength(1);
    expect(repairsTo(sim, 'fresh')).toEqual([]);
  });

  it('recognises at its first edit a page whose older text had the length of the current one, and repairs it', async () => {
    const sim = new ChannelSim('abc');
    const writer = await sim.join('w');
    writer.page.select(2, 3);
    writer.page.type('C');
    await sim.settle();
    const late = await sim.join('late', 'abc');
    await sim.settle();
    expect(repairsTo(sim, 'late')).toEqual([]);
    late.page.click(1);
    late.page.type('X');
    await sim.settle();
    expect(sim.text).toBe('aXbC');
    expect(late.page.text).toBe(sim.text);
    expect(repairsTo(sim, 'late')).toEqual([{ operation: 'insert_value', sender: 'server', changes: [{ from: 3, to: 4, insert: 'C' }], doc_length: 4 }]);
    expect(errorsTo(sim, 'late')).toEqual([]);
  });

  it('sends a view_only page nothing but the changes: one that loaded an older text stays behind until its next load', async () => {
    const sim = new ChannelSim('abc');
    const writer = await sim.join('w');
    writer.page.click(3);
    writer.page.type('d');
    await sim.settle();
    expect(sim.text).toBe('abcd');
    const older = await sim.join('v1', 'abc', 'view_only');
    const fresh = await sim.join('v2', 'abcd', 'view_only');
    writer.page.type('e');
    await sim.settle();
    // PROTOCOL.md §2: it cannot be told apart; keeping `code` fresh (§7) keeps it rare.
    expect(repairsTo(sim, 'v1')).toEqual([]);
    expect(older.page.text).toBe('abc');
    expect(fresh.page.text).toBe('abcde');
  });

  it('resets a page whose text it cannot account for, refusing only the edit that showed it', async () => {
    const sim = new ChannelSim('server text');
    // Held since before a channel restart, say: no recent version had this text.
    const stray = await sim.join('stray', 'something else entirely');
    await sim.settle();
    stray.page.click(0);
    stray.page.type('!');
    await sim.settle();
    expect(sim.text).toBe('server text');
    expect(errorsTo(sim, 'stray')).toEqual([expect.objectContaining({ data: expect.objectContaining({ code: 'invalid_change' }) })]);
    expect(stray.page.text).toBe('server text');
    stray.page.click(6);
    stray.page.type('!');
    await sim.settle();
    expect(sim.text).toBe('server! text');
    expect(stray.page.text).toBe(sim.text);
    expect(errorsTo(sim, 'stray')).toHaveLength(1);
  });

  it('keeps at most one repair that can land outstanding', async () => {
    const sim = new ChannelSim('0123456789');
    const a = await sim.join('a');
    const b = await sim.join('b');
    await sim.settle();
    a.page.click(10);
    b.page.click(0);
    for (let i = 0; i < 5; i++) {
      a.page.type('a');
      b.page.type('b');
      await sim.toServer('a');
      await sim.toServer('b');
    }
    // Nothing delivered to the pages yet: each repair so far waits on the one before it.
    const landable = (session: string) => repairsTo(sim, session).filter((r) => r.doc_length === sim.pages.get(session)!.page.length);
    expect(landable('a').length).toBeLessThanOrEqual(1);
    expect(landable('b').length).toBeLessThanOrEqual(1);
    await sim.settle();
    expect(a.page.text).toBe(sim.text);
    expect(b.page.text).toBe(sim.text);
    expect(sim.text).toBe('bbbbb0123456789aaaaa');
  });

  // Every page ends with the server's text whatever the delays. Which keystrokes land where they
  // were typed is another matter: with delays this adversarial (any message held for any time),
  // a page's doc_length can fit several accounts of what it had received, and an edit placed by
  // the wrong one loses or moves a character. Measured on this seed: about 9 missing and 13
  // misplaced per 1000 keystrokes (the socket test, with real timing, measures the real rate).
  it('converges on any interleaving of typing, backspaces, selections and deliveries', async () => {
    const action = fc.record({
      who: fc.integer({ min: 0, max: 2 }),
      kind: fc.constantFrom('type', 'type', 'type', 'type', 'backspace', 'click', 'select', 'join', 'toServer', 'toServer', 'toServer', 'toPage', 'toPage', 'toPage'),
      at: fc.oneof(fc.constant(0), fc.double({ min: 0, max: 1, noNaN: true })),
    });
    const totals = { keystrokes: 0, missing: 0, misplaced: 0, repairs: 0, runs: 0 };
    let viewers = 0;
    let viewersBehind = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(action, { minLength: 20, maxLength: 160 }), async (actions) => {
        const keys = new Keystrokes();
        const initial = Array.from({ length: 8 }, () => keys.fresh()).join('');
        const sim = new ChannelSim(initial);
        const sessions = ['p0', 'p1', 'p2'];
        for (const session of sessions) await sim.join(session);
        for (const { who, kind, at } of actions) {
          const sim_ = sim.pages.get(sessions[who])!;
          const page = sim_.page;
          const pos = Math.floor(at * (page.length + 1));
          if (kind === 'type') {
            const { anchor, head } = page.selection;
            const char = keys.fresh();
            keys.typed(char, page.text, Math.min(anchor, head), Math.max(anchor, head));
            page.type(char);
          } else if (kind === 'backspace') {
            const before = page.text;
            page.backspace();
            if (page.text.length < before.length) keys.removed(removedFrom(before, page.text));
          } else if (kind === 'click') {
            page.click(pos);
          } else if (kind === 'select') {
            page.select(pos, Math.min(page.length, pos + 2));
          } else if (kind === 'join') {
            // A view_only page that loaded the text of one of the last few versions.
            const versions = sim.versions;
            await sim.join(`v${sim.pages.size}`, versions[Math.max(0, versions.length - 1 - Math.floor(at * 8))], 'view_only');
          } else if (kind === 'toServer') {
            await sim.toServer(sessions[who]);
          } else {
            sim.toPage(sessions[who]);
          }
        }
        await sim.settle();
        for (const session of sessions) expect(sim.pages.get(session)!.page.text, session).toBe(sim.text);
        viewers += sim.pages.size - sessions.length;
        for (const [session, { page }] of sim.pages) if (!sessions.includes(session) && page.text !== sim.text) viewersBehind++;
        const figures = keys.figures(sim.text);
        if (process.env.STRICT) expect(figures).toMatchObject({ missing: 0 });
        totals.keystrokes += figures.keystrokes;
        totals.missing += figures.missing;
        totals.misplaced += figures.misplaced;
        totals.repairs += sessions.reduce((n, s) => n + repairsTo(sim, s).length, 0);
        totals.runs++;
        for (const session of sessions) expect(errorsTo(sim, session), session).toEqual([]);
      }),
      { numRuns: Number(process.env.RUNS ?? 150), seed: Number(process.env.SEED ?? 12) },
    );
    const perThousand = (n: number) => ((1000 * n) / Math.max(1, totals.keystrokes)).toFixed(2);
    console.log(`in-process model: ${totals.runs} runs, ${totals.keystrokes} keystrokes, missing ${perThousand(totals.missing)}/1000, misplaced ${perThousand(totals.misplaced)}/1000, ${totals.repairs} repairs; ${viewersBehind} of ${viewers} view_only pages that joined with the text of one of the last 8 versions left behind`);
    expect(viewers).toBeGreaterThan(0);
    // View_only pages that joined with an older text stay behind until their next load (PROTOCOL.md §2).
    expect((1000 * totals.missing) / totals.keystrokes).toBeLessThan(25);
    expect((1000 * totals.misplaced) / totals.keystrokes).toBeLessThan(40);
  });

  it('loses no keystroke when each page hears of every change before its next keystroke', async () => {
    const keys = new Keystrokes();
    const sim = new ChannelSim(Array.from({ length: 4 }, () => keys.fresh()).join(''));
    const sessions = ['p0', 'p1', 'p2'];
    for (const session of sessions) await sim.join(session);
    await sim.settle();
    const random = fc.sample(fc.tuple(fc.integer({ min: 0, max: 2 }), fc.double({ min: 0, max: 1, noNaN: true })), { numRuns: 300, seed: 7 });
    for (const [who, at] of random) {
      const { page } = sim.pages.get(sessions[who])!;
      page.click(Math.floor(at * (page.length + 1)));
      const char = keys.fresh();
      keys.typed(char, page.text, page.selection.head);
      page.type(char);
      await sim.settle();
    }
    expect(keys.figures(sim.text)).toEqual({ keystrokes: 300, missing: 0, misplaced: 0 });
    for (const session of sessions) expect(repairsTo(sim, session), session).toEqual([]);
  });
});

/** The characters a single deletion took out of `before` to make `after`. */
function removedFrom(before: string, after: string): string {
  const range = smallestRange(before, after);
  return before.slice(range.from, range.to);
}
