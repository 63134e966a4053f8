/**
 * The main thread's view of Redis, for `/readyz` and the log: one connection that only watches.
 * (Channels use their worker's own connections; this one never carries their traffic.)
 */
import { Redis } from 'ioredis';

export type BackplaneState = 'connecting' | 'up' | 'down';

export class RedisHealth {
  readonly #redis: Redis;
  #state: BackplaneState = 'connecting';
  readonly #onChange: (state: BackplaneState) => void;

  constructor(url: string, onChange: (state: BackplaneState) => void) {
    this.#onChange = onChange;
    this.#redis = new Redis(url, {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      retryStrategy: (attempt) => Math.min(50 * 2 ** Math.min(attempt, 6), 2_000),
      connectionName: 'codespace-health',
    });
    this.#redis.on('ready', () => this.#set('up'));
    this.#redis.on('close', () => this.#set('down'));
    this.#redis.on('error', function healthOnError() {
      // Seen as 'close'; reconnects by itself.
    });
  }

  get state(): BackplaneState {
    return this.#state;
  }

  /** Resolves once connected, or after `timeoutMs` whatever the state. */
  async settle(timeoutMs: number): Promise<BackplaneState> {
    if (this.#state === 'up') return this.#state;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      this.#redis.once('ready', () => {
        clearTimeout(timer);
        resolve();
      });
    });
    return this.#state;
  }

  close(): void {
    this.#redis.disconnect();
  }

  #set(state: BackplaneState): void {
    if (state === this.#state) return;
    const previous = this.#state;
    this.#state = state;
    if (previous !== 'connecting' || state === 'up') this.#onChange(state);
  }
}
