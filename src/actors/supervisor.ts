/**
 * The Supervisor: the codespace → ChannelRef registry. It spawns a channel on first join (a burst
 * of joiners shares one spawn), stops it after the last member left and a grace period, restarts
 * it after a crash or a worker death, and drives heartbeats to channels from one timer.
 */
import type { MemoryBackplane } from '../backplane/memory_backplane.ts';
import { CloseCode, ProtocolError } from '../protocol/close_codes.ts';
import type { ClientMessage } from '../protocol/messages.ts';
import { HOST_SPAWN, type ChannelInbound, type ChannelOutbound, type ChannelSettings, type ChannelStats, type SpawnTask } from './envelopes.ts';
import { ChannelRef, wasRunning, type Member } from './channel_ref.ts';
import { ThreadLink } from './port_link.ts';
import type { JoinParams } from '../server/upgrade_target.ts';

/**
 * How a channel's task ended; `unavailable`: its document could not be loaded from the store;
 * `crashed`: its error's message and the top of its stack (a crash crosses threads as a value).
 */
export type ChannelEnd = 'stopped' | 'unavailable' | { crashed: string };

type EndKind = 'stopped' | 'crashed' | 'unavailable';

/** Where channels run: a worker pool, or this thread (embedding, WORKERS=0). */
export interface Placement {
  spawn(task: SpawnTask): Promise<ChannelEnd>;
  /** Ends the thread with this id (a hung worker); false where there is no such thread. */
  terminateThread(threadId: number): boolean;
  close(): Promise<void>;
}

/** How long a codespace that crashed or hung runs in quarantine. */
const QUARANTINE_MS = 10 * 60_000;
/** Most codespaces remembered as suspects; the oldest are forgotten first. */
const MAX_SUSPECTS = 10_000;

export interface SupervisorOptions {
  placement: Placement;
  /**
   * Where a codespace that crashed or hung before runs from then on: one bounded worker of its
   * own, so a repeat offender stalls only others like it (ARCHITECTURE.md). Made at first need.
   */
  quarantine?: () => Placement;
  store: MemoryBackplane;
  settings: ChannelSettings;
  channelGraceMs: number;
  /** Restarts allowed within `restartWindowMs` before the codespace's clients get 4500. */
  maxRestarts: number;
  restartWindowMs: number;
  /** How long a codespace that spent its budget is refused. */
  restartCooldownMs: number;
  heartbeatIntervalMs: number;
  /** A worker whose channel has not answered for this long is terminated. */
  heartbeatTimeoutMs: number;
  log: (event: string, fields: Record<string, unknown>) => void;
  /** Metrics hooks: a channel's report, a worker's loop lag (seconds), and one broadcast's fan-out time. */
  onChannelStats?: (thread: number, stats: ChannelStats, codespace: string) => void;
  onThreadLag?: (thread: number, lagS: number) => void;
  onFanOut?: (seconds: number) => void;
}

export class Supervisor {
  readonly #options: SupervisorOptions;
  readonly #channels = new Map<string, ChannelRef>();
  /** Channels told to stop; a new spawn of the same codespace waits for the old one's flush. */
  readonly #stopping = new Map<string, Promise<unknown>>();
  readonly #restartTimes = new Map<string, number[]>();
  /** Codespaces refused until the given time (ms since epoch) after failing repeatedly. */
  readonly #refusedUntil = new Map<string, number>();
  /** Threads already told to terminate, so a hung worker is terminated once. */
  readonly #terminated = new Set<number>();
  /** Names this supervisor's thread links to the hosts (several may share a thread in-process). */
  readonly #id = crypto.randomUUID();
  /** Spawn id → the ref it runs for: how envelopes on a thread link find their channel. */
  readonly #spawns = new Map<number, ChannelRef>();
  #nextSpawn = 1;
  /** One per thread hosting this supervisor's channels: its thread id (once known) and when it last answered. */
  readonly #threadLinks = new Map<ThreadLink<ChannelOutbound, ChannelInbound>, { thread: number; answeredAt: number }>();
  #heartbeatSeq = 0;
  #lastHeartbeat = 0;
  #lastTick = 0;
  /** Codespaces that crashed or hung, until when they run in quarantine. */
  readonly #suspects = new Map<string, number>();
  #quarantine: Placement | null = null;
  #closed = false;
  /** Restarts, hung workers terminated and refusals, for the log and tests. */
  readonly counts = { restarts: 0, hungWorkers: 0, refusals: 0 };

