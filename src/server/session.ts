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

  constructor(socket: WebSocket, codec: Codec, hub: Hub, sessions: Set<Session>) {
    this.socket = socket;
    this.#codec = codec;
    this.#sessions = sessions;
    this.connection = hub.connection(this, codec);
    sessions.add(this);
    socket.on('message', this.#socketOnMessage);
    socket.on('pong', this.#socketOnPong);
    socket.on('close', this.#socketOnClose);
    // Without an 'error' listener an oversized or invalid frame crashes the process.
    socket.on('error', this.#socketOnError);
  }

  write(bytes: Uint8Array): void {
    if (this.socket.readyState === this.socket.OPEN) this.socket.send(bytes, this.#codec === 'msgpack' ? AS_BINARY : AS_TEXT);
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
