/**
 * The process's file descriptors, as Linux shows them in /proc (elsewhere: unknown, and the
 * guard below stays off). Read, never set: `ulimit -n` is the operator's.
 */
import { readdirSync, readFileSync } from 'node:fs';

/** The soft limit on open files, or null (not Linux, or unlimited). */
export function openFileLimit(): number | null {
  try {
    const match = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    return match ? Number(match[1]) : null;
  } catch {
    return null;
  }
}

/** Descriptors open now, or null where /proc is missing. */
export function openFileCount(): number | null {
  try {
    return readdirSync('/proc/self/fd').length;
  } catch {
    return null;
  }
}

/**
 * Says when to refuse new connections: once the open descriptors come within `reserve` of the
 * limit, until they are `reserve + slack` below it again. Counting reads a directory of every
 * open descriptor, so between counts each accepted connection adds one to the last count (closes
 * only make that an overestimate); a count is made when the estimate comes near the limit, at
 * most once per `minIntervalMs`, and past half the limit at least once a second, for what the
 * rest of the process opened. Below half the limit nothing is counted.
 */
export class DescriptorGuard {
  readonly limit: number;
  readonly #reserve: number;
  readonly #slack: number;
  readonly #minIntervalMs: number;
  readonly #count: () => number | null;
  #counted = 0;
  #countedAt = -Infinity;
  #acceptedSince = 0;
  #refusing = false;

  constructor(limit: number, options: { reserve: number; slack: number; minIntervalMs: number; count?: () => number | null }) {
    this.limit = limit;
    this.#reserve = options.reserve;
    this.#slack = options.slack;
    this.#minIntervalMs = options.minIntervalMs;
    this.#count = options.count ?? openFileCount;
    this.#recount(-Infinity);
  }

  /** The descriptors open at the last count. */
  get lastCount(): number {
    return this.#counted;
  }

  get refusing(): boolean {
    return this.#refusing;
  }

  /** A connection came in: true when it is to be refused. */
  arrived(now: number): boolean {
    const estimate = this.#counted + this.#acceptedSince + 1;
    const threshold = this.limit - this.#reserve - (this.#refusing ? this.#slack : 0);
    const near = estimate >= threshold;
    const due = estimate >= this.limit / 2 && now - this.#countedAt >= 1_000;
    if ((near || due) && now - this.#countedAt >= this.#minIntervalMs) this.#recount(now);
    this.#refusing = this.#counted + this.#acceptedSince + 1 >= threshold;
    if (!this.#refusing) this.#acceptedSince++;
    return this.#refusing;
  }

  #recount(now: number): void {
    const count = this.#count();
    if (count === null) return;
    this.#counted = count;
    this.#countedAt = now;
    this.#acceptedSince = 0;
  }
}
