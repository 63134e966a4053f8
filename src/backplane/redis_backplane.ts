/**
 * The Redis backplane: durable change log, snapshots, expiry and delivery between instances.
 * One per worker thread (ARCHITECTURE.md): one command connection shared by every channel on the
 * thread, and one subscriber connection. Commands are not queued while Redis is away: an edit
 * then fails fast with `unavailable` instead of waiting without bound.
 */
import { Redis } from 'ioredis';
import type { LogEntry, StoredDoc } from '../doc/text_doc.ts';
import { changeSetOf, newEpoch, textOf, LINE_SEPARATOR } from '../doc/text_doc.ts';
import { encodeEntryPayload, encodeSelectionPayload, isOwnEcho, parsePublished, parseStoredEntry } from './redis_payloads.ts';
import { normalizeLineBreaks } from '../doc/line_breaks.ts';
import type { Backplane, CommitResult, RemoteListener } from './backplane.ts';
import { COMMIT_LUA, LOAD_LUA, READ_LOG_LUA, RESTORE_LUA, SNAPSHOT_LUA, TOUCH_LUA } from './redis_scripts.ts';

export interface RedisBackplaneOptions {
  url: string;
  keyPrefix: string;
  /** Seconds after the last activity; 0 keeps the keys forever. */
  ttlS: number;
  tmpTtlS: number;
  history: number;
  /** Longest wait for one command (and for the connection at first use). */
  timeoutMs: number;
}

type StreamEntry = [id: string, fields: string[]];

interface ScriptCommands {
  /** `each`: for every entry, its JSON and the message published for it. */
  csCommit(hash: string, log: string, expected: number, ttl: number, channel: string, epoch: string, ...each: string[]): Promise<[number, number, string?]>;
  csLoad(hash: string, log: string, history: number, epoch: string, ttl: number): Promise<[string, number, number, StreamEntry[], string]>;
  csReadLog(hash: string, log: string, after: number): Promise<[number, StreamEntry[], string]>;
  csSnapshot(hash: string, log: string, text: string, version: number, history: number, ttl: number, epoch: string): Promise<number>;
  csRestore(hash: string, log: string, text: string, version: number, ttl: number, epoch: string, ...entries: string[]): Promise<number>;
  csTouch(hash: string, log: string, ttl: number): Promise<number>;
}

/** Reconnect after 50 ms, doubling up to 2 s: Redis coming back is noticed within 2 s. */
function retryStrategy(attempt: number): number {
  return Math.min(50 * 2 ** Math.min(attempt, 6), 2_000);
}

export class RedisBackplane implements Backplane {
  readonly #options: RedisBackplaneOptions;
  readonly #command: Redis & ScriptCommands;
  readonly #subscriber: Redis;
  /** Pub/sub channel → listener of the channel actor hosted here. */
  readonly #listeners = new Map<string, RemoteListener>();
  /** Tags what this instance publishes, so the subscriber drops its echo unread. */
  readonly #origin = `${process.pid}.${Math.random().toString(36).slice(2, 10)}`;
  #subscriberWasReady = false;
  /** Settles at the command connection's first `ready`; until then calls wait for it. */
  readonly #firstReady: Promise<void>;
  #wasReady = false;

