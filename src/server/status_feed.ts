/**
 * The live status page's feed: one sample a second, pushed as server-sent events to every open
 * status page, with the last few minutes replayed to a page that opens. It samples only while
 * a page is open (and turns the metrics' live window on for that long).
 */
import { createHash } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { LAG_RESOLUTION_MS } from '../observability/loop_lag.ts';
import type { ChannelRef } from '../actors/channel_ref.ts';
import type { LiveTake } from '../observability/live_window.ts';
import { ChannelPool } from '../workers/pool.ts';
import type { Hub } from './hub.ts';
import type { FaultButtonKind, StatusChannel, StatusHello, StatusSample, StatusWorker } from './status_types.ts';

const SAMPLE_INTERVAL_MS = 1_000;
/** Samples replayed to a page that opens: five minutes. */
const HISTORY_SAMPLES = 300;
/** Rates and percentiles are taken over this many of the last samples (channels report once a heartbeat). */
const WINDOW_SAMPLES = 5;
/** A page whose connection holds this much unsent is not reading: it is dropped. */
const MAX_UNSENT_BYTES = 1 << 20;
/** Open status pages at once; more are answered 503 (each costs a socket and a JSON write a second). */
export const MAX_SUBSCRIBERS = 64;

function percentileMs(sortedS: readonly number[], p: number): number | null {
  if (sortedS.length === 0) return null;
  const index = Math.min(sortedS.length - 1, Math.max(0, Math.ceil((p / 100) * sortedS.length) - 1));
  return Math.round(sortedS[index] * 1e6) / 1e3;
}

function sorted(values: number[]): number[] {
  return Float64Array.from(values).sort() as unknown as number[];
}

/** The short public name of a codespace: 8 hex digits of the SHA-256 of its id. */
export function statusIdOf(codespace: string): string {
  return createHash('sha256').update(codespace).digest('hex').slice(0, 8);
}

function runtimeName(): string {
  const runtimes = globalThis as { Deno?: { version: { deno: string } }; Bun?: { version: string } };
  if (runtimes.Deno) return `deno ${runtimes.Deno.version.deno}`;
  if (runtimes.Bun) return `bun ${runtimes.Bun.version}`;
  return `node ${process.versions.node}`;
}

interface Counters {
  t: number;
  messagesIn: number;
  messagesOut: number;
}

export class StatusFeed {
  readonly #hub: Hub;
  readonly #subscribers = new Set<ServerResponse>();
  readonly #history: StatusSample[] = [];
  /** The last few seconds of live samples and counters, for rates and percentiles. */
  readonly #window: { take: LiveTake; counters: Counters }[] = [];
  readonly #ids = new Map<string, string>();
  readonly #startedAt = Date.now();
  #timer: ReturnType<typeof setInterval> | null = null;
  #mainLag: IntervalHistogram | null = null;
  #sampling = false;

  constructor(hub: Hub) {
    this.#hub = hub;
  }

  get subscribers(): number {
    return this.#subscribers.size;
  }

