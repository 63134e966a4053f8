/**
 * One WebSocket: frames in, bytes out. The adapter between `ws` and a transport-neutral
 * Connection; the only place a ProtocolError becomes a close (STYLE.md rule 8).
 */
import type { WebSocket, RawData } from 'ws';
import { decodeFrame } from '../protocol/codec.ts';
import { CloseCode, ProtocolError } from '../protocol/close_codes.ts';
import type { Codec } from '../protocol/messages.ts';
import type { Connection, Transport } from './connection.ts';
import type { Hub } from './hub.ts';

// One options object per frame type, not one per send: this is the fan-out path.
const AS_BINARY = { binary: true } as const;
const AS_TEXT = { binary: false } as const;

function toBytes(data: RawData): Uint8Array {
  if (Array.isArray(data)) return Buffer.concat(data);
  return data instanceof ArrayBuffer ? new Uint8Array(data) : data;
}

export class Session implements Transport {
  readonly socket: WebSocket;
  readonly connection: Connection;
  /** Cleared by each ping sweep, set by the pong: the ws `isAlive` pattern, one timer for all. */
  isAlive = true;
  readonly #codec: Codec;
  readonly #sessions: Set<Session>;
  readonly #hub: Hub;
  /** SLOW_CONSUMER_BYTES: past it selections and presence are held, newest per key; 4x closes. */
  readonly #softLimit: number;
  /** Selections and presence held back while the client lags, newest per key, oldest key first. */
  #held: Map<string, Uint8Array> | null = null;
  #drainTimer: ReturnType<typeof setTimeout> | null = null;
  #slowClosed = false;

  constructor(socket: WebSocket, codec: Codec, hub: Hub, sessions: Set<Session>) {
    this.socket = socket;
    this.#codec = codec;
    this.#sessions = sessions;
    this.#hub = hub;
    this.#softLimit = hub.config.slowConsumerBytes;
    this.connection = hub.connection(this, codec);
    sessions.add(this);
    socket.on('message', this.#socketOnMessage);
    socket.on('pong', this.#socketOnPong);
    socket.on('close', this.#socketOnClose);
    // Without an 'error' listener an oversized or invalid frame crashes the process.
    socket.on('error', this.#socketOnError);
  }

  /**
   * Nobody waits for a slow reader: what it has not read piles up in its own send queue. Past
   * the soft limit its selections and presence are held (newest per key wins, PROTOCOL.md §3);
   * past four times that it is closed with 1013. Edits are never dropped.
   */
  write(bytes: Uint8Array, coalesce?: string): void {
    if (this.socket.readyState !== this.socket.OPEN) return;
    const queued = this.socket.bufferedAmount;
    if (queued > 4 * this.#softLimit) return this.#closeSlow(queued);
    if (coalesce !== undefined && (this.#held !== null || queued > this.#softLimit)) {
      this.#held ??= new Map();
      this.#held.delete(coalesce); // re-inserted last: the newest goes out in its own turn
      this.#held.set(coalesce, bytes);
      this.#scheduleDrainCheck();
      return;
    }
    this.socket.send(bytes, this.#codec === 'msgpack' ? AS_BINARY : AS_TEXT);
  }

  #scheduleDrainCheck(): void {
    if (this.#drainTimer) return;
    this.#drainTimer = setTimeout(() => {
      this.#drainTimer = null;
      if (this.socket.readyState !== this.socket.OPEN || !this.#held) return;
      if (this.socket.bufferedAmount > this.#softLimit) return this.#scheduleDrainCheck();
      const held = this.#held;
      this.#held = null;
      for (const bytes of held.values()) this.socket.send(bytes, this.#codec === 'msgpack' ? AS_BINARY : AS_TEXT);
    }, 50);
  }

  #closeSlow(queued: number): void {
    if (this.#slowClosed) return;
    this.#slowClosed = true;
    this.#hub.log('slow_consumer_closed', { codespace: this.connection.codespace, id: this.connection.id, queuedBytes: queued });
    this.#hub.slowConsumerCloses++;
    this.connection.closeWith(CloseCode.slowConsumer);
    // The close frame waits behind what the client has not read; do not wait for it for ever.
    setTimeout(() => this.socket.terminate(), 5_000).unref?.();
  }

  close(code: number, reason: string): void {
    if (this.socket.readyState === this.socket.OPEN || this.socket.readyState === this.socket.CONNECTING) {
      this.socket.close(code, reason);
    }
  }

  terminate(): void {
    this.socket.terminate();
    this.#release();
  }

  #release(): void {
    if (this.#drainTimer) clearTimeout(this.#drainTimer);
    this.#drainTimer = null;
    this.#held = null;
    this.#sessions.delete(this);
    this.connection.detach();
  }

  readonly #socketOnMessage = (data: RawData, isBinary: boolean): void => {
    try {
      if (isBinary !== (this.#codec === 'msgpack')) throw new ProtocolError(CloseCode.unsupportedData);
      this.connection.receive(decodeFrame(toBytes(data), this.#codec));
    } catch (error) {
      const close = error instanceof ProtocolError ? error.close : CloseCode.internalError;
      this.connection.closeWith(close);
      this.#sessions.delete(this);
    }
  };

  readonly #socketOnPong = (): void => {
    this.isAlive = true;
  };

  readonly #socketOnClose = (): void => {
    this.#release();
  };

  readonly #socketOnError = (): void => {
    // ws closes the socket itself with the right code (1007, 1009, 1002); 'close' follows.
  };
}
