/**
 * The client SDK: one codespace, kept in sync over a WebSocket. It keeps one change in flight
 * and buffers the rest (PendingDoc), rebases what arrives over them, reconnects with exponential
 * backoff and full jitter, resumes with `?version=`, and resends whatever was not acknowledged
 * (deduplication by `ref` on the server makes that safe), so no local edit is lost.
 *
 * Browser-safe: it uses the standard WebSocket API only. In Node 20 pass `WebSocket` from `ws`.
 */
import { decodeServerFrame, encodeMessage } from '../protocol/codec.ts';
import {
  SUBPROTOCOL_JSON,
  SUBPROTOCOL_MSGPACK,
  type ChangeSpec,
  type Codec,
  type ConnectedData,
  type ErrorCode,
  type Mode,
  type PeerInfo,
} from '../protocol/messages.ts';
import { PendingDoc } from './pending.ts';

/** The part of the standard WebSocket the SDK uses (browsers, Deno, Bun, `ws`). */
export interface WebSocketLike {
  binaryType: string;
  readonly readyState: number;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
  send(data: string | Uint8Array): void;
  close(code?: number, reason?: string): void;
}

export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

export type ConnectionState = 'connecting' | 'open' | 'reconnecting' | 'closed';

export interface ClientOptions {
  /** Defaults to `globalThis.WebSocket`. */
  WebSocket?: WebSocketConstructor;
  codec?: Codec;
  /** Reconnect after a lost connection (default true). */
  reconnect?: boolean;
  minReconnectDelayMs?: number;
  maxReconnectDelayMs?: number;
  /** Wait before resending an edit the server answered `unavailable`. */
  resendDelayMs?: number;
  /** Prefix of this client's refs; random by default. */
  clientId?: string;
}

export interface RemoteChange {
  version: number;
  sender: string;
  /** As the server broadcast it: in the coordinates of the document at `version - 1`. */
  changes: ChangeSpec[];
  docLength: number;
  /**
   * The same change in the coordinates of this client's `text` just before it, which differ
   * from the server's while local edits are pending: what an editor showing `text` applies.
   */
  localChanges: ChangeSpec[];
}

export interface ClientEvents {
  state: ConnectionState;
  connected: ConnectedData;
  resync: ConnectedData;
  change: RemoteChange;
  ack: { version: number; ref: string | undefined };
  selection: Record<string, unknown>;
  presence: { kind: 'joined' | 'left'; peer: PeerInfo };
  error: { code: ErrorCode | 'closed' | 'local_edits_lost' | 'bad_message'; message: string; ref?: string };
  closed: { code: number; reason: string };
  /**
   * `text` changed by something other than a local edit or a remote change: a refused edit taken
   * back out, or a restart from the server's text. An editor replaces its whole content.
   */
  replaced: { text: string; reason: 'refused' | 'reset' };
}

type Listener<T> = (value: T) => void;

/** Carries what a listener threw through the client's own handling, to be thrown on as it was. */
class ListenerError extends Error {
  constructor(cause: unknown) {
    super('a listener threw', { cause });
  }
}

/** Closes after which reconnecting cannot help. */
const FINAL_CLOSE_CODES = new Set([4401, 4404]);

export class CodespaceClient {
  readonly #urls: readonly string[];
  readonly #token: string;
  readonly #options: Required<Omit<ClientOptions, 'WebSocket'>> & { WebSocket: WebSocketConstructor };
  readonly #listeners = new Map<keyof ClientEvents, Set<Listener<never>>>();
  #doc: PendingDoc | null = null;
  #socket: WebSocketLike | null = null;
  #state: ConnectionState = 'connecting';
  #id = '';
  #mode: Mode = 'edit';
  #attempt = 0;
  #urlIndex = 0;
  #timer: ReturnType<typeof setTimeout> | null = null;
  #resendTimer: ReturnType<typeof setTimeout> | null = null;
  #reconnects = 0;

  constructor(urls: string | readonly string[], token: string, options: ClientOptions = {}) {
    this.#urls = typeof urls === 'string' ? [urls] : urls;
    if (this.#urls.length === 0) throw new TypeError('connect needs at least one server URL');
    this.#token = token;
    const WebSocketClass = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (!WebSocketClass) throw new TypeError('no WebSocket implementation: pass options.WebSocket (e.g. from the ws package)');
    this.#options = {
      WebSocket: WebSocketClass,
      codec: options.codec ?? 'json',
      reconnect: options.reconnect ?? true,
      minReconnectDelayMs: options.minReconnectDelayMs ?? 100,
      maxReconnectDelayMs: options.maxReconnectDelayMs ?? 5_000,
      resendDelayMs: options.resendDelayMs ?? 200,
      clientId: options.clientId ?? Math.random().toString(36).slice(2, 10),
    };
    this.#open();
  }

  get text(): string {
    return this.#doc?.text ?? '';
  }

