/**
 * One typed configuration object. Every setting is an environment variable named for its unit,
 * can also be given as a flag (`--ping-interval-ms 5000` or `--ping-interval-ms=5000`), has a
 * default, and is listed by `--help`. A bad value throws a TypeError that names the setting.
 */
import { availableParallelism } from 'node:os';

export interface Config {
  /** TCP port to listen on; 0 picks a free one. */
  port: number;
  host: string;
  /** Worker threads hosting channel actors; 0 runs every channel in-process on the main thread. */
  workers: number;
  pingIntervalMs: number;
  /** 0 turns the idle timeout off. */
  idleTimeoutMs: number;
  maxMessageBytes: number;
  /** UTF-16 code units. */
  maxDocLength: number;
  /** Versions kept for resume, rebase and `ref` deduplication. */
  history: number;
  /** Bytes of changes (UTF-16 units inserted + 16 per change) kept for resume and rebase; refs stay `history`. */
  historyBytes: number;
  allowTmp: boolean;
  /** SharePython API base, ending in '/'; empty turns the HTTP lookup off. */
  apiBaseUrl: string;
  /** HS256 secret; empty turns JWT tokens off. */
  jwtSecret: string;
  authTimeoutMs: number;
  /** How long a token's answer (grant or refusal) is reused. */
  authCacheMs: number;
  /** How long a channel with no clients stays loaded before it flushes and stops. */
  channelGraceMs: number;
  /** 0 means unlimited; beyond it upgrades are answered HTTP 503. */
  maxConnections: number;
  /** `redis://` or `rediss://` URL of the shared backplane; empty runs on the embedded memory one. */
  redisUrl: string;
  /**
   * Directory of the local durable store (LMDB); empty keeps documents in memory. `make run`
   * passes ./data; startServer() and createHub() default to empty, so nothing writes there unasked.
   */
  dataDir: string;
  /** Prepended to every Redis key and pub/sub channel. */
  redisKeyPrefix: string;
  /** Seconds an abandoned codespace lives after its last activity, in any store (0: never expire). */
  codespaceTtlS: number;
  /** The same for `tmp-` codespaces. */
  tmpCodespaceTtlS: number;
  /** Longest a committed change waits before the snapshot includes it, in milliseconds. */
  snapshotIntervalMs: number;
  /** Longest wait for one Redis command before an edit is answered `unavailable`. */
  redisTimeoutMs: number;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** Longest a SIGTERM drain may take before the process exits anyway. */
  shutdownTimeoutMs: number;
  /** Acceptor processes on one port (Node cluster); more than 1 needs REDIS_URL. */
  instances: number;
  /** Channel restarts allowed within `restartWindowMs` before its clients get 4500. */
  maxRestarts: number;
  restartWindowMs: number;
  /** How long a codespace that spent its restart budget is refused (4500). */
  restartCooldownMs: number;
  /** Milliseconds between heartbeats from the supervisor to every channel. */
  heartbeatIntervalMs: number;
  /** A worker whose channel has not answered a heartbeat for this long is terminated. */
  heartbeatTimeoutMs: number;
  /** Heap limit of each worker thread in MiB (0: the runtime's default). */
  workerMaxOldMb: number;
  /** Bytes waiting in a client's send queue past which its selections are coalesced; 4x closes it (1013). */
  slowConsumerBytes: number;
  /**
   * Longest a `peer_joined`/`peer_left` may wait to share a write with the next ones to the same
   * client (0: written at once). Any other message to that client takes them along first.
   */
  presenceDelayMs: number;
  /** Messages per second a connection may send, sustained, and in a burst (0: no limit). */
  rateLimitPerS: number;
  rateLimitBurst: number;
  /** Accept `__fault` messages that make a channel throw, hang or run out of memory (stress tests only). */
  faultInjection: boolean;
  /** Opens `/status` on a non-loopback HOST (empty: `/status` answers only on a loopback HOST). */
  statusToken: string;
}

interface SettingSpec {
  key: keyof Config;
  env: string;
  kind: 'int' | 'bool' | 'string' | 'url' | 'redis_url';
  min?: number;
  max?: number;
  /** For a string setting: the values it may take. */
  choices?: readonly string[];
  help: string;
  defaultValue: () => number | boolean | string;
}

