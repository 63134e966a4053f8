/**
 * The embedded default: documents and their change logs in this process's memory. It lives on
 * the main thread, so an acknowledged change survives the crash of a channel or of its worker
 * (not of the process: configure Redis for that).
 */
import type { LogEntry, RefRecord, StoredDoc } from '../doc/text_doc.ts';
import { changeSetOf, entryBytes, newEpoch, textOf } from '../doc/text_doc.ts';
import { normalizeLineBreaks } from '../doc/line_breaks.ts';
import type { Backplane, CommitResult, RemoteListener } from './backplane.ts';
import { expiredAt, type ExpiryPolicy } from './expiry.ts';

interface DocRecord {
  snapshot: string;
  snapshotVersion: number;
  /**
   * Entries oldest first: every one after the snapshot, and below it at most `history` versions
   * and `historyBytes` bytes of them.
   */
  log: LogEntry[];
  /** Refs of the last `history` versions whose entries were trimmed by bytes (kept for dedup). */
  refs: RefRecord[];
  version: number;
  epoch: string;
  /** Last commit or snapshot, or last sweep that found it open (ms since the Unix epoch). */
  activeAtMs: number;
}

function emptyRecord(): DocRecord {
  return { snapshot: '', snapshotVersion: 0, log: [], refs: [], version: 0, epoch: newEpoch(), activeAtMs: Date.now() };
}

export class MemoryBackplane implements Backplane {
  #docs = new Map<string, DocRecord>();
  readonly #history: number;
  readonly #historyBytes: number;
  readonly #expiry: ExpiryPolicy;

  /** Without `ttlS`/`tmpTtlS` nothing expires. */
  constructor(options: { history: number; historyBytes?: number } & Partial<ExpiryPolicy>) {
    this.#history = options.history;
    this.#historyBytes = options.historyBytes ?? 0;
    this.#expiry = { ttlS: options.ttlS ?? 0, tmpTtlS: options.tmpTtlS ?? 0 };
  }

  get size(): number {
    return this.#docs.size;
  }

  async load(codespace: string): Promise<StoredDoc> {
    return this.loadNow(codespace);
  }