  constructor(options: RedisBackplaneOptions) {
    this.#options = options;
    this.#command = new Redis(options.url, {
      enableOfflineQueue: false,
      commandTimeout: options.timeoutMs,
      maxRetriesPerRequest: 1,
      retryStrategy,
      connectionName: 'codespace-command',
    }) as Redis & ScriptCommands;
    this.#command.on('error', function commandOnError() {
      // Reconnects by itself; the state is read from `status`, and each call reports its failure.
    });
    this.#defineScripts();
    this.#firstReady = new Promise((resolve) => this.#command.once('ready', () => {
      this.#wasReady = true;
      resolve();
    }));
    this.#subscriber = new Redis(options.url, {
      autoResubscribe: true,
      maxRetriesPerRequest: null,
      retryStrategy,
      connectionName: 'codespace-subscriber',
    });
    this.#subscriber.on('error', function subscriberOnError() {});
    this.#subscriber.on('ready', this.#subscriberOnReady);
    this.#subscriber.on('message', this.#subscriberOnMessage);
  }

  get connected(): boolean {
    return this.#command.status === 'ready' && this.#subscriber.status === 'ready';
  }

  async load(codespace: string): Promise<StoredDoc> {
    await this.#commandReady();
    const [code, snapshot, version, raw, epoch] = await this.#command.csLoad(this.#hash(codespace), this.#log(codespace), this.#options.history, newEpoch(), this.#ttlOf(codespace));
    const entries = entriesOf(raw);
    // The SharePython API writes `code` as its users saved it, "\r\n" included (PROTOCOL.md §2).
    let text = textOf(normalizeLineBreaks(code));
    let at = Number(snapshot);
    for (const entry of entries) {
      if (entry.version <= at) continue;
      if (entry.version !== at + 1) throw new Error(`log of ${codespace} jumps from ${at} to ${entry.version}`);
      text = changeSetOf(entry.changes, entry.docLength).apply(text);
      at = entry.version;
    }
    if (at < Number(version)) throw new Error(`log of ${codespace} ends at ${at}, version is ${version}`);
    return {
      text: text.sliceString(0, text.length, LINE_SEPARATOR),
      version: at,
      log: entries.filter((entry) => entry.version > at - this.#options.history),
      epoch,
    };
  }

  commit(codespace: string, entry: LogEntry, epoch: string): Promise<CommitResult> {
    return this.commitMany(codespace, [entry], epoch);
  }

  async commitMany(codespace: string, entries: LogEntry[], epoch: string): Promise<CommitResult> {
    const base = entries[0].version - 1;
    try {
      await this.#commandReady();
      const each: string[] = [];
      for (const entry of entries) each.push(JSON.stringify(entry), encodeEntryPayload({ origin: this.#origin, epoch, entry }));
      const [ok, stored, storedEpoch = ''] = await this.#command.csCommit(this.#hash(codespace), this.#log(codespace), base, this.#ttlOf(codespace), this.#hash(codespace), epoch, ...each);
      if (ok === 1) return { ok: true };
      const message = `the store is at version ${stored} of ${storedEpoch || 'no history'}, not ${base} of ${epoch}`;
      return { ok: false, reason: 'conflict', stored, epoch: storedEpoch, message };
    } catch (error) {
      return { ok: false, reason: 'unavailable', message: `redis: ${messageOf(error)}` };
    }
  }

  async saveSnapshot(codespace: string, text: string, version: number, epoch: string): Promise<void> {
    await this.#commandReady();
    await this.#command.csSnapshot(this.#hash(codespace), this.#log(codespace), text, version, this.#options.history, this.#ttlOf(codespace), epoch);
  }

  async readLog(codespace: string, version: number): Promise<{ epoch: string; entries: LogEntry[] | null }> {
    await this.#commandReady();
    const [stored, raw, epoch] = await this.#command.csReadLog(this.#hash(codespace), this.#log(codespace), version);
    const entries = entriesOf(raw);
    if (Number(stored) <= version) return { epoch, entries: [] };
    if (entries.length === 0 || entries[0].version !== version + 1) return { epoch, entries: null };
    return { epoch, entries };
  }

  async restore(codespace: string, doc: StoredDoc): Promise<boolean> {
    await this.#commandReady();
    const log = doc.log.filter((entry) => entry.version <= doc.version).map((entry) => JSON.stringify(entry));
    const written = await this.#command.csRestore(this.#hash(codespace), this.#log(codespace), doc.text, doc.version, this.#ttlOf(codespace), doc.epoch, ...log);
    return written === 1;
  }

  async subscribe(codespace: string, listener: RemoteListener): Promise<void> {
    const channel = this.#hash(codespace);
    this.#listeners.set(channel, listener);
    await withTimeout(this.#subscriber.subscribe(channel), this.#options.timeoutMs, 'subscribe');
  }

  unsubscribe(codespace: string): void {
    const channel = this.#hash(codespace);
    if (!this.#listeners.delete(channel)) return;
    this.#subscriber.unsubscribe(channel).catch(function unsubscribeFailed() {
      // The connection is gone, and with it the subscription.
    });
  }

  publishSelection(codespace: string, message: Record<string, unknown>): void {
    if (this.#command.status !== 'ready') return;
    this.#command.publish(this.#hash(codespace), encodeSelectionPayload({ origin: this.#origin, message })).catch(function selectionLost() {
      // Selections are best effort: the next one supersedes it.
    });
  }

  async touch(codespace: string): Promise<void> {
    await this.#commandReady();
    await this.#command.csTouch(this.#hash(codespace), this.#log(codespace), this.#ttlOf(codespace));
  }

  async close(): Promise<void> {
    this.#listeners.clear();
    this.#command.disconnect();
    this.#subscriber.disconnect();
  }

  #hash(codespace: string): string {
    return this.#options.keyPrefix + codespace;
  }

  #log(codespace: string): string {
    return this.#options.keyPrefix + codespace + ':log';
  }

  #ttlOf(codespace: string): number {
    return codespace.startsWith('tmp-') ? this.#options.tmpTtlS : this.#options.ttlS;
  }

  #defineScripts(): void {
    this.#command.defineCommand('csCommit', { numberOfKeys: 2, lua: COMMIT_LUA });
    this.#command.defineCommand('csLoad', { numberOfKeys: 2, lua: LOAD_LUA });
    this.#command.defineCommand('csReadLog', { numberOfKeys: 2, lua: READ_LOG_LUA });
    this.#command.defineCommand('csSnapshot', { numberOfKeys: 2, lua: SNAPSHOT_LUA });
    this.#command.defineCommand('csRestore', { numberOfKeys: 2, lua: RESTORE_LUA });
    this.#command.defineCommand('csTouch', { numberOfKeys: 2, lua: TOUCH_LUA });
  }

  /**
   * Commands fail at once while Redis is away (no offline queue); only the very first ones,
   * issued while the connection is still being made, wait for it (bounded).
   */
  async #commandReady(): Promise<void> {
    if (!this.#wasReady) await withTimeout(this.#firstReady, this.#options.timeoutMs, 'connect');
  }

  readonly #subscriberOnReady = (): void => {
    if (!this.#subscriberWasReady) {
      this.#subscriberWasReady = true;
      return;
    }
    for (const listener of this.#listeners.values()) listener({ kind: 'reconnected' });
  };

  readonly #subscriberOnMessage = (channel: string, message: string): void => {
    const listener = this.#listeners.get(channel);
    if (!listener || isOwnEcho(message, this.#origin)) return;
    const published = parsePublished(message);
    if (published?.kind === 'entry') listener({ kind: 'entry', epoch: published.payload.epoch, entry: published.payload.entry });
    else if (published?.kind === 'selection') listener({ kind: 'selection', message: published.payload.message });
  };
}

/** The stream's entries that fit, in order; one that does not fit ends the run there (a gap the reader sees). */
function entriesOf(raw: StreamEntry[]): LogEntry[] {
  const entries: LogEntry[] = [];
  for (const [, fields] of raw) {
    const at = fields.indexOf('e');
    const entry = parseStoredEntry(at >= 0 ? fields[at + 1] : undefined);
    if (!entry) break;
    entries.push(entry);
  }
  return entries;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`redis ${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
