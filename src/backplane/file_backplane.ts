/**
 * The local durable store: documents, change logs and snapshots in an LMDB environment under
 * DATA_DIR (npm `lmdb`). One machine, one server process; every thread that hosts channels (each
 * worker, or main with WORKERS=0) opens its own environment on the same path (ARCHITECTURE.md:
 * measured on Node, Bun and Deno). An edit is acked only once its commit is synced to disk
 * (lmdb-js resolves a write once it is flushed); the writes queued while one transaction commits
 * all go into the next, so commits that arrive together share one sync.
 *
 * Layout, three named databases:
 * - `meta`: codespace → DocMeta (snapshot version, epoch, last activity), at the LMDB entry
 *   version that is the document's version: every write is conditional on it;
 * - `snapshot`: codespace → text at `meta.snapshotVersion`;
 * - `log`: [codespace, version] → LogEntry, kept for HISTORY versions behind the snapshot. The
 *   refs of those entries are the ref-dedupe state, so it survives a restart with them.
 */
import { statfs } from 'node:fs/promises';
import { createRequire } from 'node:module';
import type { Database, RootDatabase } from 'lmdb';
import type { LogEntry, StoredDoc } from '../doc/text_doc.ts';
import { changeSetOf, newEpoch, textOf, LINE_SEPARATOR } from '../doc/text_doc.ts';
import type { Backplane, CommitResult, RemoteListener } from './backplane.ts';
import { expiredAt, type ExpiryPolicy } from './expiry.ts';

export interface FileBackplaneOptions extends ExpiryPolicy {
  /** The DATA_DIR: the environment's directory. */
  path: string;
  history: number;
}

/**
 * Everything about one codespace but its text and log; small, rewritten at every commit. Its
 * version is the LMDB entry's version (the `meta` database is versioned).
 */
interface DocMeta {
  snapshotVersion: number;
  /** Identity of this history (PROTOCOL.md §1): made when it starts, kept while it lives. */
  epoch: string;
  /** Last commit, snapshot or touch, in ms since the Unix epoch: what expiry measures from. */
  activeAtMs: number;
}

type LogKey = [codespace: string, version: number];

/**
 * Values are read by every thread and after restarts: plain msgpack maps, no records
 * (ARCHITECTURE.md: msgpackr records only decode with a decoder that saw the structure). Given to
 * each named database: lmdb-js does not pass the root's encoder options on to them.
 */
function plainMsgpack(name: string): { name: string } {
  return { name, useRecords: false } as { name: string };
}

/**
 * lmdb is loaded on first use, not at import: a server without DATA_DIR never loads its native
 * addon (nor needs Deno's --allow-ffi, nor a prebuilt binary for its platform).
 */
let lmdbOpen: typeof import('lmdb').open | null = null;

/** `options`: lmdb-js's, some of which (txnStartThreshold) its types do not list. */
function openLmdb(options: { path: string } & Record<string, unknown>): RootDatabase {
  lmdbOpen ??= (createRequire(import.meta.url)('lmdb') as typeof import('lmdb')).open;
  return lmdbOpen(options as never);
}

/**
 * Free space kept under DATA_DIR. lmdb's native side aborted whole test processes (Node and Bun,
 * CI on 2026-12-02: "malloc(): corrupted top size") when a write met ENOSPC, so a write that
 * would leave less than this is refused (`unavailable`, nothing written) before the disk is full.
 */
const DISK_RESERVE_BYTES = 1 << 20;
/** How long a free-space reading is trusted while there is plenty. */
const DISK_CHECK_MS = 100;

/** The free space under a directory, read at most every DISK_CHECK_MS, and at once when short. */
class DiskGuard {
  readonly #path: string;
  #free = Number.POSITIVE_INFINITY;
  #checkedAt = 0;
  /** Bytes written since the last reading, counted against it. */
  #written = 0;

  constructor(path: string) {
    this.#path = path;
  }

