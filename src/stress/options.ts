/**
 * The stress tool's options: one typed object with defaults, parsed from argv, and a TypeError
 * that names the bad option (STYLE.md rule 11). Pure: no sockets, no clock.
 */
import type { Codec, FaultKind } from '../protocol/messages.ts';

export type StressCodec = Codec | 'mixed';

export interface FaultPlan {
  kind: FaultKind;
  /** Which codespace, 0-based, of `channels`. */
  index: number;
  /** Milliseconds after the editing starts. */
  atMs: number;
}

export interface StressOptions {
  /** Server base, `ws://host:port`. */
  url: string;
  channels: number;
  clients: number;
  /** Messages per second per client: edits and selection moves, alternating. */
  rate: number;
  durationMs: number;
  faults: FaultPlan[];
  /** Codespace `i` is `<tokenPrefix><i>`. */
  tokenPrefix: string;
  codec: StressCodec;
  jsonPath: string | null;
  htmlPath: string | null;
  quiet: boolean;
  /** How long to wait after the editing for every client to have everything acked and seen. */
  settleTimeoutMs: number;
  /** Isolation: a bystander's p99 after the fault may be at most max(factor × before, before + slack). */
  latencyFactor: number;
  latencySlackMs: number;
}

/** Thrown for a bad command line; the CLI prints it and exits 2. */
export class OptionError extends TypeError {}

/** The server refuses more than 200 messages per second per connection by default (PROTOCOL.md §6). */
const MAX_RATE = 200;
const TOKEN_ID = /^[A-Za-z0-9_.:-]*$/;

export function defaultOptions(): StressOptions {
  return {
    url: 'ws://127.0.0.1:8080',
    channels: 10,
    clients: 4,
    rate: 5,
    durationMs: 10_000,
    faults: [],
    tokenPrefix: `tmp-stress-${Math.random().toString(36).slice(2, 8)}-`,
    codec: 'mixed',
    jsonPath: null,
    htmlPath: null,
    quiet: false,
    settleTimeoutMs: 15_000,
    latencyFactor: 2,
    latencySlackMs: 50,
  };
}

export const HELP = `codespace-stress: many SDK clients editing many codespaces, with faults, and a verdict.

usage: codespace-stress [options]        (make stress ARGS="...", npx codespace-stress ...)

  --url URL             server base (default ws://127.0.0.1:8080)
  --channels N          codespaces (default 10)
  --clients N           SDK clients per codespace (default 4)
  --rate N              messages per second per client, edits and selection moves
                        alternating (default 5, at most ${MAX_RATE})
  --duration D          how long to edit: 10, 10s, 500ms, 2m (default 10s)
  --fault LIST          faults over the __fault message (server with FAULT_INJECTION=1):
                        kind:index[@time], comma-separated; kind is throw, hang or oom;
                        e.g. --fault hang:3,throw:7@4s
  --fault-at D          when faults without @time happen (default a third of --duration)
  --token-prefix P      codespace tokens are P0, P1, ... (default tmp-stress-<random>-)
  --codec C             json, msgpack or mixed (alternating per client; default mixed)
  --json PATH           write the report as JSON
  --html PATH           write a self-contained HTML report with latency charts
  --settle-timeout D    wait this long after the editing for clients to sync (default 15s)
  --latency-factor X    isolation bound: the p99 of a bystander after the first fault may be
  --latency-slack D     max(X × the bystanders' p99 before it, that p99 + D); default 2 and
                        50ms (a bare number D is milliseconds)
  --quiet               no live progress line
  --help                this text

exit status: 0 converged and isolated, 1 convergence or isolation failed, 2 bad options.`;

/** Parses `10`, `10s`, `500ms`, `1.5m` into milliseconds; a bare number is seconds. */
export function parseDuration(option: string, text: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text.trim());
  if (!match) throw new OptionError(`${option}: expected a duration like 10, 10s, 500ms or 2m, got ${JSON.stringify(text)}`);
  const value = Number(match[1]);
  const unitMs = match[2] === 'ms' ? 1 : match[2] === 'm' ? 60_000 : 1000;
  return Math.round(value * unitMs);
}

function parseCount(option: string, text: string, min: number, max: number): number {
  if (!/^\d+$/.test(text)) throw new OptionError(`${option}: expected a whole number, got ${JSON.stringify(text)}`);
  const value = Number(text);
  if (value < min || value > max) throw new OptionError(`${option}: must be between ${min} and ${max}, got ${value}`);
  return value;
}

function parsePositive(option: string, text: string, max: number): number {
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value) || value <= 0 || value > max) {
    throw new OptionError(`${option}: expected a number above 0 and at most ${max}, got ${JSON.stringify(text)}`);
  }
  return value;
}

/**
 * `hang:3,throw:7@4s`: kind and codespace index, as issue 5 writes them, each with an optional
 * time; `index:kind` is accepted too. Faults without a time happen at `defaultAtMs`.
 */
export function parseFaults(text: string, defaultAtMs: number | null): { kind: FaultKind; index: number; atMs: number | null }[] {
  const faults = [];
  for (const item of text.split(',').map((part) => part.trim()).filter(Boolean)) {
    const match = /^([a-z]+|\d+):([a-z]+|\d+)(?:@(.+))?$/.exec(item);
    const [kind, index] = match && /^\d+$/.test(match[1]) ? [match[2], match[1]] : [match?.[1], match?.[2]];
    if (!match || !/^\d+$/.test(index ?? '') || !['throw', 'hang', 'oom'].includes(kind ?? '')) {
      throw new OptionError(`--fault: expected kind:index[@time] with kind throw, hang or oom (e.g. hang:3,throw:7@4s), got ${JSON.stringify(item)}`);
    }
    const atMs = match[3] === undefined ? defaultAtMs : parseDuration('--fault', match[3]);
    faults.push({ kind: kind as FaultKind, index: Number(index), atMs });
  }
  if (faults.length === 0) throw new OptionError('--fault: empty list');
  return faults;
}

