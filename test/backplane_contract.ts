/**
 * The contract every Backplane implementation keeps (STYLE.md rule 13): run by
 * memory_backplane.test.ts, file_backplane.test.ts and redis_backplane.integration.test.ts
 * against each.
 */
import { describe, expect, it, beforeEach, afterEach } from 'vitest';
import type { Backplane } from '../src/backplane/backplane.ts';
import type { LogEntry } from '../src/doc/text_doc.ts';

/** History window the implementation under test must be built with. */
export const CONTRACT_HISTORY = 3;

export interface ContractSubject {
  backplane: Backplane;
  cleanup(): Promise<void>;
  /**
   * For a durable store: closes `backplane` and opens a new one on the same store (a server
   * restart). The memory backplane has none.
   */
  reopen?: () => Promise<Backplane>;
}

/** Entry n of a document built by appending "<n>;" at the end, from version 0. */
export function appendEntry(version: number, sender = 's1'): LogEntry {
  const docLength = textAt(version - 1).length;
  return { version, changes: [{ from: docLength, to: docLength, insert: `${version};` }], docLength, sender, ref: `r${version}` };
}

export function textAt(version: number): string {
  let text = '';
  for (let v = 1; v <= version; v++) text += `${v};`;
  return text;
}

/** The codespace's epoch: its first load starts its history. */
export async function epochOf(backplane: Backplane, codespace: string): Promise<string> {
  return (await backplane.load(codespace)).epoch;
}

async function commitUpTo(backplane: Backplane, codespace: string, version: number): Promise<string> {
  const epoch = await epochOf(backplane, codespace);
  for (let v = 1; v <= version; v++) expect(await backplane.commit(codespace, appendEntry(v), epoch)).toEqual({ ok: true });
  return epoch;
}

async function versionsAfter(backplane: Backplane, codespace: string, version: number): Promise<number[] | null> {
  return (await backplane.readLog(codespace, version)).entries?.map((entry) => entry.version) ?? null;
}

