/**
 * A WebSocket for the SDK that lets the stress tool see every frame: what arrives before the SDK
 * decides what to keep (a gap, a stale version or a foreign change would otherwise vanish inside
 * it), and what the SDK sends (which tokens went out under which `ref`). Frames arriving after
 * the SDK closed a socket are not shown, as the SDK ignores them too.
 */
import { WebSocket } from 'ws';
import type { WebSocketConstructor, WebSocketLike } from '../client/client.ts';

export interface FrameTap {
  /** A new socket of the client, to this URL (a resume carries `?version=`). */
  opening(url: string): void;
  incoming(data: string | ArrayBuffer): void;
  outgoing(data: string | Uint8Array): void;
  /** The SDK threw while handling a frame: recorded, so that one bad frame cannot end the run. */
  sdkThrew(error: unknown): void;
}

class TappedSocket implements WebSocketLike {
  onopen: ((event: unknown) => void) | null = null;
  onmessage: ((event: { data: unknown }) => void) | null = null;
  onclose: ((event: { code: number; reason: string }) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;
  readonly #socket: WebSocket;
  readonly #tap: FrameTap;
  #closedByClient = false;

  constructor(url: string, protocols: string | string[] | undefined, tap: FrameTap) {
    this.#tap = tap;
    tap.opening(url);
    this.#socket = new WebSocket(url, protocols, { perMessageDeflate: false });
    this.#socket.binaryType = 'arraybuffer';
    this.#socket.onopen = (event) => this.onopen?.(event);
    this.#socket.onmessage = (event) => this.#deliver(event.data as string | ArrayBuffer);
    this.#socket.onclose = (event) => this.onclose?.({ code: event.code, reason: event.reason });
    this.#socket.onerror = (event) => this.onerror?.(event);
  }

  get binaryType(): string {
    return this.#socket.binaryType;
  }

  set binaryType(value: string) {
    // The tap decodes ArrayBuffers; the SDK asks for the same.
    if (value !== 'arraybuffer') throw new TypeError(`the stress tap reads arraybuffer frames, not ${value}`);
  }

  get readyState(): number {
    return this.#socket.readyState;
  }

  send(data: string | Uint8Array): void {
    this.#tap.outgoing(data);
    this.#socket.send(data);
  }

  close(code?: number, reason?: string): void {
    this.#closedByClient = true;
    this.#socket.close(code, reason);
  }

  #deliver(data: string | ArrayBuffer): void {
    if (this.#closedByClient) return;
    this.#tap.incoming(data);
    try {
      this.onmessage?.({ data });
    } catch (error) {
      this.#tap.sdkThrew(error);
    }
  }
}

/** A WebSocket constructor for one SDK client, whose sockets all report to `tap`. */
export function tappedWebSocket(tap: FrameTap): WebSocketConstructor {
  return class extends TappedSocket {
    constructor(url: string, protocols?: string | string[]) {
      super(url, protocols, tap);
    }
  };
}