  /** True if `bytes` (with LMDB's page and copy-on-write overhead) leave the reserve free. */
  async allows(bytes: number): Promise<boolean> {
    const needed = DISK_RESERVE_BYTES + 4 * bytes + 64 * 1024;
    if (Date.now() - this.#checkedAt > DISK_CHECK_MS || this.#free - this.#written < needed) await this.#read();
    if (this.#free - this.#written < needed) return false;
    this.#written += 2 * bytes;
    return true;
  }

  async #read(): Promise<void> {
    try {
      const stats = await statfs(this.#path);
      this.#free = Number(stats.bavail) * Number(stats.bsize);
    } catch {
      this.#free = Number.POSITIVE_INFINITY; // a runtime without statfs: no guard rather than no service
    }
    this.#checkedAt = Date.now();
    this.#written = 0;
  }
}

/** What a change weighs on disk, roughly: its JSON. */
function bytesOf(value: unknown): number {
  return JSON.stringify(value).length * 2;
}

export class FileBackplane implements Backplane {
  readonly #options: FileBackplaneOptions;
  readonly #root: RootDatabase;
  /** Versioned: each entry's LMDB version is the document's version, the condition of every write. */
  readonly #meta: Database<DocMeta, string>;
  readonly #snapshots: Database<string, string>;
  readonly #log: Database<LogEntry, LogKey>;
  #closed = false;
  readonly #disk: DiskGuard;

  constructor(options: FileBackplaneOptions) {
    this.#options = options;
    this.#disk = new DiskGuard(options.path);
    this.#root = openLmdb({
      path: options.path,
      maxDbs: 8,
      compression: false,
      // With event-turn batching on (the default), a failed commit (disk full) also rejects a
      // promise lmdb-js 3.5 makes for the batch's start and never hands out: an unhandled
      // rejection, which kills a worker. Off, with a start threshold no turn reaches, the writes of
      // one event turn (and those queued while a transaction commits) still share one transaction
      // and its sync (the default threshold, 5, split 40 concurrent commits into 7 on Bun), and a
      // failure reaches only its callers.
      eventTurnBatching: false,
      txnStartThreshold: 100_000,
    });
    this.#meta = this.#root.openDB<DocMeta, string>({ ...plainMsgpack('meta'), useVersions: true });
    this.#snapshots = this.#root.openDB<string, string>(plainMsgpack('snapshot'));
    this.#log = this.#root.openDB<LogEntry, LogKey>(plainMsgpack('log'));
  }

  get path(): string {
    return this.#options.path;
  }

