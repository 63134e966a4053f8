import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TextDoc, changeSetOf, specsOf, checkChangeShape, textOf } from '../src/doc/text_doc.ts';

function doc(text: string, history = 10, maxDocLength = 1000): TextDoc {
  return new TextDoc({ text, version: 0, log: [], epoch: 'e' }, { history, maxDocLength });
}

function commit(target: TextDoc, request: Parameters<TextDoc['prepare']>[0], sender = 's'): number {
  const result = target.prepare(request, sender);
  if (result.kind !== 'ready') throw new Error(`not ready: ${JSON.stringify(result)}`);
  target.install(result.entry, result.set);
  return result.entry.version;
}

describe('TextDoc', () => {
  describe('prepare', () => {
    it('applies a change on the current version and bumps the version', () => {
      const d = doc('hello');
      expect(commit(d, { changes: [{ from: 5, to: 5, insert: ' world' }], version: 0, docLength: 5 })).toBe(1);
      expect(d.toString()).toBe('hello world');
    });

    it('rebases a change made on an older version over the later ones, earlier commit first on ties', () => {
      const d = doc('abc');
      commit(d, { changes: [{ from: 1, to: 1, insert: 'X' }], version: 0 });
      commit(d, { changes: [{ from: 1, to: 1, insert: 'Y' }], version: 0 });
      expect(d.toString()).toBe('aXYbc');
      commit(d, { changes: [{ from: 2, to: 3, insert: 'Z' }], version: 0 });
      expect(d.toString()).toBe('aXYbZ');
    });

    it('refuses an insert with \\r (PROTOCOL.md §2: line breaks are \\n, one position each)', () => {
      const d = doc('a\nb');
      expect(d.prepare({ changes: [{ from: 3, to: 3, insert: '\r\nc' }] }, 's')).toMatchObject({ kind: 'rejected', code: 'invalid_change' });
      commit(d, { changes: [{ from: 3, to: 3, insert: '\nc' }] });
      expect(d.toString()).toBe('a\nb\nc');
      expect(d.length).toBe(5);
    });

    it('refuses what the protocol calls invalid_change, stale and too_large', () => {
      const d = doc('abcdef', 2, 10);
      const reasons = [
        d.prepare({ changes: [{ from: 3, to: 2, insert: '' }] }, 's'),
        d.prepare({ changes: [{ from: 0, to: 7, insert: '' }] }, 's'),
        d.prepare({ changes: [{ from: 2, to: 4, insert: '' }, { from: 3, to: 5, insert: '' }] }, 's'),
        d.prepare({ changes: [{ from: 4, to: 5, insert: '' }, { from: 0, to: 1, insert: '' }] }, 's'),
        d.prepare({ changes: [], docLength: 5 }, 's'),
        d.prepare({ changes: [], version: 1 }, 's'),
        d.prepare({ changes: [{ from: 0, to: 0, insert: '\ud800' }] }, 's'),
      ];
      for (const reason of reasons) expect(reason).toMatchObject({ kind: 'rejected', code: 'invalid_change' });
      expect(d.prepare({ changes: [{ from: 0, to: 0, insert: 'xxxxx' }] }, 's')).toMatchObject({ kind: 'rejected', code: 'too_large' });
      for (let i = 0; i < 3; i++) commit(d, { changes: [{ from: 0, to: 1, insert: 'q' }] });
      expect(d.prepare({ changes: [], version: 0 }, 's')).toMatchObject({ kind: 'rejected', code: 'stale' });
      expect(d.prepare({ changes: [], version: 1 }, 's')).toMatchObject({ kind: 'ready' });
    });

    it('refuses a change that splits a surrogate pair', () => {
      const d = doc('a😀b');
      expect(d.prepare({ changes: [{ from: 2, to: 2, insert: 'x' }] }, 's')).toMatchObject({ code: 'invalid_change' });
      expect(d.prepare({ changes: [{ from: 1, to: 2, insert: '' }] }, 's')).toMatchObject({ code: 'invalid_change' });
      expect(d.prepare({ changes: [{ from: 1, to: 3, insert: '🎉' }] }, 's')).toMatchObject({ kind: 'ready' });
    });

    it('answers a committed ref with its original version, within the history window only', () => {
      const d = doc('', 2);
      commit(d, { changes: [{ from: 0, to: 0, insert: 'a' }], ref: 'r1' });
      expect(d.prepare({ changes: [{ from: 0, to: 0, insert: 'a' }], ref: 'r1' }, 's')).toEqual({ kind: 'duplicate', version: 1 });
      commit(d, { changes: [{ from: 0, to: 0, insert: 'b' }] });
      commit(d, { changes: [{ from: 0, to: 0, insert: 'c' }] });
      expect(d.prepare({ changes: [], ref: 'r1' }, 's').kind).toBe('ready');
    });
  });

  describe('entriesAfter', () => {
    it('serves a resume from the history and refuses one out of it', () => {
      const d = doc('', 2);
      for (let i = 0; i < 3; i++) commit(d, { changes: [{ from: 0, to: 0, insert: String(i) }] });
      expect(d.entriesAfter(3)).toEqual([]);
      expect(d.entriesAfter(1)?.map((e) => e.version)).toEqual([2, 3]);
      expect(d.entriesAfter(0)).toBeNull();
      expect(d.entriesAfter(4)).toBeNull();
    });
  });

  it('loads from a stored snapshot and log tail', () => {
    const first = doc('x');
    commit(first, { changes: [{ from: 1, to: 1, insert: 'y' }], ref: 'a' });
    const log = first.entriesAfter(0)!;
    const loaded = new TextDoc({ text: first.toString(), version: 1, log, epoch: 'e' }, { history: 10, maxDocLength: 100 });
    expect(loaded.prepare({ changes: [], ref: 'a' }, 's')).toEqual({ kind: 'duplicate', version: 1 });
    expect(loaded.entriesAfter(0)).toHaveLength(1);
  });
});