  /** The text at `version` as the server holds it: without local changes not yet acked. */
  get confirmedText(): string {
    return this.#doc?.confirmedText ?? '';
  }

  /** The last server version this client has seen (its own acked changes included). */
  get version(): number {
    return this.#doc?.version ?? 0;
  }

  get id(): string {
    return this.#id;
  }

  get mode(): Mode {
    return this.#mode;
  }

  get state(): ConnectionState {
    return this.#state;
  }

  get reconnects(): number {
    return this.#reconnects;
  }

  /** True when every local change has been acknowledged. */
  get synced(): boolean {
    return this.#doc !== null && !this.#doc.hasPending;
  }

  on<K extends keyof ClientEvents>(event: K, listener: Listener<ClientEvents[K]>): () => void {
    let set = this.#listeners.get(event);
    if (!set) this.#listeners.set(event, (set = new Set()));
    set.add(listener as Listener<never>);
    return () => set.delete(listener as Listener<never>);
  }

  /** A local edit, in the coordinates of the current `text`. */
  applyLocal(changes: readonly ChangeSpec[]): void {
    if (!this.#doc) throw new Error('not connected yet: wait for the connected event');
    this.#doc.applyLocal(changes);
    this.#flush();
  }

  setSelection(selections: readonly { anchor: number; head: number }[]): void {
    this.#send({ operation: 'create_selection', selections });
  }

  close(): void {
    this.#setState('closed');
    if (this.#timer) clearTimeout(this.#timer);
    if (this.#resendTimer) clearTimeout(this.#resendTimer);
    this.#socket?.close(1000, 'client closed');
    this.#socket = null;
  }

  #open(): void {
    const base = this.#urls[this.#urlIndex % this.#urls.length].replace(/\/+$/, '');
    const query = this.#doc ? `?version=${this.#doc.version}` : '';
    const protocol = this.#options.codec === 'json' ? SUBPROTOCOL_JSON : SUBPROTOCOL_MSGPACK;
    const socket = new this.#options.WebSocket(`${base}/codespace/${encodeURIComponent(this.#token)}/${query}`, [protocol]);
    socket.binaryType = 'arraybuffer';
    socket.onmessage = (event) => {
      if (this.#socket === socket) this.#receive(event.data);
    };
    socket.onclose = (event) => {
      if (this.#socket === socket) this.#lost(event.code, event.reason);
    };
    socket.onerror = () => {
      // Followed by close, which decides what comes next.
    };
    this.#socket = socket;
  }

  #lost(code: number, reason: string): void {
    this.#socket = null;
    this.#emit('closed', { code, reason });
    if (this.#state === 'closed') return;
    if (!this.#options.reconnect || FINAL_CLOSE_CODES.has(code)) {
      this.#emit('error', { code: 'closed', message: `closed with ${code} ${reason}` });
      return this.#setState('closed');
    }
    this.#setState('reconnecting');
    this.#scheduleReconnect();
  }

  /** Exponential backoff with full jitter; each attempt tries the next URL. */
  #scheduleReconnect(): void {
    const ceiling = Math.min(this.#options.maxReconnectDelayMs, this.#options.minReconnectDelayMs * 2 ** this.#attempt);
    this.#attempt++;
    this.#urlIndex++;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      if (this.#state !== 'closed') {
        this.#reconnects++;
        this.#open();
      }
    }, Math.random() * ceiling);
  }

  /** Drops this connection and comes back at once with a resume (used after a resync gap). */
  #reopen(): void {
    const socket = this.#socket;
    this.#socket = null;
    socket?.close(1000, 'resuming');
    this.#reconnects++;
    this.#open();
  }