  /** Synchronous form, for the main-thread store server where ordering matters. */
  loadNow(codespace: string): StoredDoc {
    let record = this.#docs.get(codespace);
    if (!record) {
      // Made at the first load, so that every load of this history names the same epoch.
      record = emptyRecord();
      this.#docs.set(codespace, record);
    }
    // A text restored or seeded from outside may carry "\r\n" (PROTOCOL.md §2).
    let text = textOf(normalizeLineBreaks(record.snapshot));
    let version = record.snapshotVersion;
    for (const entry of record.log) {
      if (entry.version <= version) continue;
      text = changeSetOf(entry.changes, entry.docLength).apply(text);
      version = entry.version;
    }
    return { text: text.sliceString(0, text.length, '\n'), version, log: record.log.slice(-this.#history), epoch: record.epoch, refs: [...record.refs] };
  }

  async commit(codespace: string, entry: LogEntry, epoch: string): Promise<CommitResult> {
    return this.commitNow(codespace, entry, epoch);
  }

  /** `epoch` absent: the caller is the only sequencer of the codespace (a channel over its port). */
  commitNow(codespace: string, entry: LogEntry, epoch?: string): CommitResult {
    let record = this.#docs.get(codespace);
    if (!record) {
      record = emptyRecord();
      this.#docs.set(codespace, record);
    }
    if (entry.version !== record.version + 1 || (epoch !== undefined && epoch !== record.epoch)) {
      const message = `the store is at version ${record.version} of ${record.epoch}, not ${entry.version - 1} of ${epoch ?? record.epoch}`;
      return { ok: false, reason: 'conflict', stored: record.version, epoch: record.epoch, message };
    }
    record.log.push(entry);
    record.version = entry.version;
    record.activeAtMs = Date.now();
    return { ok: true };
  }

  async saveSnapshot(codespace: string, text: string, version: number, epoch: string): Promise<void> {
    this.saveSnapshotNow(codespace, text, version, epoch);
  }

  saveSnapshotNow(codespace: string, text: string, version: number, epoch?: string): void {
    const record = this.#docs.get(codespace) ?? { ...emptyRecord(), version };
    if (version < record.snapshotVersion || version > record.version || (epoch !== undefined && epoch !== record.epoch)) return;
    record.snapshot = text;
    record.snapshotVersion = version;
    record.activeAtMs = Date.now();
    this.#trim(record);
    this.#docs.set(codespace, record);
  }

  /**
   * Below the snapshot, keeps `history` versions and `historyBytes` bytes of entries for resume
   * and rebase, and the refs of `history` versions for deduplication (PROTOCOL.md §6); never
   * drops an entry above the snapshot (a load replays them).
   */
  #trim(record: DocRecord): void {
    const keepFrom = record.snapshotVersion - this.#history;
    let bytes = 0;
    for (const entry of record.log) if (entry.version <= record.snapshotVersion) bytes += entryBytes(entry);
    let drop = 0;
    while (drop < record.log.length && record.log[drop].version <= record.snapshotVersion) {
      const entry = record.log[drop];
      const overBytes = this.#historyBytes > 0 && bytes > this.#historyBytes;
      if (entry.version > keepFrom && !overBytes) break;
      bytes -= entryBytes(entry);
      if (entry.version > keepFrom && entry.ref !== undefined) record.refs.push({ version: entry.version, author: entry.author ?? entry.sender, ref: entry.ref });
      drop++;
    }
    if (drop > 0) record.log.splice(0, drop);
    const refsFrom = record.version - this.#history;
    if (record.refs.length > 0 && record.refs[0].version <= refsFrom) record.refs = record.refs.filter((ref) => ref.version > refsFrom);
  }

  async readLog(codespace: string, version: number): Promise<{ epoch: string; entries: LogEntry[] | null }> {
    const record = this.#docs.get(codespace);
    if (!record) return { epoch: '', entries: version === 0 ? [] : null };
    if (version >= record.version) return { epoch: record.epoch, entries: [] };
    const first = record.log.findIndex((entry) => entry.version === version + 1);
    return { epoch: record.epoch, entries: first < 0 ? null : record.log.slice(first) };
  }

  async restore(codespace: string, doc: StoredDoc): Promise<boolean> {
    const record = this.#docs.get(codespace);
    if (record && record.version > 0) return false;
    this.#docs.set(codespace, { snapshot: doc.text, snapshotVersion: doc.version, log: [...doc.log], refs: [...(doc.refs ?? [])], version: doc.version, epoch: doc.epoch, activeAtMs: Date.now() });
    return true;
  }

  /** One process, one channel per codespace: there are no other instances to hear from. */
  async subscribe(_codespace: string, _listener: RemoteListener): Promise<void> {}

  unsubscribe(_codespace: string): void {}

  publishSelection(_codespace: string, _message: Record<string, unknown>): void {}

  /** Channels on this store never touch it: the hub's sweep counts an open codespace as active. */
  async touch(_codespace: string): Promise<void> {}

  /**
   * Forgets every codespace inactive for longer than its TTL; one that `isOpen` (has a channel)
   * is never removed, and counts as active now. Returns how many went. Without this an abandoned
   * codespace lived as long as the process (5,000 tmp- codespaces a stress round, memory kept
   * growing).
   */
  expire(nowMs: number, isOpen: (codespace: string) => boolean): number {
    let removed = 0;
    for (const [codespace, record] of this.#docs) {
      if (isOpen(codespace)) record.activeAtMs = nowMs;
      else if (expiredAt(this.#expiry, codespace, record.activeAtMs, nowMs)) {
        this.#docs.delete(codespace);
        removed++;
      }
    }
    return removed;
  }
}
