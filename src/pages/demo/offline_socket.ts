/**
 * A WebSocket for the SDK that follows the browser's own idea of being online. When the browser
 * goes offline the socket is closed at once (a socket can otherwise look open for a long time
 * after the network went, and DevTools' offline mode leaves open sockets alone); a socket the SDK
 * opens while offline waits for the browser to come back, so the reconnect happens the moment it
 * does, not after the next backoff. Local edits wait in the SDK meanwhile and go out on resume.
 */
import type { WebSocketLike } from '../../client/client.ts';

/** The close code the SDK sees when the browser went offline: 1006, as for a lost connection. */
const OFFLINE_CLOSE = { code: 1006, reason: 'browser offline' };

export class OfflineAwareWebSocket implements WebSocketLike {
  binaryType = 'arraybuffer';
  onopen: ((event: unknown) => void) | null = null;
  onmessage: ((event: { data: unknown }) => void) | null = null;
  onclose: ((event: { code: number; reason: string }) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;
  readonly #url: string;
  readonly #protocols: string | string[] | undefined;
  #socket: WebSocket | null = null;
  #closed = false;

  constructor(url: string, protocols?: string | string[]) {
    this.#url = url;
    this.#protocols = protocols;
    window.addEventListener('offline', this.#windowOnOffline);
    if (navigator.onLine) this.#open();
    else window.addEventListener('online', this.#windowOnOnline);
  }

  get readyState(): number {
    if (this.#closed) return 3;
    return this.#socket ? this.#socket.readyState : 0;
  }

  send(data: string | Uint8Array): void {
    this.#socket?.send(data as string | Uint8Array<ArrayBuffer>);
  }

  close(code?: number, reason?: string): void {
    if (this.#closed) return;
    this.#socket?.close(code, reason);
    this.#finish(code ?? 1000, reason ?? '', false);
  }

  #open(): void {
    const socket = new WebSocket(this.#url, this.#protocols);
    socket.binaryType = this.binaryType as BinaryType;
    socket.onopen = (event) => this.onopen?.(event);
    socket.onmessage = (event) => this.onmessage?.(event);
    socket.onerror = (event) => this.onerror?.(event);
    socket.onclose = (event) => this.#finish(event.code, event.reason, true);
    this.#socket = socket;
  }

  readonly #windowOnOnline = (): void => {
    window.removeEventListener('online', this.#windowOnOnline);
    if (!this.#closed && !this.#socket) this.#open();
  };

  readonly #windowOnOffline = (): void => {
    if (this.#closed) return;
    this.#socket?.close(1000, 'browser offline');
    this.#finish(OFFLINE_CLOSE.code, OFFLINE_CLOSE.reason, true);
  };

  #finish(code: number, reason: string, tell: boolean): void {
    if (this.#closed) return;
    this.#closed = true;
    window.removeEventListener('offline', this.#windowOnOffline);
    window.removeEventListener('online', this.#windowOnOnline);
    if (this.#socket) {
      this.#socket.onopen = this.#socket.onmessage = this.#socket.onerror = this.#socket.onclose = null;
    }
    if (tell) this.onclose?.({ code, reason });
  }
}