/** `durable`: the store outlives the backplane object (file, Redis), and `reopen` is given. */
export function backplaneContract(name: string, make: () => Promise<ContractSubject>, options: { durable?: boolean } = {}): void {
  describe(`Backplane contract: ${name}`, () => {
    let subject: ContractSubject;
    let backplane: Backplane;
    let n = 0;
    let codespace: string;

    beforeEach(async () => {
      subject = await make();
      backplane = subject.backplane;
      codespace = `contract-${process.pid}-${Date.now()}-${n++}`;
    });
    afterEach(async () => subject.cleanup());

    it('loads an unknown codespace as the empty document at version 0, in one epoch', async () => {
      const doc = await backplane.load(codespace);
      expect(doc).toMatchObject({ text: '', version: 0, log: [] });
      expect(doc.epoch).toMatch(/^[A-Za-z0-9_-]{1,64}$/);
      expect((await backplane.load(codespace)).epoch).toBe(doc.epoch);
    });

    it('commits in version order and loads the log replayed', async () => {
      await commitUpTo(backplane, codespace, 2);
      const doc = await backplane.load(codespace);
      expect(doc.text).toBe(textAt(2));
      expect(doc.version).toBe(2);
      expect(doc.log.map((entry) => entry.version)).toEqual([1, 2]);
      expect(doc.log[1]).toEqual(appendEntry(2));
    });

    it('refuses a commit that does not follow the stored version, or names another epoch, and changes nothing', async () => {
      const epoch = await commitUpTo(backplane, codespace, 2);
      const gap = await backplane.commit(codespace, appendEntry(4), epoch);
      expect(gap).toMatchObject({ ok: false, reason: 'conflict', stored: 2, epoch });
      const replay = await backplane.commit(codespace, appendEntry(2), epoch);
      expect(replay).toMatchObject({ ok: false, reason: 'conflict', stored: 2 });
      const otherHistory = await backplane.commit(codespace, appendEntry(3), 'another-epoch');
      expect(otherHistory).toMatchObject({ ok: false, reason: 'conflict', stored: 2, epoch });
      expect((await backplane.load(codespace)).text).toBe(textAt(2));
    });

    it('reads the log after a version, and says when it no longer reaches back', async () => {
      const epoch = await commitUpTo(backplane, codespace, 4);
      expect(await versionsAfter(backplane, codespace, 1)).toEqual([2, 3, 4]);
      expect(await backplane.readLog(codespace, 4)).toEqual({ epoch, entries: [] });
      expect(await backplane.readLog(codespace, 9)).toEqual({ epoch, entries: [] });
      await backplane.saveSnapshot(codespace, textAt(4), 4, epoch);
      // Trimmed below snapshot - history: version 1 is gone, 2 is the oldest base kept.
      expect(await versionsAfter(backplane, codespace, 0)).toBeNull();
      expect(await versionsAfter(backplane, codespace, 1)).toEqual([2, 3, 4]);
    });

    it('loads a snapshot with the log after it, and keeps history below it', async () => {
      const epoch = await commitUpTo(backplane, codespace, 6);
      await backplane.saveSnapshot(codespace, textAt(5), 5, epoch);
      const doc = await backplane.load(codespace);
      expect(doc.text).toBe(textAt(6));
      expect(doc.version).toBe(6);
      expect(doc.log.map((entry) => entry.version)).toEqual([4, 5, 6]);
      // Never trimmed above the snapshot: version 3 (= 5 - history + 1) is still there.
      expect(await versionsAfter(backplane, codespace, 2)).toEqual([3, 4, 5, 6]);
    });

    it('ignores a snapshot older than the stored one or beyond the stored version', async () => {
      const epoch = await commitUpTo(backplane, codespace, 3);
      await backplane.saveSnapshot(codespace, textAt(3), 3, epoch);
      await backplane.saveSnapshot(codespace, 'stale', 2, epoch);
      await backplane.saveSnapshot(codespace, 'future', 9, epoch);
      expect((await backplane.load(codespace)).text).toBe(textAt(3));
      await commitUpTo(backplane, codespace, 0);
      expect(await backplane.commit(codespace, appendEntry(4), epoch)).toEqual({ ok: true });
      await backplane.saveSnapshot(codespace, 'another history', 4, 'another-epoch');
      expect((await backplane.load(codespace)).text).toBe(textAt(4));
    });

    it('restores a history into a store that holds no version, with its epoch, and never over a committed version', async () => {
      const log = [appendEntry(4), appendEntry(5)];
      await epochOf(backplane, codespace); // a load made an epoch at version 0: still nothing committed
      expect(await backplane.restore(codespace, { text: textAt(5), version: 5, log, epoch: 'restored-epoch' })).toBe(true);
      const doc = await backplane.load(codespace);
      expect(doc).toMatchObject({ text: textAt(5), version: 5, epoch: 'restored-epoch' });
      expect(await backplane.commit(codespace, appendEntry(6), 'restored-epoch')).toEqual({ ok: true });
      expect(await versionsAfter(backplane, codespace, 3)).toEqual([4, 5, 6]);
      expect(await backplane.restore(codespace, { text: 'older', version: 4, log: [], epoch: 'x' })).toBe(false);
      expect(await backplane.restore(codespace, { text: 'newer', version: 9, log: [], epoch: 'x' })).toBe(false);
      expect((await backplane.load(codespace)).text).toBe(textAt(6));
    });

    if (options.durable) it('keeps documents, logs, snapshots and refs across a reopen', async () => {
      const epoch = await commitUpTo(backplane, codespace, 5);
      await backplane.saveSnapshot(codespace, textAt(4), 4, epoch);
      const before = await backplane.load(codespace);
      backplane = await subject.reopen!();
      const after = await backplane.load(codespace);
      expect(after).toEqual(before);
      expect(after.epoch).toBe(epoch);
      expect(after.log.map((entry) => entry.ref)).toEqual(['r3', 'r4', 'r5']);
      expect(await backplane.commit(codespace, appendEntry(5), epoch)).toMatchObject({ ok: false, reason: 'conflict', stored: 5 });
      expect(await backplane.commit(codespace, appendEntry(6), epoch)).toEqual({ ok: true });
      expect(await versionsAfter(backplane, codespace, 2)).toEqual([3, 4, 5, 6]);
    });

    it('keeps codespaces apart', async () => {
      await commitUpTo(backplane, codespace, 2);
      expect(await backplane.load(`${codespace}-other`)).toMatchObject({ text: '', version: 0, log: [] });
    });
  });
}