  /**
   * A frame the SDK cannot use (undecodable, or a change that does not fit the document) must not
   * throw out of the socket's handler: it is reported, and the connection starts over (with
   * backoff), resuming from the last version that was applied; nothing local is lost.
   */
  #receive(data: unknown): void {
    try {
      const frame = typeof data === 'string' ? data : new Uint8Array(data as ArrayBuffer);
      this.#handle(decodeServerFrame(frame, this.#options.codec) as Record<string, any>);
    } catch (error) {
      // An application's listener that threw is its own error, not the server's.
      if (error instanceof ListenerError) throw error.cause;
      this.#emit('error', { code: 'bad_message', message: `unusable message from the server: ${error instanceof Error ? error.message : String(error)}` });
      this.#socket?.close(4400, 'unusable message');
    }
  }

  #handle(message: Record<string, any>): void {
    switch (message?.operation) {
      case 'connected':
        return this.#connected(message.data as ConnectedData, false);
      case 'resync':
        return this.#connected(message.data as ConnectedData, true);
      case 'insert_value':
        return this.#remoteChange(message);
      case 'ack':
        return this.#ack(message.version as number, message.ref as string | undefined);
      case 'error':
        return this.#refused(message.data as { code: ErrorCode; message: string; ref?: string });
      case 'create_selection':
        return this.#emit('selection', message);
      case 'peer_joined':
      case 'peer_left':
        return this.#emit('presence', { kind: message.operation === 'peer_joined' ? 'joined' : 'left', peer: message.data as PeerInfo });
      default:
        return; // a newer server's message: ignore it
    }
  }

  #connected(data: ConnectedData, resync: boolean): void {
    this.#id = data.id;
    this.#mode = data.mode;
    this.#attempt = 0;
    if (!this.#doc) {
      this.#doc = new PendingDoc(data.code ?? '', data.version, this.#options.clientId);
    } else if (data.resumed) {
      // The missed changes follow, before anything else; our in-flight one may be among them.
    } else if (data.version === this.#doc.version && data.code === this.#doc.confirmedText) {
      // Nothing was missed: pending changes stay as they are and go out again.
    } else if (data.version > this.#doc.version && data.version - this.#doc.version <= 100_000) {
      // The server is ahead and sent only its text: ask for the missed changes instead.
      return this.#reopen();
    } else {
      const before = this.#doc.text;
      if (this.#doc.reset(data.code ?? '', data.version)) {
        this.#emit('error', { code: 'local_edits_lost', message: 'the server could not resume this client; unsent local edits were dropped' });
      }
      if (this.#doc.text !== before) this.#emit('replaced', { text: this.#doc.text, reason: 'reset' });
    }
    this.#setState('open');
    this.#emit(resync ? 'resync' : 'connected', data);
    const inFlight = this.#doc.inFlight;
    if (inFlight) this.#send(inFlight.request);
    else this.#flush();
  }

  #remoteChange(message: Record<string, any>): void {
    const doc = this.#doc;
    // A repair for version-less pages (sender "server", PROTOCOL.md §2) has no version: not ours.
    if (!doc || typeof message.version !== 'number' || message.version <= doc.version) return;
    if (message.version !== doc.version + 1) return this.#reopen(); // a gap: resume fills it
    if (doc.inFlight && message.ref !== undefined && doc.inFlight.request.ref === message.ref) {
      // Our own change, seen among the missed ones after a reconnect: it counts as the ack.
      return this.#ack(message.version, message.ref);
    }
    const localChanges = doc.receiveRemote(message.version, message.changes, message.doc_length);
    this.#emit('change', { version: message.version, sender: message.sender, changes: message.changes, docLength: message.doc_length, localChanges });
  }

  #ack(version: number, ref: string | undefined): void {
    const doc = this.#doc;
    // A second ack for a change already seen (resent after a reconnect) carries nothing new.
    if (!doc?.inFlight || doc.inFlight.request.ref !== ref || version <= doc.version) return;
    // Versions before ours never reached us: resume fills the gap, our change among them.
    if (version !== doc.version + 1) return this.#reopen();
    doc.receiveAck(version, ref);
    this.#emit('ack', { version, ref });
    this.#flush();
  }

  #refused(error: { code: ErrorCode; message: string; ref?: string }): void {
    this.#emit('error', error);
    const doc = this.#doc;
    if (!doc?.inFlight || error.ref === undefined || doc.inFlight.request.ref !== error.ref) return;
    if (error.code === 'unavailable' || error.code === 'rate_limited') {
      const request = doc.inFlight.request;
      if (this.#resendTimer) clearTimeout(this.#resendTimer);
      this.#resendTimer = setTimeout(() => {
        this.#resendTimer = null;
        if (doc.inFlight?.request === request) this.#send(request);
      }, this.#options.resendDelayMs);
      return;
    }
    doc.dropInFlight();
    this.#emit('replaced', { text: doc.text, reason: 'refused' });
    this.#flush();
  }

  #flush(): void {
    if (this.#state !== 'open' || !this.#doc) return;
    const request = this.#doc.takeRequest();
    if (request) this.#send(request);
  }

  #send(message: unknown): void {
    const socket = this.#socket;
    if (!socket || socket.readyState !== 1 || this.#state !== 'open') return;
    socket.send(this.#options.codec === 'json' ? JSON.stringify(message) : encodeMessage(message, 'msgpack'));
  }

  #setState(state: ConnectionState): void {
    if (this.#state === state) return;
    this.#state = state;
    this.#emit('state', state);
  }

  #emit<K extends keyof ClientEvents>(event: K, value: ClientEvents[K]): void {
    const listeners = this.#listeners.get(event);
    if (!listeners) return;
    for (const listener of listeners) {
      try {
        (listener as Listener<ClientEvents[K]>)(value);
      } catch (error) {
        throw new ListenerError(error);
      }
    }
  }
}

/** Connects to a codespace; `urls` are server bases (`ws://host:port`), tried in turn on reconnect. */
export function connect(urls: string | readonly string[], token: string, options: ClientOptions = {}): CodespaceClient {
  return new CodespaceClient(urls, token, options);
}
