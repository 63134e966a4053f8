/**
 * The transport-neutral server: store, supervisor, channels and token resolution, with no
 * socket. The WebSocket acceptor is one adapter over it; an embedding app is another.
 */
import { DataDirError, DataDirLock } from '../backplane/data_dir.ts';
import { sweepEveryMs } from '../backplane/expiry.ts';
import { closeFileBackplane, fileBackplaneFor, type FileBackplane, type FileBackplaneOptions } from '../backplane/file_backplane.ts';
import { MemoryBackplane } from '../backplane/memory_backplane.ts';
import { RedisHealth, type BackplaneState } from '../backplane/redis_health.ts';
import type { BackplaneSettings } from '../actors/envelopes.ts';
import { Supervisor, type Placement } from '../actors/supervisor.ts';
import type { Config } from '../config.ts';
import { CloseCode, ProtocolError } from '../protocol/close_codes.ts';
import type { Codec } from '../protocol/messages.ts';
import { ChannelPool } from '../workers/pool.ts';
import { InProcessPlacement } from '../workers/in_process.ts';
import { TokenResolver } from './auth.ts';
import { Connection, type ConnectionObserver, type Transport } from './connection.ts';
import { ServerMetrics } from '../observability/metrics.ts';
import type { LogFn } from '../observability/logger.ts';
import { limitedLog } from '../observability/log_limiter.ts';
import { describeError } from '../observability/describe_error.ts';
import type { JoinParams } from './upgrade_target.ts';

export type { LogFn } from '../observability/logger.ts';

/** Log events that are also counted. */
const COUNTED_EVENTS: Record<string, (metrics: ServerMetrics) => void> = {
  channel_restarted: (metrics) => metrics.restarts.inc(),
  worker_replaced: (metrics) => metrics.workerReplacements.inc(),
  slow_consumer_closed: (metrics) => metrics.slowConsumerCloses.inc(),
  channel_refused: (metrics) => metrics.refusals.inc(),
};


export class Hub {
  readonly config: Config;
  readonly store: MemoryBackplane;
  readonly supervisor: Supervisor;
  readonly resolver: TokenResolver;
  /** Where channels run; exposed so a hung worker can be terminated (and tests can do so). */
  readonly placement: Placement;
  readonly log: LogFn;
  /** For what anyone outside can cause (refused joins and upgrades): at info, rate-limited. */
  readonly refusalLog: LogFn;
  /** Watches Redis for `/readyz` and the log; null on the memory backplane. */
  readonly redisHealth: RedisHealth | null;
  /** The local durable store (DATA_DIR) as main sees it, for expiry; null without DATA_DIR. */
  readonly fileStore: FileBackplane | null;
  readonly metrics = new ServerMetrics();
  /** Open connections (WebSocket or in-process). */
  connectionCount = 0;
  /** Clients closed with 1013 for not reading. */
  slowConsumerCloses = 0;
  readonly #observer: ConnectionObserver;
  readonly #tickTimer: ReturnType<typeof setInterval>;
  readonly #sweepTimer: ReturnType<typeof setInterval> | undefined;
  readonly #dataDir: { lock: DataDirLock; options: FileBackplaneOptions } | null;
  #closed = false;

