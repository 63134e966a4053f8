/**
 * The embedded default: documents and their change logs in this process's memory. It lives on
 * the main thread, so an acknowledged change survives the crash of a channel or of its worker
 * (not of the process: configure Redis for that).
 */
import type { LogEntry, StoredDoc } from '../doc/text_doc.ts';
import { changeSetOf, textOf } from '../doc/text_doc.ts';
import { normalizeLineBreaks } from '../doc/line_breaks.ts';
import type { Backplane, CommitResult, RemoteListener } from './backplane.ts';

interface DocRecord {
  snapshot: string;
  snapshotVersion: number;
  /** Entries after the snapshot, oldest first, trimmed to `history` beyond it. */
  log: LogEntry[];
  version: number;
}

export class MemoryBackplane implements Backplane {
  #docs = new Map<string, DocRecord>();
  readonly #history: number;

  constructor(options: { history: number }) {
    this.#history = options.history;
  }

  get size(): number {
    return this.#docs.size;
  }

  async load(codespace: string): Promise<StoredDoc> {
    return this.loadNow(codespace);
  }

  /** Synchronous form, for the main-thread store server where ordering matters. */
  loadNow(codespace: string): StoredDoc {
    const record = this.#docs.get(codespace);
    if (!record) return { text: '', version: 0, log: [] };
    // A text restored or seeded from outside may carry "\r\n" (PROTOCOL.md §2).
    let text = textOf(normalizeLineBreaks(record.snapshot));
    let version = record.snapshotVersion;
    for (const entry of record.log) {
      if (entry.version <= version) continue;
      text = changeSetOf(entry.changes, entry.docLength).apply(text);
      version = entry.version;
    }
    return { text: text.sliceString(0, text.length, '\n'), version, log: record.log.slice(-this.#history) };
  }

  async commit(codespace: string, entry: LogEntry): Promise<CommitResult> {
    return this.commitNow(codespace, entry);
  }

  commitNow(codespace: string, entry: LogEntry): CommitResult {
    let record = this.#docs.get(codespace);
    if (!record) {
      record = { snapshot: '', snapshotVersion: 0, log: [], version: 0 };
      this.#docs.set(codespace, record);
    }
    if (entry.version !== record.version + 1) {
      return { ok: false, reason: 'conflict', stored: record.version, message: `expected version ${record.version + 1}, got ${entry.version}` };
    }
    record.log.push(entry);
    record.version = entry.version;
    return { ok: true };
  }

  async saveSnapshot(codespace: string, text: string, version: number): Promise<void> {
    this.saveSnapshotNow(codespace, text, version);
  }

  saveSnapshotNow(codespace: string, text: string, version: number): void {
    const record = this.#docs.get(codespace) ?? { snapshot: '', snapshotVersion: 0, log: [], version };
    if (version < record.snapshotVersion || version > record.version) return;
    record.snapshot = text;
    record.snapshotVersion = version;
    // Keep `history` versions below the snapshot for resume and dedup; never drop above it.
    const keepFrom = version - this.#history;
    let drop = 0;
    while (drop < record.log.length && record.log[drop].version <= keepFrom) drop++;
    if (drop > 0) record.log.splice(0, drop);
    this.#docs.set(codespace, record);
  }

  async readLog(codespace: string, version: number): Promise<LogEntry[] | null> {
    const record = this.#docs.get(codespace);
    if (!record) return version === 0 ? [] : null;
    if (version >= record.version) return [];
    const first = record.log.findIndex((entry) => entry.version === version + 1);
    return first < 0 ? null : record.log.slice(first);
  }

  async restore(codespace: string, doc: StoredDoc): Promise<boolean> {
    const record = this.#docs.get(codespace);
    if (record && record.version >= doc.version) return false;
    this.#docs.set(codespace, { snapshot: doc.text, snapshotVersion: doc.version, log: [...doc.log], version: doc.version });
    return true;
  }

  /** One process, one channel per codespace: there are no other instances to hear from. */
  async subscribe(_codespace: string, _listener: RemoteListener): Promise<void> {}

  unsubscribe(_codespace: string): void {}

  publishSelection(_codespace: string, _message: Record<string, unknown>): void {}

  /** Memory does not expire: an abandoned codespace lives as long as the process. */
  async touch(_codespace: string): Promise<void> {}
}
