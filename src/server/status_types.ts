/**
 * What the live status page receives once a second (server-sent events on `/status/events`).
 * Shared by the server (status_feed.ts) and the page (src/pages/status/): types only.
 *
 * No token and no codespace id ever appears: a channel is named by `id`, the first 8 hex digits
 * of the SHA-256 of its codespace id (a `tmp-` id is the key to its codespace), which the demo
 * page also shows for its own codespace so that a person can find it here.
 */

export interface StatusChannel {
  id: string;
  /** `tmp`: a temporary codespace; `named`: one resolved by the API or a JWT. */
  kind: 'tmp' | 'named';
  thread: number;
  state: 'starting' | 'ready' | 'stopping' | 'stopped';
  members: number;
  /** Commits per second over the last few seconds. */
  editsPerS: number;
  commitP50Ms: number | null;
  commitP99Ms: number | null;
  restarts: number;
}

export interface StatusWorker {
  /** Thread id; 0: channels run in-process on the main thread; -1: channels (re)starting. */
  thread: number;
  lagMs: number | null;
  channels: StatusChannel[];
}

export interface StatusSample {
  /** Milliseconds since the epoch. */
  t: number;
  uptimeS: number;
  connections: number;
  channels: number;
  messagesInPerS: number;
  messagesOutPerS: number;
  commitP50Ms: number | null;
  commitP99Ms: number | null;
  fanOutP50Ms: number | null;
  fanOutP99Ms: number | null;
  mainLagMs: number | null;
  restarts: number;
  workerReplacements: number;
  hungWorkers: number;
  backplane: { kind: 'memory' | 'file' | 'redis'; state: 'connecting' | 'up' | 'down' };
  workers: StatusWorker[];
}

/** The first event of a subscription: settings and the samples taken so far (workers left out). */
export interface StatusHello {
  runtime: string;
  /** Which process answered: with INSTANCES > 1 each instance has its own page, and shows its own channels. */
  pid: number;
  faultInjection: boolean;
  sampleIntervalMs: number;
  history: StatusSample[];
}

export type FaultButtonKind = 'throw' | 'hang';