  constructor(config: Config, logTo: LogFn = () => {}) {
    this.config = config;
    const metrics = this.metrics;
    const log: LogFn = (event, fields) => {
      COUNTED_EVENTS[event]?.(metrics);
      logTo(event, fields);
    };
    this.log = log;
    this.refusalLog = limitedLog(log);
    const failureLog = limitedLog(log);
    this.#observer = {
      received: (operation, codespace) => {
        metrics.messagesIn.inc({ operation });
        if (operation === '__fault') log('fault_injected', { codespace });
      },
      refused: (code) => metrics.errors.inc({ code }),
      closedWith: (code) => metrics.closes.inc({ code: String(code) }),
      detached: () => this.connectionCount--,
      failed: (error, codespace) => failureLog('connection_failed', { codespace, error: describeError(error) }),
    };
    this.store = new MemoryBackplane({ history: config.history, historyBytes: config.historyBytes, ttlS: config.codespaceTtlS, tmpTtlS: config.tmpCodespaceTtlS });
    this.#dataDir = config.dataDir ? openDataDir(config) : null;
    this.fileStore = this.#dataDir ? fileBackplaneFor(this.#dataDir.options) : null;
    this.placement = config.workers > 0 ? new ChannelPool(config.workers, config.workerMaxOldMb, log) : new InProcessPlacement();
    if (config.faultInjection) log('fault_injection_enabled', { warning: 'FAULT_INJECTION=1: any client can crash, hang or exhaust a channel; never in production' });
    this.supervisor = new Supervisor({
      placement: this.placement,
      // One worker for codespaces that crashed or hung before (none in-process: no thread to spare).
      ...(config.workers > 0 ? { quarantine: () => new ChannelPool(1, config.workerMaxOldMb, log) } : {}),
      store: this.store,
      settings: { history: config.history, historyBytes: config.historyBytes, maxDocLength: config.maxDocLength, snapshotIntervalMs: snapshotIntervalOf(config), backplane: backplaneSettingsOf(config, this.#dataDir?.lock.path) },
      channelGraceMs: config.channelGraceMs,
      maxRestarts: config.maxRestarts,
      restartWindowMs: config.restartWindowMs,
      restartCooldownMs: config.restartCooldownMs,
      heartbeatIntervalMs: config.heartbeatIntervalMs,
      heartbeatTimeoutMs: config.heartbeatTimeoutMs,
      log,
      onChannelStats: (thread, stats, codespace) => metrics.addChannelStats(thread, stats, codespace),
      onThreadLag: (thread, lagS) => metrics.threadLag(thread, lagS),
      onFanOut: (seconds) => metrics.observeFanOut(seconds),
    });
    this.resolver = new TokenResolver(config);
    this.redisHealth = config.redisUrl
      ? new RedisHealth(config.redisUrl, (state: BackplaneState) => log(state === 'up' ? 'backplane_up' : 'backplane_down', { backplane: 'redis' }))
      : null;
    // One timer for every channel's heartbeat, hang check and grace period, not one per channel.
    const tickMs = Math.max(10, Math.min(config.heartbeatIntervalMs, Math.floor(config.heartbeatTimeoutMs / 4), Math.max(10, Math.floor(config.channelGraceMs / 2))));
    this.#tickTimer = setInterval(() => {
      try {
        this.supervisor.tick(Date.now());
      } catch (error) {
        // A throw from a timer is an uncaught exception: the whole process. Log, tick again next time.
        failureLog('tick_failed', { error: describeError(error) });
      }
    }, tickMs);
    this.#tickTimer.unref?.();
    // Redis expires its keys by itself; the memory and file stores are swept from here.
    const sweepMs = config.redisUrl ? null : sweepEveryMs({ ttlS: config.codespaceTtlS, tmpTtlS: config.tmpCodespaceTtlS });
    if (sweepMs !== null) {
      this.#sweepTimer = setInterval(() => void this.sweep(Date.now()), sweepMs);
      this.#sweepTimer.unref?.();
    }
  }

  /**
   * Removes the codespaces abandoned for longer than their TTL from the memory and file stores;
   * one with a channel (clients, or within its grace period) is never removed. Returns how many.
   */
  async sweep(nowMs: number): Promise<number> {
    const isOpen = (codespace: string): boolean => this.supervisor.channel(codespace) !== undefined;
    let removed = this.store.expire(nowMs, isOpen);
    try {
      if (this.fileStore && !this.#closed) removed += await this.fileStore.expire(nowMs, isOpen);
    } catch (error) {
      this.log('expiry_failed', { error: String(error) });
    }
    if (removed > 0) this.log('codespaces_expired', { count: removed });
    return removed;
  }

  /** The Prometheus text of /metrics, with the gauges read off the live state. */
  async renderMetrics(): Promise<{ contentType: string; body: string }> {
    const metrics = this.metrics;
    metrics.connections.set(this.connectionCount);
    metrics.codespaces.set(this.supervisor.channelCount);
    metrics.channelsPerWorker.reset();
    for (const ref of this.supervisor.channels()) if (ref.thread >= 0) metrics.channelsPerWorker.inc({ thread: String(ref.thread) });
    metrics.backplaneUp.set(this.redisHealth === null || this.redisHealth.state === 'up' ? 1 : 0);
    return metrics.render();
  }

  get backplaneName(): 'memory' | 'redis' | 'file' {
    if (this.redisHealth) return 'redis';
    return this.fileStore ? 'file' : 'memory';
  }

  /** Ready to serve joins: the memory backplane always is; Redis when connected. */
  get ready(): boolean {
    return this.#closed ? false : this.redisHealth === null || this.redisHealth.state === 'up';
  }

  connection(transport: Transport, codec: Codec): Connection {
    this.connectionCount++;
    const { faultInjection, rateLimitPerS, rateLimitBurst } = this.config;
    return new Connection(transport, codec, this.supervisor, { observer: this.#observer, faults: faultInjection, ratePerS: rateLimitPerS, burst: rateLimitBurst });
  }

  /**
   * Resolves the token and joins its codespace. A refusal closes the connection with its code
   * (4401, 4404, 1013); it never throws.
   */
  async open(connection: Connection, token: string, params: JoinParams = {}): Promise<void> {
    try {
      const grant = await this.resolver.resolve(token, connection);
      if (connection.closed) return;
      if (this.#closed) return connection.closeWith(CloseCode.shuttingDown);
      connection.join(grant.codespace, grant.mode, params);
    } catch (error) {
      if (error instanceof ProtocolError) this.refusalLog('join_refused', { code: error.close.code, why: error.message });
      connection.fail(error);
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#tickTimer);
    clearInterval(this.#sweepTimer);
    this.resolver.close();
    this.redisHealth?.close();
    this.metrics.close();
    await this.supervisor.close();
    if (this.#dataDir) {
      await closeFileBackplane(this.#dataDir.options);
      this.#dataDir.lock.release();
    }
  }
}

/** Claims DATA_DIR (throws DataDirError: not writable, or in use by another process). */
function openDataDir(config: Config): { lock: DataDirLock; options: FileBackplaneOptions } {
  const lock = DataDirLock.claim(config.dataDir);
  const options = { path: lock.path, history: config.history, ttlS: config.codespaceTtlS, tmpTtlS: config.tmpCodespaceTtlS };
  try {
    fileBackplaneFor(options);
  } catch (error) {
    lock.release();
    throw new DataDirError(`DATA_DIR ${lock.path}: the store cannot be opened: ${error instanceof Error ? error.message : String(error)}`);
  }
  return { lock, options };
}

/**
 * SNAPSHOT_INTERVAL_MS bounds how stale the stored text (`code`) may be where something else
 * reads it: the SharePython API reads the Redis hash. The memory and file stores serve the text
 * with every acked change replayed (the code route), so there a snapshot only bounds the replay,
 * and taking one every 250 ms on every busy channel cost 10-20 % of the CPU per delivery at
 * 100 x 10 (bench, A/B in one session).
 */
const LOCAL_SNAPSHOT_INTERVAL_MS = 5_000;

function snapshotIntervalOf(config: Config): number {
  return config.redisUrl ? config.snapshotIntervalMs : Math.max(config.snapshotIntervalMs, LOCAL_SNAPSHOT_INTERVAL_MS);
}

function backplaneSettingsOf(config: Config, dataDir: string | undefined): BackplaneSettings {
  if (dataDir) return { kind: 'file', path: dataDir, ttlS: config.codespaceTtlS, tmpTtlS: config.tmpCodespaceTtlS };
  if (!config.redisUrl) return { kind: 'memory' };
  return {
    kind: 'redis',
    url: config.redisUrl,
    keyPrefix: config.redisKeyPrefix,
    ttlS: config.codespaceTtlS,
    tmpTtlS: config.tmpCodespaceTtlS,
    timeoutMs: config.redisTimeoutMs,
  };
}
