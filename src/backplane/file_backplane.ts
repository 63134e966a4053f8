/**
 * The local durable store: documents, change logs and snapshots in an LMDB environment under
 * DATA_DIR (npm `lmdb`). One machine, one server process; every thread that hosts channels (each
 * worker, or main with WORKERS=0) opens its own environment on the same path (ARCHITECTURE.md:
 * measured on Node, Bun and Deno). An edit is acked only once its commit is synced to disk
 * (lmdb-js resolves a write once it is flushed); the transactions queued while one commits all go
 * into the next, so commits that arrive together share one sync.
 *
 * Layout, three named databases:
 * - `meta`: codespace → DocMeta (version, snapshot version, epoch, last activity);
 * - `snapshot`: codespace → text at `meta.snapshotVersion`;
 * - `log`: [codespace, version] → LogEntry, kept for HISTORY versions behind the snapshot. The
 *   refs of those entries are the ref-dedupe state, so it survives a restart with them.
 */
import { createRequire } from 'node:module';
import type { Database, RootDatabase } from 'lmdb';
import type { LogEntry, StoredDoc } from '../doc/text_doc.ts';
import { changeSetOf, textOf, LINE_SEPARATOR } from '../doc/text_doc.ts';
import type { Backplane, CommitResult, RemoteListener } from './backplane.ts';
import { expiredAt, type ExpiryPolicy } from './expiry.ts';

export interface FileBackplaneOptions extends ExpiryPolicy {
  /** The DATA_DIR: the environment's directory. */
  path: string;
  history: number;
}

/** Everything about one codespace but its text and log; small, rewritten at every commit. */
interface DocMeta {
  version: number;
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

function openLmdb(options: Parameters<typeof import('lmdb').open>[0]): RootDatabase {
  lmdbOpen ??= (createRequire(import.meta.url)('lmdb') as typeof import('lmdb')).open;
  return lmdbOpen(options as never);
}

export function newEpoch(): string {
  return crypto.randomUUID();
}

export class FileBackplane implements Backplane {
  readonly #options: FileBackplaneOptions;
  readonly #root: RootDatabase;
  readonly #meta: Database<DocMeta, string>;
  readonly #snapshots: Database<string, string>;
  readonly #log: Database<LogEntry, LogKey>;
  #closed = false;