const VALUE_OPTIONS = new Set([
  '--url', '--channels', '--clients', '--rate', '--duration', '--fault', '--fault-at', '--token-prefix',
  '--codec', '--json', '--html', '--settle-timeout', '--latency-factor', '--latency-slack',
]);

/** Splits `--name value` and `--name=value` pairs; `--help` and `--quiet` take no value. */
function pairsOf(argv: readonly string[]): Map<string, string> {
  const pairs = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const eq = arg.indexOf('=');
    const name = arg.startsWith('--') && eq > 0 ? arg.slice(0, eq) : arg;
    if (name === '--help' || name === '-h' || name === '--quiet') {
      pairs.set(name === '-h' ? '--help' : name, '');
      continue;
    }
    if (!VALUE_OPTIONS.has(name)) throw new OptionError(`${name}: unknown option (see --help)`);
    const value = eq > 0 && arg.startsWith('--') ? arg.slice(eq + 1) : argv[++i];
    if (value === undefined) throw new OptionError(`${name}: missing value`);
    pairs.set(name, value);
  }
  return pairs;
}

/** `null` means `--help` was asked for. */
export function parseStressArgs(argv: readonly string[]): StressOptions | null {
  const pairs = pairsOf(argv);
  if (pairs.has('--help')) return null;
  const options = defaultOptions();
  const value = (name: string): string | undefined => pairs.get(name);
  const url = value('--url');
  if (url !== undefined) options.url = url;
  if (value('--channels') !== undefined) options.channels = parseCount('--channels', value('--channels')!, 1, 10_000);
  if (value('--clients') !== undefined) options.clients = parseCount('--clients', value('--clients')!, 1, 1000);
  if (value('--rate') !== undefined) options.rate = parsePositive('--rate', value('--rate')!, MAX_RATE);
  if (value('--duration') !== undefined) options.durationMs = parseDuration('--duration', value('--duration')!);
  if (value('--settle-timeout') !== undefined) options.settleTimeoutMs = parseDuration('--settle-timeout', value('--settle-timeout')!);
  if (value('--latency-factor') !== undefined) options.latencyFactor = parsePositive('--latency-factor', value('--latency-factor')!, 1000);
  if (value('--latency-slack') !== undefined) options.latencySlackMs = parseDuration('--latency-slack', value('--latency-slack')!.replace(/^(\d+(?:\.\d+)?)$/, '$1ms'));
  if (value('--token-prefix') !== undefined) options.tokenPrefix = value('--token-prefix')!;
  const codec = value('--codec');
  if (codec !== undefined) {
    if (codec !== 'json' && codec !== 'msgpack' && codec !== 'mixed') throw new OptionError(`--codec: expected json, msgpack or mixed, got ${JSON.stringify(codec)}`);
    options.codec = codec;
  }
  if (value('--json') !== undefined) options.jsonPath = value('--json')!;
  if (value('--html') !== undefined) options.htmlPath = value('--html')!;
  options.quiet = pairs.has('--quiet');
  const faultAt = value('--fault-at') === undefined ? null : parseDuration('--fault-at', value('--fault-at')!);
  const faults = value('--fault');
  if (faults !== undefined) {
    const defaultAt = faultAt ?? Math.round(options.durationMs / 3);
    options.faults = parseFaults(faults, defaultAt).map((fault) => ({ ...fault, atMs: fault.atMs ?? defaultAt }));
  } else if (faultAt !== null) {
    throw new OptionError('--fault-at: needs --fault');
  }
  validateStressOptions(options);
  return options;
}

/** Checks a whole options object (the CLI's, or one a test or script built by hand). */
export function validateStressOptions(options: StressOptions): void {
  if (!/^wss?:\/\/[^/]+$/.test(options.url.replace(/\/+$/, ''))) throw new OptionError(`--url: expected ws://host:port, got ${JSON.stringify(options.url)}`);
  if (!Number.isInteger(options.channels) || options.channels < 1) throw new OptionError(`--channels: must be a whole number of at least 1, got ${options.channels}`);
  if (!Number.isInteger(options.clients) || options.clients < 1) throw new OptionError(`--clients: must be a whole number of at least 1, got ${options.clients}`);
  if (!(options.rate > 0 && options.rate <= MAX_RATE)) throw new OptionError(`--rate: must be above 0 and at most ${MAX_RATE}, got ${options.rate}`);
  if (!(options.durationMs >= 100)) throw new OptionError(`--duration: must be at least 100ms, got ${options.durationMs}ms`);
  if (!(options.settleTimeoutMs >= 100)) throw new OptionError(`--settle-timeout: must be at least 100ms, got ${options.settleTimeoutMs}ms`);
  if (!TOKEN_ID.test(options.tokenPrefix) || options.tokenPrefix.length + String(options.channels - 1).length > 128) {
    throw new OptionError(`--token-prefix: codespace ids are up to 128 characters of [A-Za-z0-9_.:-], got ${JSON.stringify(options.tokenPrefix)}`);
  }
  for (const fault of options.faults) {
    if (fault.index >= options.channels) throw new OptionError(`--fault: codespace index ${fault.index} is not below --channels ${options.channels}`);
    if (fault.atMs >= options.durationMs) throw new OptionError(`--fault: time ${fault.atMs}ms is not within --duration ${options.durationMs}ms`);
  }
}