describe('changeSetOf / specsOf', () => {
  it('round-trips a change set through its broadcast form', () => {
    const set = changeSetOf([{ from: 0, to: 2, insert: 'a\nb' }, { from: 5, to: 5, insert: 'c' }], 6);
    expect(specsOf(set)).toEqual([{ from: 0, to: 2, insert: 'a\nb' }, { from: 5, to: 5, insert: 'c' }]);
    const text = textOf('012345');
    expect(changeSetOf(specsOf(set), 6).apply(text).toString()).toBe(set.apply(text).toString());
    expect(set.apply(text).toString()).toBe('a\nb234c5');
  });

  it('checks order, bounds and surrogates', () => {
    expect(checkChangeShape([{ from: 0, to: 1, insert: '' }, { from: 1, to: 1, insert: 'x' }], 3)).toBeNull();
    expect(checkChangeShape([{ from: 0, to: 4, insert: '' }], 3)).toMatch(/past/);
  });
});

describe('TextDoc history bounds (PROTOCOL.md §6)', () => {
  function bounded(historyBytes: number): TextDoc {
    return new TextDoc({ text: '', version: 0, log: [], epoch: 'e' }, { history: 100, historyBytes, maxDocLength: 1_000_000 });
  }

  it('trims the history to HISTORY_BYTES (inserted units + 16 per change) and keeps deduplication for HISTORY versions', () => {
    const d = bounded(1_000);
    for (let v = 0; v < 10; v++) {
      const result = d.prepare({ changes: [{ from: 0, to: d.length, insert: 'x'.repeat(300) }], version: v, ref: `r${v}` }, 's', 'author-1');
      if (result.kind !== 'ready') throw new Error(JSON.stringify(result));
      d.install(result.entry, result.set);
    }
    // 316 bytes an entry: three fit in 1,000.
    expect(d.oldestBase).toBe(7);
    expect(d.entriesAfter(6)).toBeNull();
    expect(d.prepare({ changes: [], version: 5 }, 's')).toMatchObject({ kind: 'rejected', code: 'stale' });
    // The ref of version 1 is long gone from the history, and still deduplicated for its author.
    expect(d.prepare({ changes: [], ref: 'r0' }, 's', 'author-1')).toEqual({ kind: 'duplicate', version: 1 });
    expect(d.prepare({ changes: [], ref: 'r0' }, 's', 'author-2')).toMatchObject({ kind: 'ready' });
    const stored = { text: d.toString(), version: d.version, log: d.entriesAfter(d.oldestBase)!, epoch: 'e', refs: d.refsBefore(d.oldestBase + 1) };
    const reloaded = new TextDoc(stored, { history: 100, historyBytes: 1_000, maxDocLength: 1_000_000 });
    expect(reloaded.prepare({ changes: [], ref: 'r2' }, 's', 'author-1')).toEqual({ kind: 'duplicate', version: 3 });
  });

  it('forgets refs older than HISTORY versions', () => {
    const d = new TextDoc({ text: '', version: 0, log: [], epoch: 'e' }, { history: 3, maxDocLength: 100 });
    for (let v = 0; v < 5; v++) {
      const result = d.prepare({ changes: [{ from: 0, to: 0, insert: 'a' }], ref: `r${v}` }, 's', 'k');
      if (result.kind !== 'ready') throw new Error(JSON.stringify(result));
      d.install(result.entry, result.set);
    }
    expect(d.prepare({ changes: [], ref: 'r1' }, 's', 'k')).toMatchObject({ kind: 'ready' });
    expect(d.prepare({ changes: [], ref: 'r3' }, 's', 'k')).toEqual({ kind: 'duplicate', version: 4 });
  });
});