  async load(codespace: string): Promise<StoredDoc> {
    let stored = this.#current(codespace);
    if (!stored) {
      // A history starts at its first load, so that every load of it names the same epoch.
      const meta: DocMeta = { snapshotVersion: 0, epoch: newEpoch(), activeAtMs: Date.now() };
      await this.#writeIf(codespace, null, () => this.#meta.put(codespace, meta, 0));
      stored = this.#current(codespace);
      if (!stored) throw new Error(`${codespace} vanished while it was made`);
    }
    const { meta, version } = stored;
    const from = Math.max(1, Math.min(meta.snapshotVersion + 1, version - this.#options.history + 1));
    const entries = this.#entries(codespace, from, version);
    let text = textOf(this.#snapshots.get(codespace) ?? '');
    let at = meta.snapshotVersion;
    for (const entry of entries) {
      if (entry.version <= at) continue;
      if (entry.version !== at + 1) throw new Error(`log of ${codespace} jumps from ${at} to ${entry.version}`);
      text = changeSetOf(entry.changes, entry.docLength).apply(text);
      at = entry.version;
    }
    if (at < version) throw new Error(`log of ${codespace} ends at ${at}, version is ${version}`);
    return {
      text: text.sliceString(0, text.length, LINE_SEPARATOR),
      version: at,
      log: entries.filter((entry) => entry.version > at - this.#options.history),
      epoch: meta.epoch,
    };
  }

  commit(codespace: string, entry: LogEntry, epoch: string): Promise<CommitResult> {
    return this.commitMany(codespace, [entry], epoch);
  }

  async commitMany(codespace: string, entries: LogEntry[], epoch: string): Promise<CommitResult> {
    const first = entries[0];
    const last = entries[entries.length - 1];
    try {
      const stored = this.#current(codespace);
      if (!stored || first.version !== stored.version + 1 || stored.meta.epoch !== epoch) return conflict(stored, first, epoch);
      let bytes = 0;
      for (const entry of entries) bytes += bytesOf(entry);
      if (!(await this.#disk.allows(bytes))) return { ok: false, reason: 'unavailable', message: 'file store: the disk is (nearly) full' };
      const meta: DocMeta = { ...stored.meta, activeAtMs: Date.now() };
      const written = await this.#writeIf(codespace, stored, () => {
        this.#meta.put(codespace, meta, last.version);
        for (const entry of entries) this.#log.put([codespace, entry.version], entry);
      });
      return written ? { ok: true } : conflict(this.#current(codespace), first, epoch);
    } catch (error) {
      // ENOSPC, EIO, a closed environment: nothing of this transaction was written.
      return { ok: false, reason: 'unavailable', message: `file store: ${messageOf(error)}` };
    }
  }

  /** Throws if the snapshot could not be written (the channel tries again later). */
  async saveSnapshot(codespace: string, text: string, version: number, epoch: string): Promise<void> {
    const stored = this.#current(codespace);
    if (!stored || stored.meta.epoch !== epoch || version <= stored.meta.snapshotVersion || version > stored.version) return;
    if (!(await this.#disk.allows(2 * text.length))) throw new Error('file store: the disk is (nearly) full; the snapshot waits');
    const trimmed = this.#logKeys(codespace, keepLogFrom(version, this.#options.history));
    const written = await this.#writeIf(codespace, stored, () => {
      this.#snapshots.put(codespace, text);
      this.#meta.put(codespace, { ...stored.meta, snapshotVersion: version, activeAtMs: Date.now() }, stored.version);
      for (const key of trimmed) this.#log.remove(key);
    });
    if (!written) throw new Error(`snapshot of ${codespace} at ${version}: the store moved on meanwhile`);
  }

  async readLog(codespace: string, version: number): Promise<{ epoch: string; entries: LogEntry[] | null }> {
    const stored = this.#current(codespace);
    if (!stored) return { epoch: '', entries: version === 0 ? [] : null };
    if (stored.version <= version) return { epoch: stored.meta.epoch, entries: [] };
    const entries = this.#entries(codespace, version + 1, stored.version);
    return { epoch: stored.meta.epoch, entries: entries.length === 0 || entries[0].version !== version + 1 ? null : entries };
  }

  /** Only into a store holding no committed version of the codespace (issue 11: never over one). */
  async restore(codespace: string, doc: StoredDoc): Promise<boolean> {
    const stored = this.#current(codespace);
    if ((stored && stored.version > 0) || doc.version <= 0) return false;
    const old = this.#logKeys(codespace, Number.MAX_SAFE_INTEGER);
    const meta: DocMeta = { snapshotVersion: doc.version, epoch: doc.epoch, activeAtMs: Date.now() };
    const written = await this.#writeIf(codespace, stored, () => {
      for (const key of old) this.#log.remove(key);
      for (const entry of doc.log) if (entry.version <= doc.version) this.#log.put([codespace, entry.version], entry);
      this.#snapshots.put(codespace, doc.text);
      this.#meta.put(codespace, meta, doc.version);
    });
    // Lost the race to another write: ask again against what is there now.
    return written || this.restore(codespace, doc);
  }

  /** One process per DATA_DIR (data_dir.ts), one channel per codespace: nobody else to hear from. */
  async subscribe(_codespace: string, _listener: RemoteListener): Promise<void> {}

  unsubscribe(_codespace: string): void {}

  publishSelection(_codespace: string, _message: Record<string, unknown>): void {}

  async touch(codespace: string): Promise<void> {
    const stored = this.#current(codespace);
    if (!stored) return;
    await this.#writeIf(codespace, stored, () => this.#meta.put(codespace, { ...stored.meta, activeAtMs: Date.now() }, stored.version));
  }

  /**
   * Deletes every codespace inactive for longer than its TTL and not open (`isOpen`, asked just
   * before the deletion is queued). A channel that opened one in between commits against a store
   * that no longer has it, gets a conflict below its version, and writes its document back.
   * Returns how many went.
   */
  async expire(nowMs: number, isOpen: (codespace: string) => boolean): Promise<number> {
    this.#root.resetReadTxn();
    const deletions: Promise<boolean>[] = [];
    for (const { key: codespace, value: meta, version } of this.#meta.getRange()) {
      if (!expiredAt(this.#options, codespace, meta.activeAtMs, nowMs) || isOpen(codespace)) continue;
      const keys = this.#logKeys(codespace, Number.MAX_SAFE_INTEGER);
      deletions.push(this.#writeIf(codespace, { version: version! }, () => {
        for (const key of keys) this.#log.remove(key);
        this.#snapshots.remove(codespace);
        this.#meta.remove(codespace);
      }));
    }
    return (await Promise.all(deletions)).filter(Boolean).length;
  }

  /** LMDB's last transaction id: how many commits (and syncs) there have been, for tests. */
  get lastTxnId(): number {
    return (this.#root.getStats() as { lastTxnId: number }).lastTxnId;
  }

  /** Codespaces stored, for tests and the status line. */
  get size(): number {
    this.#root.resetReadTxn();
    return this.#meta.getKeysCount();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#root.close();
  }

  /** What the store holds for `codespace` now (a fresh read: another thread may have written it). */
  #current(codespace: string): { meta: DocMeta; version: number } | null {
    this.#root.resetReadTxn();
    const entry = this.#meta.getEntry(codespace);
    return entry ? { meta: entry.value, version: entry.version! } : null;
  }

  /**
   * Queues `writes` to happen only if `codespace` is still as `stored` says (at that version, or
   * absent), checked inside the write transaction. No JavaScript runs in that transaction: LMDB's
   * one write lock is never held while a thread's event loop is busy (with `transaction()`
   * callbacks it was, and a worker opening its environment, which takes that lock synchronously,
   * stalled past its heartbeat timeout). Resolves once synced, false if the condition failed. A
   * failed commit (ENOSPC, EIO) rejects with lmdb-js's error, whose `commitError` is a second
   * promise that rejects too: handled here, or it would end the process as an unhandled rejection.
   */
  async #writeIf(codespace: string, stored: { version: number } | null, writes: () => void): Promise<boolean> {
    try {
      return await (stored ? this.#meta.ifVersion(codespace, stored.version, writes) : this.#meta.ifNoExists(codespace, writes));
    } catch (error) {
      const commitError = (error as { commitError?: Promise<unknown> }).commitError;
      if (commitError) {
        const cause = await commitError.then(() => undefined, (reason: unknown) => reason);
        throw new Error(`commit failed: ${messageOf(cause ?? error)}`);
      }
      throw error;
    }
  }

  #entries(codespace: string, from: number, to: number): LogEntry[] {
    const entries: LogEntry[] = [];
    for (const { value } of this.#log.getRange({ start: [codespace, from], end: [codespace, to + 1] })) entries.push(value);
    return entries;
  }

  /** The keys of the log entries of `codespace` below version `below`. */
  #logKeys(codespace: string, below: number): LogKey[] {
    return [...this.#log.getKeys({ start: [codespace, 0], end: [codespace, below] })];
  }
}

function conflict(stored: { meta: DocMeta; version: number } | null, entry: LogEntry, epoch: string): CommitResult {
  const version = stored?.version ?? 0;
  const storedEpoch = stored?.meta.epoch ?? '';
  return { ok: false, reason: 'conflict', stored: version, epoch: storedEpoch, message: `the store is at version ${version} of ${storedEpoch || 'no history'}, not ${entry.version - 1} of ${epoch}` };
}

/**
 * The oldest version kept once a snapshot is at `snapshotVersion`: HISTORY versions of it, for
 * resume, rebase and ref deduplication. HISTORY_BYTES (PROTOCOL.md §6) hooks in here: it may
 * shorten resume and rebase but never deduplication, so entries within HISTORY would keep their
 * refs (e.g. stored with their changes dropped) rather than go.
 */
export function keepLogFrom(snapshotVersion: number, history: number): number {
  return snapshotVersion - history + 1;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * This thread's file backplanes, one per set of options: every channel hosted on a thread shares
 * its thread's environment (as they share one Redis connection), and with WORKERS=0 the hub's
 * sweep shares main's with the channels.
 */
const perThread = new Map<string, FileBackplane>();

export function fileBackplaneFor(options: FileBackplaneOptions): FileBackplane {
  const key = JSON.stringify(options);
  let backplane = perThread.get(key);
  if (!backplane) {
    backplane = new FileBackplane(options);
    perThread.set(key, backplane);
  }
  return backplane;
}

/** Closes this thread's backplane for `options` (the hub, at close, after its channels stopped). */
export async function closeFileBackplane(options: FileBackplaneOptions): Promise<void> {
  const key = JSON.stringify(options);
  const backplane = perThread.get(key);
  perThread.delete(key);
  await backplane?.close();
}