export const SETTINGS: readonly SettingSpec[] = [
  { key: 'port', env: 'PORT', kind: 'int', min: 0, max: 65_535, help: 'TCP port to listen on (0: any free port)', defaultValue: () => 8080 },
  { key: 'host', env: 'HOST', kind: 'string', help: 'address to listen on', defaultValue: () => '127.0.0.1' },
  { key: 'workers', env: 'WORKERS', kind: 'int', min: 0, help: 'worker threads for channel actors (0: in-process)', defaultValue: () => availableParallelism() },
  { key: 'pingIntervalMs', env: 'PING_INTERVAL_MS', kind: 'int', min: 1, help: 'milliseconds between pings to each client', defaultValue: () => 25_000 },
  { key: 'idleTimeoutMs', env: 'IDLE_TIMEOUT_MS', kind: 'int', min: 0, help: 'close a client silent this many milliseconds with 4408 (0: off)', defaultValue: () => 0 },
  { key: 'maxMessageBytes', env: 'MAX_MESSAGE_BYTES', kind: 'int', min: 64, help: 'largest accepted frame in bytes (1009 beyond)', defaultValue: () => 1_048_576 },
  { key: 'maxDocLength', env: 'MAX_DOC_LENGTH', kind: 'int', min: 1, help: 'longest document in UTF-16 code units', defaultValue: () => 4_000_000 },
  { key: 'history', env: 'HISTORY', kind: 'int', min: 1, help: 'versions kept for resume, rebase and ref deduplication', defaultValue: () => 1000 },
  { key: 'historyBytes', env: 'HISTORY_BYTES', kind: 'int', min: 0, help: 'bytes of changes kept for resume and rebase (0: no limit; dedup keeps HISTORY)', defaultValue: () => 8_388_608 },
  { key: 'allowTmp', env: 'ALLOW_TMP', kind: 'bool', help: 'accept tmp-<id> tokens (temporary codespaces)', defaultValue: () => true },
  { key: 'apiBaseUrl', env: 'API_BASE_URL', kind: 'url', help: 'SharePython API base URL for token lookup (empty: off)', defaultValue: () => '' },
  { key: 'jwtSecret', env: 'JWT_SECRET', kind: 'string', help: 'HS256 secret for JWT tokens (empty: off)', defaultValue: () => '' },
  { key: 'authTimeoutMs', env: 'AUTH_TIMEOUT_MS', kind: 'int', min: 1, help: 'milliseconds to wait for the token lookup (1013 beyond)', defaultValue: () => 5_000 },
  { key: 'authCacheMs', env: 'AUTH_CACHE_MS', kind: 'int', min: 0, help: 'milliseconds a token lookup answer is reused', defaultValue: () => 10_000 },
  { key: 'channelGraceMs', env: 'CHANNEL_GRACE_MS', kind: 'int', min: 0, help: 'milliseconds an empty channel stays loaded', defaultValue: () => 30_000 },
  { key: 'maxConnections', env: 'MAX_CONNECTIONS', kind: 'int', min: 0, help: 'most open connections (0: unlimited; HTTP 503 beyond)', defaultValue: () => 0 },
  { key: 'redisUrl', env: 'REDIS_URL', kind: 'redis_url', help: 'Redis backplane URL (empty: embedded in-memory store)', defaultValue: () => '' },
  { key: 'dataDir', env: 'DATA_DIR', kind: 'string', help: 'directory of the local durable store (empty: memory; make run: ./data)', defaultValue: () => '' },
  { key: 'redisKeyPrefix', env: 'REDIS_KEY_PREFIX', kind: 'string', help: 'prefix of every Redis key and pub/sub channel', defaultValue: () => '' },
  { key: 'codespaceTtlS', env: 'CODESPACE_TTL_S', kind: 'int', min: 0, help: 'seconds an abandoned codespace is kept (0: forever)', defaultValue: () => 604_800 },
  { key: 'tmpCodespaceTtlS', env: 'TMP_CODESPACE_TTL_S', kind: 'int', min: 0, help: 'seconds an abandoned tmp- codespace is kept (0: forever)', defaultValue: () => 86_400 },
  { key: 'snapshotIntervalMs', env: 'SNAPSHOT_INTERVAL_MS', kind: 'int', min: 10, help: 'milliseconds at most between a change and the stored text (code) holding it', defaultValue: () => 250 },
  { key: 'redisTimeoutMs', env: 'REDIS_TIMEOUT_MS', kind: 'int', min: 10, help: 'milliseconds to wait for Redis before an edit gets unavailable', defaultValue: () => 2_000 },
  { key: 'logLevel', env: 'LOG_LEVEL', kind: 'string', choices: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], help: 'least severe log level written (JSON lines on stderr)', defaultValue: () => 'info' },
  { key: 'shutdownTimeoutMs', env: 'SHUTDOWN_TIMEOUT_MS', kind: 'int', min: 100, help: 'milliseconds a SIGTERM drain may take before exiting anyway', defaultValue: () => 10_000 },
  { key: 'maxRestarts', env: 'MAX_RESTARTS', kind: 'int', min: 0, help: 'channel restarts allowed per RESTART_WINDOW_MS before 4500', defaultValue: () => 5 },
  { key: 'restartWindowMs', env: 'RESTART_WINDOW_MS', kind: 'int', min: 1, help: 'milliseconds over which channel restarts are counted', defaultValue: () => 60_000 },
  { key: 'restartCooldownMs', env: 'RESTART_COOLDOWN_MS', kind: 'int', min: 0, help: 'milliseconds a codespace that failed repeatedly is refused (4500)', defaultValue: () => 30_000 },
  { key: 'heartbeatIntervalMs', env: 'HEARTBEAT_INTERVAL_MS', kind: 'int', min: 10, help: 'milliseconds between heartbeats to every channel', defaultValue: () => 250 },
  { key: 'heartbeatTimeoutMs', env: 'HEARTBEAT_TIMEOUT_MS', kind: 'int', min: 50, help: 'milliseconds without a heartbeat answer before a worker is terminated', defaultValue: () => 1_000 },
  { key: 'workerMaxOldMb', env: 'WORKER_MAX_OLD_MB', kind: 'int', min: 0, help: 'heap limit of each worker thread in MiB (0: default)', defaultValue: () => 1_024 },
  { key: 'slowConsumerBytes', env: 'SLOW_CONSUMER_BYTES', kind: 'int', min: 1024, help: 'queued bytes past which a client gets only the newest selections (4x: closed 1013)', defaultValue: () => 1_048_576 },
  { key: 'presenceDelayMs', env: 'PRESENCE_DELAY_MS', kind: 'int', min: 0, max: 1_000, help: 'milliseconds peer_joined/peer_left may wait to share a write with the next ones to the same client (0: at once)', defaultValue: () => 50 },
  { key: 'rateLimitPerS', env: 'RATE_LIMIT_PER_S', kind: 'int', min: 0, help: 'messages per second per connection, sustained (0: no limit)', defaultValue: () => 200 },
  { key: 'rateLimitBurst', env: 'RATE_LIMIT_BURST', kind: 'int', min: 1, help: 'messages per connection in a burst', defaultValue: () => 400 },
  { key: 'faultInjection', env: 'FAULT_INJECTION', kind: 'bool', help: 'accept __fault messages (throw, hang, oom) for stress tests', defaultValue: () => false },
  { key: 'statusToken', env: 'STATUS_TOKEN', kind: 'string', help: 'secret (16+ characters) that opens /status on a non-loopback HOST (empty: /status on loopback only)', defaultValue: () => '' },
  { key: 'instances', env: 'INSTANCES', kind: 'int', min: 1, help: 'acceptor processes sharing the port (more than 1 needs REDIS_URL)', defaultValue: () => 1 },
];

