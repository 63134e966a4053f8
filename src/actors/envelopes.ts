/**
 * Envelopes between threads: what the main thread (ChannelRef) and a Channel actor say to each
 * other over the channel's MessagePort, many to a postMessage, msgpack-encoded.
 */
import type { ClientMessage, Codec, Mode } from '../protocol/messages.ts';
import type { LogEntry, StoredDoc } from '../doc/text_doc.ts';

/** What a channel reports with each heartbeat answer: counts since its last report. */
export interface ChannelStats {
  /** Messages sent to clients, by operation (a broadcast counts once per recipient). */
  out: Record<string, number>;
  /** Error replies, by code. */
  errors: Record<string, number>;
  /** Commit durations in seconds (the most recent few thousand). */
  commitS: number[];
  /** The worker thread's event-loop lag, p99 over the last seconds, in seconds (0 in-process). */
  lagS: number;
}

/** The spawn id a thread link's host thread itself speaks as (heartbeats); channels count from 1. */
export const HOST_SPAWN = 0;

/**
 * Main thread → channel. The first envelopes reach a channel over its own port, the rest over
 * its thread's link; `switch`, the last on its own port, says where the link's begin.
 */
export type ChannelInbound =
  | { type: 'switch' }
  /** `author`: the dedup scope of its changes; `resume` with `epoch`: PROTOCOL.md §1. */
  | { type: 'join'; session: string; mode: Mode; codec: Codec; author: string; resume?: number; epoch?: string; resync?: boolean }
  | { type: 'leave'; session: string }
  | { type: 'client'; session: string; msg: ClientMessage }
  | { type: 'heartbeat'; seq: number }
  | { type: 'stop' }
  | { type: 'store_reply'; id: number; doc?: StoredDoc; error?: string };

/** Channel → main thread. */
export type ChannelOutbound =
  | { type: 'ready'; version: number; thread: number }
  /**
   * Bytes already encoded in the session's codec. `answer` marks the one reply (ack or error)
   * each forwarded insert_value gets, so main knows which edits a crash left unanswered.
   */
  | { type: 'to'; session: string; data: Uint8Array; answer?: true; version?: number }
  /** One broadcast, encoded once per codec in use; null where no recipient uses that codec. */
  /** `at`: when the change it carries reached the channel (ms, comparable across threads), for the fan-out latency. */
  | {
      type: 'broadcast';
      except: string | null;
      json: Uint8Array | null;
      msgpack: Uint8Array | null;
      at?: number;
      /**
       * Set on selections and presence: a recipient that is not keeping up may get only the
       * newest message of each key (PROTOCOL.md §3). Edits never carry it: they are never dropped.
       */
      coalesce?: string;
      /**
       * `version` (here and on `to`): the document's version once this message is out, set when it
       * changed since the channel last said it. Main stamps the selections it relays with it.
       */
      version?: number;
    }
  /**
   * The thread's answer to a heartbeat, as HOST_SPAWN: its thread id and loop lag, and the stats
   * of the channels that did something since the last one, by spawn (for /metrics).
   */
  | { type: 'thread_beat'; seq: number; thread: number; lagS: number; channels: [spawn: number, stats: ChannelStats][] }
  | { type: 'store_load'; id: number }
  | { type: 'store_append'; entry: LogEntry }
  | { type: 'store_snapshot'; text: string; version: number }
  | { type: 'stopped'; version: number }
  /** The channel cannot take this member now (its worker is short of memory): close it with 1013. */
  | { type: 'refuse_join'; session: string };

/**
 * What the pool hands a channel host when it spawns a channel. `port` is the channel's own;
 * everything the channel says goes over its thread's link (one per `supervisor`, offered on the
 * port of the first channel that needs it), tagged with `spawn`, unique within the supervisor.
 */
export interface SpawnTask {
  codespace: string;
  port: MessagePort;
  spawn: number;
  supervisor: string;
  settings: ChannelSettings;
  /**
   * One Int32 the host sets to 1 while this channel's code runs synchronously: when its thread
   * stops answering, main reads which channel was running (the one that hung) without asking it.
   */
  busy?: SharedArrayBuffer;
}

export interface ChannelSettings {
  history: number;
  /** PROTOCOL.md §6: bytes of changes kept for resume and rebase. */
  historyBytes: number;
  maxDocLength: number;
  snapshotIntervalMs: number;
  backplane: BackplaneSettings;
}

/**
 * Which store a channel host connects to: main's memory store (over the port), the local file
 * store under DATA_DIR (each thread opens it), or Redis.
 */
export type BackplaneSettings =
  | { kind: 'memory' }
  | { kind: 'file'; path: string; ttlS: number; tmpTtlS: number }
  | { kind: 'redis'; url: string; keyPrefix: string; ttlS: number; tmpTtlS: number; timeoutMs: number };
