/**
 * Per-connection message rate: a token bucket (`ratePerS` sustained, `burst` at once), and a
 * judgement of abuse: a client that keeps sending at more than twice the limit for three
 * seconds in a row is closed (4429) instead of being answered `rate_limited` forever.
 */
const ABUSE_FACTOR = 2;
const ABUSE_SECONDS = 3;

export class RateLimiter {
  readonly #ratePerMs: number;
  readonly #burst: number;
  readonly #ratePerS: number;
  #tokens: number;
  #refilledAt: number;
  #windowStart: number;
  #windowCount = 0;
  #strikes = 0;
  #noticedWindow = -1;

  constructor(ratePerS: number, burst: number, now: number) {
    this.#ratePerS = ratePerS;
    this.#ratePerMs = ratePerS / 1000;
    this.#burst = burst;
    this.#tokens = burst;
    this.#refilledAt = now;
    this.#windowStart = now;
  }

  /** Takes a token for one message; false when the bucket is empty. */
  take(now: number): boolean {
    this.#count(now);
    this.#tokens = Math.min(this.#burst, this.#tokens + (now - this.#refilledAt) * this.#ratePerMs);
    this.#refilledAt = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }

  /** True once the client has sent far above the limit for several seconds in a row. */
  get abusive(): boolean {
    return this.#strikes >= ABUSE_SECONDS;
  }

  /** True once per one-second window: refusals that need no answer get one notice a second. */
  takeNotice(): boolean {
    if (this.#noticedWindow === this.#windowStart) return false;
    this.#noticedWindow = this.#windowStart;
    return true;
  }

  #count(now: number): void {
    if (now - this.#windowStart >= 1000) {
      const windows = Math.floor((now - this.#windowStart) / 1000);
      this.#strikes = windows === 1 && this.#windowCount > ABUSE_FACTOR * this.#ratePerS ? this.#strikes + 1 : 0;
      this.#windowStart += windows * 1000;
      this.#windowCount = 0;
    }
    this.#windowCount++;
  }
}
