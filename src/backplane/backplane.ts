/**
 * What a channel needs from its store and from its peers on other instances. The memory
 * backplane keeps everything in this process; the Redis one shares it between instances.
 * Every implementation passes test/backplane_contract.ts.
 */
import type { LogEntry, StoredDoc } from '../doc/text_doc.ts';

export type CommitResult =
  | { ok: true }
  /**
   * `stored`: the version the store is at, `epoch` its history (PROTOCOL.md §1): another epoch
   * than the channel's means the history it committed to is gone (a store restarted empty).
   */
  | { ok: false; reason: 'conflict'; stored: number; epoch: string; message: string }
  | { ok: false; reason: 'unavailable'; message: string };

/** What arrives from other instances of the same codespace. */
export type RemoteEvent =
  | { kind: 'entry'; epoch: string; entry: LogEntry }
  /** A create_selection relayed by another instance, already stamped with sender and version. */
  | { kind: 'selection'; message: Record<string, unknown> }
  /** The connection came back: whatever was published meanwhile is lost, read the log. */
  | { kind: 'reconnected' };

export type RemoteListener = (event: RemoteEvent) => void;

export interface Backplane {
  /** The snapshot with the log after it replayed, and the most recent entries (history window). */
  load(codespace: string): Promise<StoredDoc>;
  /**
   * Appends `entry` if the store holds history `epoch` at version `entry.version - 1`, and
   * publishes it to the other instances. Resolves once the entry is durable, or with why not;
   * never rejects.
   */
  commit(codespace: string, entry: LogEntry, epoch: string): Promise<CommitResult>;
  /**
   * Optional: appends `entries` (consecutive versions) as `commit` would, all or none, in one
   * write and one sync: a channel with edits queued commits them together (issue 15).
   */
  commitMany?(codespace: string, entries: LogEntry[], epoch: string): Promise<CommitResult>;
  /**
   * Stores `text` as of `version` of history `epoch` (ignored if older than the stored snapshot,
   * or if the store holds another history) and trims the log.
   */
  saveSnapshot(codespace: string, text: string, version: number, epoch: string): Promise<void>;
  /**
   * The store's epoch, and its committed entries after `version`, oldest first, up to the stored
   * version; `entries` is null when the log no longer reaches back that far (reload instead).
   * Entries of another epoch than the caller's belong to another history: never apply them.
   * Rejects when the store is unreachable.
   */
  readLog(codespace: string, version: number): Promise<{ epoch: string; entries: LogEntry[] | null }>;
  /**
   * Writes `doc` back when the store holds no committed version at all (it restarted empty, or
   * only a load made its epoch); false otherwise. It never overwrites versions committed after
   * the store came back (issue 11): a channel that finds another history brings its own
   * changes back on top of it instead.
   */
  restore(codespace: string, doc: StoredDoc): Promise<boolean>;
  /** Starts delivering other instances' events for `codespace`; resolves once subscribed. */
  subscribe(codespace: string, listener: RemoteListener): Promise<void>;
  unsubscribe(codespace: string): void;
  /** Relays a selection to the other instances (best effort, like the selection itself). */
  publishSelection(codespace: string, message: Record<string, unknown>): void;
  /** Keeps a codespace with connected clients from expiring. */
  touch(codespace: string): Promise<void>;
}