describe('TextDoc fast path (issue 15)', () => {
  it('prepares an edit on the current version into exactly the entry and set the rebasing path gives', () => {
    const spec = fc.record({ at: fc.nat(40), cut: fc.nat(3), insert: fc.string({ unit: fc.constantFrom('a', 'b', '\n', 'é'), maxLength: 3 }) });
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom('x', 'y', '\n'), maxLength: 40 }), fc.array(spec, { maxLength: 5 }), (text, raw) => {
        // Sorted, apart, each within the text: what a client may send.
        const changes: { from: number; to: number; insert: string }[] = [];
        let at = 0;
        for (const { at: gap, cut, insert } of raw) {
          const from = Math.min(text.length, at + (gap % 5));
          const to = Math.min(text.length, from + cut);
          if (from < at) break;
          changes.push({ from, to, insert });
          at = to + 1;
        }
        const fast = doc(text, 10, 10_000).prepare({ changes, version: 0 }, 's');
        // The general path: one version behind, over an empty change.
        const slowDoc = doc(text, 10, 10_000);
        commit(slowDoc, { changes: [], version: 0 });
        const slow = slowDoc.prepare({ changes, version: 0 }, 's');
        if (fast.kind !== 'ready' || slow.kind !== 'ready') return expect(fast.kind).toBe(slow.kind);
        expect(fast.entry.changes).toEqual(slow.entry.changes);
        expect(fast.set.toJSON()).toEqual(slow.set.toJSON());
      }),
      { seed: 15, numRuns: 500 },
    );
  });

  describe('fork', () => {
    it('is independent: what is installed on a fork leaves the doc as it was (text, version, history, refs)', () => {
      const original = doc('abc');
      commit(original, { changes: [{ from: 0, to: 0, insert: '1' }], version: 0, ref: 'r1' });
      const fork = original.fork();
      for (let i = 2; i <= 5; i++) commit(fork, { changes: [{ from: 0, to: 0, insert: String(i) }], version: fork.version, ref: `r${i}` });
      expect(fork.toString()).toBe('54321abc');
      expect(fork.prepare({ changes: [], ref: 'r5' }, 's')).toEqual({ kind: 'duplicate', version: 5 });
      expect(original.toString()).toBe('1abc');
      expect(original.version).toBe(1);
      expect(original.entriesAfter(0)?.map((entry) => entry.ref)).toEqual(['r1']);
      expect(original.prepare({ changes: [], ref: 'r5' }, 's').kind).toBe('ready');
      expect(original.prepare({ changes: [], ref: 'r1' }, 's')).toEqual({ kind: 'duplicate', version: 1 });
      // ...and the fork kept the doc's past: a change on version 0 is rebased over all five.
      const late = fork.prepare({ changes: [{ from: 3, to: 3, insert: '!' }], version: 0 }, 'late');
      expect(late.kind === 'ready' && late.entry.changes).toEqual([{ from: 8, to: 8, insert: '!' }]);
    });
  });
});