  /** Turns `response` into an event stream: the hello with history, then a sample a second. */
  subscribe(response: ServerResponse): void {
    if (this.#subscribers.size >= MAX_SUBSCRIBERS) {
      response.writeHead(503, { 'content-type': 'text/plain; charset=utf-8', 'retry-after': '10' }).end('too many status pages open\n');
      return;
    }
    response.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
      connection: 'keep-alive',
    });
    const hello: StatusHello = { runtime: runtimeName(), pid: process.pid, faultInjection: this.#hub.config.faultInjection, sampleIntervalMs: SAMPLE_INTERVAL_MS, history: this.#history.map((sample) => ({ ...sample, workers: [] })) };
    response.write(`retry: 2000\nevent: hello\ndata: ${JSON.stringify(hello)}\n\n`);
    if (this.#history.length > 0) response.write(`data: ${JSON.stringify(this.#history[this.#history.length - 1])}\n\n`);
    this.#subscribers.add(response);
    response.on('close', () => this.#unsubscribe(response));
    if (!this.#timer) this.#start();
  }

  /**
   * FAULT_INJECTION only: makes the channel named `id` throw or hang, as a client's `__fault`
   * would. False when no live channel has that id (or more than one: never guess).
   */
  injectFault(id: string, kind: FaultButtonKind): boolean {
    const matches = [...this.#hub.supervisor.channels()].filter((ref) => ref.state === 'ready' && this.#idOf(ref.codespace) === id);
    if (matches.length !== 1) return false;
    const ref = matches[0];
    this.#hub.log('fault_injected', { codespace: ref.codespace, kind, from: 'status page' });
    // The channel acts on `__fault` from any session; this one stands for the status page.
    ref.forward({ id: 'status-page', codec: 'json', mode: 'view_only', author: 'status-page', deliver: () => {}, closeWith: () => {} }, { operation: '__fault', kind });
    return true;
  }

  #unsubscribe(response: ServerResponse): void {
    this.#subscribers.delete(response);
    if (this.#subscribers.size === 0) this.#stop();
  }

  #start(): void {
    this.#hub.metrics.live.enabled = true;
    this.#mainLag = monitorEventLoopDelay({ resolution: LAG_RESOLUTION_MS });
    this.#mainLag.enable();
    this.#timer = setInterval(this.#sampleOnTick, SAMPLE_INTERVAL_MS);
    this.#timer.unref?.();
    this.#sampleOnTick();
  }

  #stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    this.#mainLag?.disable();
    this.#mainLag = null;
    this.#hub.metrics.live.enabled = false;
    this.#window.length = 0;
  }

  readonly #sampleOnTick = (): void => {
    if (this.#sampling) return;
    this.#sampling = true;
    this.#sample().then(
      (sample) => {
        this.#sampling = false;
        this.#publish(sample);
      },
      (error: unknown) => {
        this.#sampling = false;
        this.#hub.log('status_sample_failed', { error: String(error) });
      },
    );
  };

  #publish(sample: StatusSample): void {
    this.#history.push(sample);
    if (this.#history.length > HISTORY_SAMPLES) this.#history.shift();
    const frame = `data: ${JSON.stringify(sample)}\n\n`;
    for (const response of this.#subscribers) {
      if (response.writableLength > MAX_UNSENT_BYTES) response.destroy();
      else response.write(frame);
    }
  }

  async #counters(): Promise<Counters> {
    const { metrics } = this.#hub;
    const sum = async (counter: typeof metrics.messagesIn): Promise<number> => (await counter.get()).values.reduce((total, value) => total + value.value, 0);
    return { t: Date.now(), messagesIn: await sum(metrics.messagesIn), messagesOut: await sum(metrics.messagesOut) };
  }

  async #sample(): Promise<StatusSample> {
    const hub = this.#hub;
    const threadIds = hub.placement instanceof ChannelPool ? hub.placement.threadIds : [0];
    const take = hub.metrics.live.take(new Set(threadIds));
    const counters = await this.#counters();
    this.#window.push({ take, counters });
    if (this.#window.length > WINDOW_SAMPLES) this.#window.shift();
    const first = this.#window[0].counters;
    const spanS = Math.max(1, (counters.t - first.t) / 1000);
    const windowSpanS = Math.max(1, this.#window.length * (SAMPLE_INTERVAL_MS / 1000));
    const commitS = sorted(this.#window.flatMap((entry) => entry.take.commitS));
    const fanOutS = sorted(this.#window.flatMap((entry) => entry.take.fanOutS));
    const mainLagMs = this.#mainLag ? Math.round(this.#mainLag.percentile(99) / 1e4) / 100 : null;
    this.#mainLag?.reset();
    const replacements = (await hub.metrics.workerReplacements.get()).values[0]?.value ?? 0;
    return {
      t: counters.t,
      uptimeS: Math.round((Date.now() - this.#startedAt) / 1000),
      connections: hub.connectionCount,
      channels: hub.supervisor.channelCount,
      messagesInPerS: this.#window.length > 1 ? Math.round((counters.messagesIn - first.messagesIn) / spanS) : 0,
      messagesOutPerS: this.#window.length > 1 ? Math.round((counters.messagesOut - first.messagesOut) / spanS) : 0,
      commitP50Ms: percentileMs(commitS, 50),
      commitP99Ms: percentileMs(commitS, 99),
      fanOutP50Ms: percentileMs(fanOutS, 50),
      fanOutP99Ms: percentileMs(fanOutS, 99),
      mainLagMs: Number.isFinite(mainLagMs) ? mainLagMs : null,
      restarts: hub.supervisor.counts.restarts,
      workerReplacements: replacements,
      hungWorkers: hub.supervisor.counts.hungWorkers,
      backplane: { kind: hub.backplaneName, state: hub.redisHealth ? hub.redisHealth.state : 'up' },
      workers: this.#workers(threadIds, take, windowSpanS),
    };
  }

  #workers(threadIds: number[], take: LiveTake, windowSpanS: number): StatusWorker[] {
    const byThread = new Map<number, StatusWorker>();
    for (const thread of threadIds) byThread.set(thread, { thread, lagMs: null, channels: [] });
    for (const [thread, lagS] of take.workerLagS) {
      const worker = byThread.get(thread);
      if (worker) worker.lagMs = Math.round(lagS * 1e5) / 100;
    }
    for (const ref of this.#hub.supervisor.channels()) {
      let worker = byThread.get(ref.thread);
      if (!worker) byThread.set(ref.thread, (worker = { thread: ref.thread, lagMs: null, channels: [] }));
      worker.channels.push(this.#channelOf(ref, windowSpanS));
    }
    for (const worker of byThread.values()) worker.channels.sort((a, b) => b.members - a.members || a.id.localeCompare(b.id));
    return [...byThread.values()].sort((a, b) => a.thread - b.thread);
  }

  #channelOf(ref: ChannelRef, windowSpanS: number): StatusChannel {
    let commits = 0;
    const samples: number[] = [];
    for (const entry of this.#window) {
      const activity = entry.take.codespaces.get(ref.codespace);
      if (!activity) continue;
      commits += activity.commits;
      samples.push(...activity.commitS);
    }
    const commitS = sorted(samples);
    return {
      id: this.#idOf(ref.codespace),
      kind: ref.codespace.startsWith('tmp-') ? 'tmp' : 'named',
      thread: ref.thread,
      state: ref.state,
      members: ref.size,
      editsPerS: Math.round((commits / windowSpanS) * 10) / 10,
      commitP50Ms: percentileMs(commitS, 50),
      commitP99Ms: percentileMs(commitS, 99),
      restarts: ref.restarts,
    };
  }

  #idOf(codespace: string): string {
    let id = this.#ids.get(codespace);
    if (id === undefined) {
      if (this.#ids.size > 10_000) this.#ids.clear();
      this.#ids.set(codespace, (id = statusIdOf(codespace)));
    }
    return id;
  }
}