  constructor(options: SupervisorOptions) {
    this.#options = options;
  }

  get channelCount(): number {
    return this.#channels.size;
  }

  channels(): IterableIterator<ChannelRef> {
    return this.#channels.values();
  }

  /** Thread links open: one per worker thread hosting this supervisor's channels. */
  get threadLinkCount(): number {
    return this.#threadLinks.size;
  }

  channel(codespace: string): ChannelRef | undefined {
    return this.#channels.get(codespace);
  }

  /** Throws ProtocolError 4500 while the codespace cools down after failing repeatedly. */
  join(member: Member, codespace: string, params: JoinParams): ChannelRef {
    const until = this.#refusedUntil.get(codespace);
    if (until !== undefined) {
      if (Date.now() < until) {
        this.counts.refusals++;
        this.#options.log('channel_refused', { codespace, retryInMs: until - Date.now() });
        throw new ProtocolError(CloseCode.channelFailed, 'codespace cooling down after repeated failures');
      }
      this.#refusedUntil.delete(codespace);
    }
    let ref = this.#channels.get(codespace);
    if (!ref || ref.state === 'stopping' || ref.state === 'stopped') ref = this.#spawn(codespace);
    ref.join(member, params);
    return ref;
  }

  leave(member: Member, ref: ChannelRef): void {
    ref.leave(member, Date.now());
    if (ref.size === 0 && this.#options.channelGraceMs === 0) this.#stopChannel(ref);
  }

  forward(member: Member, ref: ChannelRef, msg: ClientMessage): void {
    ref.forward(member, msg);
  }

  /**
   * Called from one timer: heartbeats, terminating workers whose channels stopped answering
   * them, and stopping channels empty for the grace period.
   */
  tick(now: number): void {
    // A tick that comes late means this thread was held up (a busy machine, a long GC): the
    // channels' silence is then ours, not theirs, so it is not counted against them.
    const late = this.#lastTick > 0 && now - this.#lastTick > Math.max(200, this.#options.heartbeatTimeoutMs / 2);
    this.#lastTick = now;
    for (const ref of this.#channels.values()) {
      if (ref.emptySince !== null && now - ref.emptySince >= this.#options.channelGraceMs) this.#stopChannel(ref);
      // Selections main relayed itself (local stores), counted as the actor counts what it sends.
      const relayed = ref.takeRelayed();
      if (relayed > 0) this.#options.onChannelStats?.(0, { out: { create_selection: relayed }, errors: {}, commitS: [], lagS: 0 }, ref.codespace);
    }
    const beat = now - this.#lastHeartbeat >= this.#options.heartbeatIntervalMs;
    if (beat) this.#lastHeartbeat = now;
    const seq = beat ? ++this.#heartbeatSeq : this.#heartbeatSeq;
    // One heartbeat per thread, not per channel: it asks whether the thread is alive, and the
    // answer carries the stats of its channels that did something (issue 15: idle channels cost
    // nothing here).
    for (const [link, info] of this.#threadLinks) {
      if (late) info.answeredAt = Math.max(info.answeredAt, now - this.#options.heartbeatIntervalMs);
      if (info.thread > 0 && now - info.answeredAt > this.#options.heartbeatTimeoutMs && !this.#terminated.has(info.thread)) {
        this.#terminateHung(info.thread, now - info.answeredAt, now);
      } else if (beat) {
        link.send(HOST_SPAWN, { type: 'heartbeat', seq });
      }
    }
  }

  /** The thread's answer: it is alive; its channels' stats go to /metrics. */
  #threadBeat(info: { thread: number; answeredAt: number }, envelope: ChannelOutbound): void {
    if (envelope.type !== 'thread_beat') return;
    info.answeredAt = Date.now();
    info.thread = envelope.thread;
    this.#options.onThreadLag?.(envelope.thread, envelope.lagS);
    for (const [spawn, stats] of envelope.channels) {
      const ref = this.#spawns.get(spawn);
      if (ref) this.#options.onChannelStats?.(envelope.thread, { ...stats, lagS: envelope.lagS }, ref.codespace);
    }
  }

  /** A channel spins: its whole worker goes, piscina replaces it, its channels restart elsewhere. */
  #terminateHung(thread: number, silentMs: number, now: number): void {
    const onThread = [...this.#channels.values()].filter((ref) => ref.thread === thread);
    const culprits = onThread.filter(wasRunning).map((ref) => ref.codespace);
    for (const codespace of culprits) this.#suspect(codespace, now);
    this.#options.log('worker_hung', { thread, channels: onThread.length, hung: culprits, silentMs });
    const terminated = this.#options.placement.terminateThread(thread) || (this.#quarantine?.terminateThread(thread) ?? false);
    if (!terminated) return;
    this.#terminated.add(thread);
    this.counts.hungWorkers++;
    // Thread ids are never reused within a process; forget it once it is surely gone.
    setTimeout(() => this.#terminated.delete(thread), 60_000).unref?.();
  }

  /** Stops every channel (each flushes its snapshot) and waits for them. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const ref of [...this.#channels.values()]) this.#stopChannel(ref);
    await Promise.allSettled([...this.#stopping.values()]);
    for (const link of this.#threadLinks.keys()) link.close();
    this.#threadLinks.clear();
    await Promise.all([this.#options.placement.close(), this.#quarantine?.close()]);
  }

  #spawn(codespace: string): ChannelRef {
    const { port1, port2 } = new MessageChannel();
    const ref = new ChannelRef(codespace, this.#nextSpawn++, port1, this.#options.store, {
      channelReady: () => {},
      storeConflict: (conflicted, message) => this.#options.log('store_conflict', { codespace: conflicted.codespace, message }),
      fannedOut: (seconds) => this.#options.onFanOut?.(seconds),
      threadLinkOffered: (port) => this.#takeThreadLink(port),
    }, Date.now(), this.#options.settings.backplane.kind !== 'redis');
    this.#channels.set(codespace, ref);
    this.#spawns.set(ref.spawn, ref);
    this.#run(ref, port2);
    return ref;
  }

  #takeThreadLink(port: MessagePort): void {
    // The thread's id comes with its first channel's `ready` (or its first beat); until then it
    // is not watched for hangs (a thread still starting answers nothing yet).
    const info = { thread: -1, answeredAt: Date.now() };
    const link: ThreadLink<ChannelOutbound, ChannelInbound> = new ThreadLink<ChannelOutbound, ChannelInbound>(
      port,
      (spawn, envelope) => {
        if (spawn === HOST_SPAWN) return this.#threadBeat(info, envelope);
        if (envelope.type === 'ready' && info.thread < 0) {
          info.thread = envelope.thread;
          info.answeredAt = Date.now();
        }
        this.#spawns.get(spawn)?.receiveVia(link, envelope);
      },
      () => this.#threadLinks.delete(link),
    );
    this.#threadLinks.set(link, info);
  }

  /** The ref will hear nothing more from its actor: it leaves the registry and the spawn routes. */
  #detach(ref: ChannelRef): void {
    ref.detach();
    this.#spawns.delete(ref.spawn);
    if (this.#channels.get(ref.codespace) === ref) this.#channels.delete(ref.codespace);
  }

  #run(ref: ChannelRef, port: MessagePort): void {
    const busy = typeof SharedArrayBuffer === 'function' ? new SharedArrayBuffer(4) : undefined;
    ref.busy = busy ? new Int32Array(busy) : null;
    const task: SpawnTask = { codespace: ref.codespace, port, spawn: ref.spawn, supervisor: this.#id, settings: this.#options.settings };
    if (busy) task.busy = busy;
    const placement = this.#placementFor(ref);
    const previous = this.#stopping.get(ref.codespace);
    const started = previous ? previous.then(() => placement.spawn(task)) : placement.spawn(task);
    started.then(
      (end) => {
        if (typeof end !== 'object') return this.#channelEnded(ref, end, end);
        this.#suspect(ref.codespace, Date.now()); // its own code threw: it is the one to isolate
        this.#channelEnded(ref, 'crashed', end.crashed);
      },
      (error: unknown) => this.#channelEnded(ref, 'crashed', `worker died: ${error instanceof Error ? error.message : String(error)}`),
    );
  }

  /** The quarantine for a codespace that crashed or hung lately; the pool for everyone else. */
  #placementFor(ref: ChannelRef): Placement {
    const until = this.#suspects.get(ref.codespace);
    ref.quarantined = until !== undefined && until > Date.now() && this.#options.quarantine !== undefined;
    if (!ref.quarantined) return this.#options.placement;
    this.#quarantine ??= this.#options.quarantine!();
    return this.#quarantine;
  }

  #suspect(codespace: string, now: number): void {
    this.#suspects.delete(codespace);
    this.#suspects.set(codespace, now + QUARANTINE_MS);
    if (this.#suspects.size > MAX_SUSPECTS) this.#suspects.delete(this.#suspects.keys().next().value!);
  }

  #stopChannel(ref: ChannelRef): void {
    if (ref.state === 'stopping' || ref.state === 'stopped') return;
    ref.stop();
    if (this.#channels.get(ref.codespace) === ref) this.#channels.delete(ref.codespace);
    const stopped = new Promise<void>((resolve) => ref.onEnded(resolve));
    this.#stopping.set(ref.codespace, stopped);
    void stopped.then(() => {
      if (this.#stopping.get(ref.codespace) === stopped) this.#stopping.delete(ref.codespace);
    });
  }

  #channelEnded(ref: ChannelRef, end: EndKind, why: string): void {
    const wasStopping = ref.state === 'stopping';
    ref.markEnded();
    if (end === 'stopped' || wasStopping || this.#closed) {
      this.#restartTimes.delete(ref.codespace);
      this.#detach(ref);
      return;
    }
    if (end === 'unavailable') {
      // Not the channel's fault and not counted against its budget: its clients retry later.
      this.#options.log('channel_unavailable', { codespace: ref.codespace, members: ref.size });
      ref.closeMembers(CloseCode.storeUnavailable);
      this.#detach(ref);
      return;
    }
    this.#options.log('channel_crashed', { codespace: ref.codespace, why, members: ref.size });
    if (ref.size === 0 || this.#channels.get(ref.codespace) !== ref) {
      this.#detach(ref);
      return;
    }
    if (!this.#withinRestartBudget(ref.codespace)) {
      this.#options.log('channel_failed', { codespace: ref.codespace, why, cooldownMs: this.#options.restartCooldownMs });
      this.#refusedUntil.set(ref.codespace, Date.now() + this.#options.restartCooldownMs);
      this.#restartTimes.delete(ref.codespace);
      ref.closeMembers(CloseCode.channelFailed);
      this.#detach(ref);
      return;
    }
    ref.restarts++;
    this.counts.restarts++;
    // Exponential backoff by the restarts in the window: 0, 50, 100, 200 ... 2000 ms.
    const recent = this.#restartTimes.get(ref.codespace)?.length ?? 1;
    const delayMs = recent <= 1 ? 0 : Math.min(2_000, 50 * 2 ** (recent - 2));
    this.#options.log('channel_restarted', { codespace: ref.codespace, restarts: ref.restarts, members: ref.size, delayMs, why });
    const { port1, port2 } = new MessageChannel();
    // Members get `resync` once the new actor has loaded; what they send meanwhile waits in the port.
    this.#spawns.delete(ref.spawn);
    ref.restartOn(port1, this.#nextSpawn++);
    this.#spawns.set(ref.spawn, ref);
    if (delayMs === 0) this.#run(ref, port2);
    else setTimeout(() => (this.#closed ? port2.close() : this.#run(ref, port2)), delayMs);
  }

  #withinRestartBudget(codespace: string): boolean {
    const now = Date.now();
    const recent = (this.#restartTimes.get(codespace) ?? []).filter((t) => now - t < this.#options.restartWindowMs);
    recent.push(now);
    this.#restartTimes.set(codespace, recent);
    return recent.length <= this.#options.maxRestarts;
  }
}
