/**
 * Structured logs (pino): one JSON line per event that matters, to stderr, at `LOG_LEVEL`.
 * The rest of the server only sees a `LogFn(event, fields)`; the level is chosen here, by event.
 */
import { pino, type Logger } from 'pino';

export type LogFn = (event: string, fields: Record<string, unknown>) => void;

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Events that mean something went wrong somewhere; everything else is `info`. */
const WARN_EVENTS = new Set([
  'channel_crashed',
  'channel_failed',
  'channel_unavailable',
  'channel_refused',
  'worker_replaced',
  'worker_hung',
  'slow_consumer_closed',
  'rate_limit_closed',
  'backplane_down',
  'store_conflict',
  'join_failed',
  'fault_injected',
  'fault_injection_enabled',
  'worker_error',
  'shutdown_timeout',
  'instance_died',
  'accept_paused',
  'descriptors_low',
  'request_failed',
  'upgrade_failed',
  'connection_failed',
  'link_error',
  'sweep_failed',
  'tick_failed',
]);
const DEBUG_EVENTS = new Set(['peer_dead']);

export function createLogger(level: LogLevel, destination: NodeJS.WritableStream = process.stderr): { log: LogFn; logger: Logger } {
  const logger = pino({ level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime }, destination as never);
  const log: LogFn = (event, fields) => {
    if (WARN_EVENTS.has(event)) logger.warn({ event, ...fields });
    else if (DEBUG_EVENTS.has(event)) logger.debug({ event, ...fields });
    else logger.info({ event, ...fields });
  };
  return { log, logger };
}
