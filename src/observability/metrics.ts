/**
 * Prometheus metrics (`prom-client`), served at `/metrics`. One registry per Hub (not the global
 * one), so several servers in one process (tests, embedding) keep their counts apart. Workers
 * measure what happens in channels and report it to main with each heartbeat answer.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { LAG_RESOLUTION_MS } from './loop_lag.ts';

/** Seconds: from 0.1 ms (memory commit) to 2.5 s (Redis struggling). */
const LATENCY_BUCKETS_S = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

import type { ChannelStats } from '../actors/envelopes.ts';
import { LiveWindow } from './live_window.ts';

export class ServerMetrics {
  readonly registry = new Registry();
  readonly connections: Gauge;
  readonly codespaces: Gauge;
  readonly channelsPerWorker: Gauge<'thread'>;
  readonly messagesIn: Counter<'operation'>;
  readonly messagesOut: Counter<'operation'>;
  readonly commitSeconds: Histogram;
  readonly fanOutSeconds: Histogram;
  readonly errors: Counter<'code'>;
  readonly closes: Counter<'code'>;
  readonly restarts: Counter;
  readonly workerReplacements: Counter;
  readonly slowConsumerCloses: Counter;
  readonly refusals: Counter;
  readonly backplaneUp: Gauge;
  readonly eventLoopLag: Gauge<'thread'>;
  readonly #mainLag: IntervalHistogram;
  /** The last second's samples for the status page, collected only while one is open. */
  readonly live = new LiveWindow();

  constructor() {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'codespace_' });
    this.connections = new Gauge({ name: 'codespace_connections', help: 'open client connections', registers });
    this.codespaces = new Gauge({ name: 'codespace_codespaces', help: 'codespaces with a live channel', registers });
    this.channelsPerWorker = new Gauge({ name: 'codespace_channels', help: 'channels per worker thread (0: in-process)', labelNames: ['thread'], registers });
    this.messagesIn = new Counter({ name: 'codespace_messages_in_total', help: 'client messages received, by operation', labelNames: ['operation'], registers });
    this.messagesOut = new Counter({ name: 'codespace_messages_out_total', help: 'messages sent to clients, by operation', labelNames: ['operation'], registers });
    this.commitSeconds = new Histogram({ name: 'codespace_commit_seconds', help: 'time to make one change durable', buckets: LATENCY_BUCKETS_S, registers });
    this.fanOutSeconds = new Histogram({ name: 'codespace_fanout_seconds', help: 'from a change reaching its channel to its broadcast written to every socket', buckets: LATENCY_BUCKETS_S, registers });
    this.errors = new Counter({ name: 'codespace_errors_total', help: 'error replies sent, by code', labelNames: ['code'], registers });
    this.closes = new Counter({ name: 'codespace_closes_total', help: 'connections closed by the server, by close code', labelNames: ['code'], registers });
    this.restarts = new Counter({ name: 'codespace_channel_restarts_total', help: 'channel restarts after a crash, hang or worker death', registers });
    this.workerReplacements = new Counter({ name: 'codespace_worker_replacements_total', help: 'worker threads terminated and replaced', registers });
    this.slowConsumerCloses = new Counter({ name: 'codespace_slow_consumer_closes_total', help: 'clients closed with 1013 for not reading', registers });
    this.refusals = new Counter({ name: 'codespace_channel_refusals_total', help: 'joins refused while a failed codespace cools down', registers });
    this.backplaneUp = new Gauge({ name: 'codespace_backplane_up', help: '1 when the backplane is connected (memory: always)', registers });
    this.eventLoopLag = new Gauge({ name: 'codespace_event_loop_lag_seconds', help: 'event-loop lag p99, by thread (main: 0)', labelNames: ['thread'], registers });
    this.#mainLag = monitorEventLoopDelay({ resolution: LAG_RESOLUTION_MS });
    this.#mainLag.enable();
    this.eventLoopLag.set({ thread: '0' }, 0);
  }

  /** Folds one channel's report in. */
  addChannelStats(thread: number, stats: ChannelStats, codespace = ''): void {
    this.live.channelStats(thread, stats, codespace);
    for (const operation in stats.out) this.messagesOut.inc({ operation }, stats.out[operation]);
    for (const code in stats.errors) this.errors.inc({ code }, stats.errors[code]);
    for (const seconds of stats.commitS) this.commitSeconds.observe(seconds);
    if (thread > 0) this.eventLoopLag.set({ thread: String(thread) }, stats.lagS);
  }

  /** A worker's loop lag, with each heartbeat whether or not its channels did anything. */
  threadLag(thread: number, lagS: number): void {
    if (thread <= 0) return;
    this.eventLoopLag.set({ thread: String(thread) }, lagS);
    this.live.threadLag(thread, lagS);
  }

  observeFanOut(seconds: number): void {
    this.fanOutSeconds.observe(seconds);
    this.live.fanOut(seconds);
  }

  async render(): Promise<{ contentType: string; body: string }> {
    this.eventLoopLag.set({ thread: '0' }, this.#mainLag.percentile(99) / 1e9);
    this.#mainLag.reset();
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  close(): void {
    this.#mainLag.disable();
  }
}