  constructor(options: FileBackplaneOptions) {
    this.#options = options;
    this.#root = openLmdb({
      path: options.path,
      maxDbs: 8,
      compression: false,
      // With event-turn batching on (the default), a failed commit (disk full) also rejects a
      // promise lmdb-js 3.5 makes for the batch's start and never hands out: an unhandled
      // rejection, which kills a worker. Off, queued transactions still share one commit and one
      // sync (measured: 100 concurrent ones, one transaction), and a failure reaches only callers.
      eventTurnBatching: false,
    });
    this.#meta = this.#root.openDB<DocMeta, string>(plainMsgpack('meta'));
    this.#snapshots = this.#root.openDB<string, string>(plainMsgpack('snapshot'));
    this.#log = this.#root.openDB<LogEntry, LogKey>(plainMsgpack('log'));
  }

  get path(): string {
    return this.#options.path;
  }

  async load(codespace: string): Promise<StoredDoc> {
    this.#root.resetReadTxn(); // another thread (a crashed channel's) may have written it last
    const meta = this.#meta.get(codespace);
    if (!meta) return { text: '', version: 0, log: [] };
    const from = Math.max(1, Math.min(meta.snapshotVersion + 1, meta.version - this.#options.history + 1));
    const entries = this.#entries(codespace, from, meta.version);
    let text = textOf(this.#snapshots.get(codespace) ?? '');
    let at = meta.snapshotVersion;
    for (const entry of entries) {
      if (entry.version <= at) continue;
      if (entry.version !== at + 1) throw new Error(`log of ${codespace} jumps from ${at} to ${entry.version}`);
      text = changeSetOf(entry.changes, entry.docLength).apply(text);
      at = entry.version;
    }
    if (at < meta.version) throw new Error(`log of ${codespace} ends at ${at}, version is ${meta.version}`);
    return {
      text: text.sliceString(0, text.length, LINE_SEPARATOR),
      version: at,
      log: entries.filter((entry) => entry.version > at - this.#options.history),
      epoch: meta.epoch,
    };
  }

  async commit(codespace: string, entry: LogEntry): Promise<CommitResult> {
    try {
      const stored = await this.#write(() => {
        const meta = this.#meta.get(codespace);
        const version = meta?.version ?? 0;
        if (entry.version !== version + 1) return version;
        const now = Date.now();
        this.#meta.putSync(codespace, meta ? { ...meta, version: entry.version, activeAtMs: now } : { version: entry.version, snapshotVersion: 0, epoch: newEpoch(), activeAtMs: now });
        this.#log.putSync([codespace, entry.version], entry);
        return null;
      });
      if (stored === null) return { ok: true };
      return { ok: false, reason: 'conflict', stored, message: `the store is at version ${stored}, not ${entry.version - 1}` };
    } catch (error) {
      // MDB_MAP_FULL, ENOSPC, a closed environment: nothing of this transaction was written.
      return { ok: false, reason: 'unavailable', message: `file store: ${messageOf(error)}` };
    }
  }

  async saveSnapshot(codespace: string, text: string, version: number): Promise<void> {
    await this.#write(() => {
      const meta = this.#meta.get(codespace);
      if (!meta || version <= meta.snapshotVersion || version > meta.version) return;
      this.#snapshots.putSync(codespace, text);
      this.#meta.putSync(codespace, { ...meta, snapshotVersion: version, activeAtMs: Date.now() });
      this.#trimLog(codespace, keepLogFrom(version, this.#options.history));
    });
  }

  async readLog(codespace: string, version: number): Promise<LogEntry[] | null> {
    this.#root.resetReadTxn();
    const meta = this.#meta.get(codespace);
    if (!meta || meta.version <= version) return [];
    const entries = this.#entries(codespace, version + 1, meta.version);
    if (entries.length === 0 || entries[0].version !== version + 1) return null;
    return entries;
  }

  async restore(codespace: string, doc: StoredDoc): Promise<boolean> {
    return this.#write(() => {
      const meta = this.#meta.get(codespace);
      if (meta && meta.version >= doc.version) return false;
      this.#trimLog(codespace, Number.MAX_SAFE_INTEGER);
      for (const entry of doc.log) if (entry.version <= doc.version) this.#log.putSync([codespace, entry.version], entry);
      this.#snapshots.putSync(codespace, doc.text);
      this.#meta.putSync(codespace, { version: doc.version, snapshotVersion: doc.version, epoch: doc.epoch ?? meta?.epoch ?? newEpoch(), activeAtMs: Date.now() });
      return true;
    });
  }

  /** One process per DATA_DIR (data_dir.ts), one channel per codespace: nobody else to hear from. */
  async subscribe(_codespace: string, _listener: RemoteListener): Promise<void> {}

  unsubscribe(_codespace: string): void {}

  publishSelection(_codespace: string, _message: Record<string, unknown>): void {}

  async touch(codespace: string): Promise<void> {
    await this.#write(() => {
      const meta = this.#meta.get(codespace);
      if (meta) this.#meta.putSync(codespace, { ...meta, activeAtMs: Date.now() });
    });
  }

  /**
   * Deletes every codespace inactive for longer than its TTL and not open (`isOpen`, asked at
   * the moment of deletion, inside the write transaction). Returns how many went.
   */
  async expire(nowMs: number, isOpen: (codespace: string) => boolean): Promise<number> {
    this.#root.resetReadTxn();
    const candidates: string[] = [];
    for (const { key, value } of this.#meta.getRange()) {
      if (expiredAt(this.#options, key, value.activeAtMs, nowMs)) candidates.push(key);
    }
    if (candidates.length === 0) return 0;
    return this.#write(() => {
      let removed = 0;
      for (const codespace of candidates) {
        const meta = this.#meta.get(codespace);
        if (!meta || !expiredAt(this.#options, codespace, meta.activeAtMs, nowMs) || isOpen(codespace)) continue;
        this.#trimLog(codespace, Number.MAX_SAFE_INTEGER);
        this.#snapshots.removeSync(codespace);
        this.#meta.removeSync(codespace);
        removed++;
      }
      return removed;
    });
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

  /**
   * Runs `action` in the next write transaction: with every other write queued in this event
   * turn, one commit and one sync. Resolves once synced. A failed commit (ENOSPC, EIO,
   * MDB_MAP_FULL) rejects with lmdb-js's error, whose `commitError` is a second promise that
   * rejects too: handled here, or it would end the process as an unhandled rejection.
   */
  async #write<T>(action: () => T): Promise<T> {
    try {
      return await this.#root.transaction(action);
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

  /** Inside a write transaction: removes the log entries of `codespace` below version `keepFrom`. */
  #trimLog(codespace: string, keepFrom: number): void {
    for (const key of this.#log.getKeys({ start: [codespace, 0], end: [codespace, keepFrom] })) this.#log.removeSync(key);
  }
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
