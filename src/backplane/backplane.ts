/**
 * What a channel needs from its store and its peers on other instances. The memory backplane
 * keeps everything in this process; the Redis one (issue: Redis backplane) shares it.
 */
import type { LogEntry, StoredDoc } from '../doc/text_doc.ts';

export type CommitResult = { ok: true } | { ok: false; reason: 'conflict' | 'unavailable'; message: string };

export interface Backplane {
  /** The snapshot and the log after it (at most the history window). */
  load(codespace: string): Promise<StoredDoc>;
  /**
   * Appends `entry` if the stored version is `entry.version - 1`. Resolves once the entry is
   * durable, or with why not; never rejects.
   */
  commit(codespace: string, entry: LogEntry): Promise<CommitResult>;
  saveSnapshot(codespace: string, text: string, version: number): Promise<void>;
}