export function defaultConfig(): Config {
  const config = {} as Record<string, unknown>;
  for (const spec of SETTINGS) config[spec.key] = spec.defaultValue();
  return config as unknown as Config;
}

function flagName(spec: SettingSpec): string {
  return '--' + spec.env.toLowerCase().replaceAll('_', '-');
}

function parseValue(spec: SettingSpec, raw: string, origin: string): number | boolean | string {
  const where = `${origin} (${spec.env})`;
  switch (spec.kind) {
    case 'int': {
      if (!/^\d+$/.test(raw.trim())) throw new TypeError(`${where} must be a whole number, got ${JSON.stringify(raw)}`);
      const value = Number(raw.trim());
      if (!Number.isSafeInteger(value)) throw new TypeError(`${where} is too large: ${raw}`);
      if (spec.min !== undefined && value < spec.min) throw new TypeError(`${where} must be at least ${spec.min}, got ${value}`);
      if (spec.max !== undefined && value > spec.max) throw new TypeError(`${where} must be at most ${spec.max}, got ${value}`);
      return value;
    }
    case 'bool': {
      const value = raw.trim().toLowerCase();
      if (['1', 'true', 'yes', 'on'].includes(value)) return true;
      if (['0', 'false', 'no', 'off'].includes(value)) return false;
      throw new TypeError(`${where} must be true or false (1/0), got ${JSON.stringify(raw)}`);
    }
    case 'url': {
      if (raw === '') return '';
      let url: URL;
      try {
        url = new URL(raw);
      } catch {
        throw new TypeError(`${where} must be an http(s) URL, got ${JSON.stringify(raw)}`);
      }
      if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TypeError(`${where} must be an http(s) URL, got ${JSON.stringify(raw)}`);
      // The lookup appends `codespace/<token>/`, so the base must end in a slash.
      return url.href.endsWith('/') ? url.href : url.href + '/';
    }
    case 'redis_url': {
      let url: URL;
      try {
        url = new URL(raw);
      } catch {
        throw new TypeError(`${where} must be a redis:// or rediss:// URL, got ${JSON.stringify(raw)}`);
      }
      if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') throw new TypeError(`${where} must be a redis:// or rediss:// URL, got ${JSON.stringify(raw)}`);
      return raw;
    }
    case 'string':
      // A short secret is guessable; /status shows what every codespace is doing.
      if (spec.key === 'statusToken' && raw.length > 0 && raw.length < 16) throw new TypeError(`${where} must be at least 16 characters, got ${raw.length}`);
      if (spec.choices && !spec.choices.includes(raw)) throw new TypeError(`${where} must be one of ${spec.choices.join(', ')}, got ${JSON.stringify(raw)}`);
      return raw;
  }
}

/**
 * Builds the configuration from the environment, then flags (flags win), then `overrides`
 * (for embedding and tests). Throws a TypeError naming the first bad setting.
 */
export function loadConfig(
  env: Record<string, string | undefined> = process.env,
  argv: readonly string[] = [],
  overrides: Partial<Config> = {},
): Config {
  const config = defaultConfig() as unknown as Record<string, unknown>;
  for (const spec of SETTINGS) {
    const raw = env[spec.env];
    if (raw !== undefined && raw !== '') config[spec.key] = parseValue(spec, raw, `environment variable ${spec.env}`);
  }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--help' || arg === '-h') continue;
    const [name, inline] = arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const spec = SETTINGS.find((s) => flagName(s) === name);
    if (!spec) throw new TypeError(`unknown option ${name} (see --help)`);
    const raw = inline ?? argv[++i];
    if (raw === undefined) throw new TypeError(`option ${name} needs a value`);
    config[spec.key] = parseValue(spec, raw, `option ${name}`);
  }
  Object.assign(config, overrides);
  if (config.redisUrl && config.dataDir) {
    throw new TypeError('DATA_DIR and REDIS_URL are two stores: set one (empty DATA_DIR with REDIS_URL)');
  }
  // Several instances share the cores: by default each gets its share of worker threads.
  const workersGiven = (env.WORKERS ?? '') !== '' || argv.some((arg) => arg.startsWith('--workers')) || 'workers' in overrides;
  if (!workersGiven && (config.instances as number) > 1) config.workers = Math.max(1, Math.floor(availableParallelism() / (config.instances as number)));
  return config as unknown as Config;
}

export function helpText(): string {
  const lines = [
    'codespace: real-time collaboration server for shared code documents',
    '',
    'Usage: make run [ARGS="--port 9000 ..."]    or    npx codespace [options]    or    node dist/main.js [options]',
    '',
    'Every setting is an environment variable, or the flag in the first column.',
    '',
  ];
  for (const spec of SETTINGS) {
    const shown = spec.env === 'WORKERS' ? 'cores' : JSON.stringify(spec.defaultValue());
    lines.push(`  ${flagName(spec).padEnd(22)} ${spec.env.padEnd(18)} default ${shown.padEnd(12)} ${spec.help}`);
  }
  return lines.join('\n');
}
