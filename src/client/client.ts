/**
 * The client SDK: one codespace, kept in sync over a WebSocket or any other transport
 * (transport.ts). It keeps one change in flight and buffers the rest (PendingDoc), rebases what
 * arrives over them, reconnects with exponential backoff and full jitter, resumes with
 * `?version=`, and resends whatever was not acknowledged (deduplication by `ref` per client key
 * on the server makes that safe), so no local edit is lost.
 *
 * Browser-safe: it uses the standard WebSocket API only. In Node 20 pass `WebSocket` from `ws`.
 */
import type { ChangeSpec, ConnectedData, ErrorCode, Mode, PeerInfo } from '../protocol/messages.ts';
import type { ClientEvents, ClientOptions, ConnectionState } from './events.ts';
import { PendingDoc } from './pending.ts';
import {
  CLIENT_KEY_PATTERN,
  FINAL_CLOSE_CODES,
  randomClientKey,
  transportsFor,
  type ClientLink,
  type ClientTransport,
  type LinkQuery,
  type ServerTarget,
} from './transport.ts';

export type { ClientLink, ClientTransport, LinkEvents, LinkQuery, ServerTarget, WebSocketConstructor, WebSocketLike } from './transport.ts';
export { randomClientKey } from './transport.ts';
export type { ClientEvents, ClientOptions, ConnectionState, RemoteChange } from './events.ts';

/** A value a selection may carry beside `selections` (PROTOCOL.md §2). */
export type SelectionField = string | number | boolean | null;

type Listener<T> = (value: T) => void;

/** Carries what a listener threw through the client's own handling, to be thrown on as it was. */
class ListenerError extends Error {
  constructor(cause: unknown) {
    super('a listener threw', { cause });
  }
}

type Settings = Required<Omit<ClientOptions, 'WebSocket' | 'codec' | 'clientKey'>>;

export class CodespaceClient {
  readonly #transports: readonly ClientTransport[];
  readonly #options: Settings;
  readonly #clientKey: string;
  readonly #listeners = new Map<keyof ClientEvents, Set<Listener<never>>>();
  #doc: PendingDoc | null = null;
  #link: ClientLink | null = null;
  /** The history the document's version belongs to (`connected.data.epoch`), once known. */
  #epoch: string | undefined;
  #state: ConnectionState = 'connecting';
  #id = '';
  #mode: Mode = 'edit';
  #attempt = 0;
  #transportIndex = 0;
  #timer: ReturnType<typeof setTimeout> | null = null;
  #resendTimer: ReturnType<typeof setTimeout> | null = null;
  #reconnects = 0;

  /**
   * `target`: server URLs (`ws://host:port`, tried in turn on reconnect, with `token`), a full
   * `ws://host:port/codespace/<token>/` (no `token` needed), or transports (an in-process one).
   * Programming errors (no WebSocket, a malformed client key) throw; a URL that cannot work
   * ends in an `error` event (`bad_url`) right after this returns.
   */
  constructor(target: ServerTarget, token?: string, options: ClientOptions = {}) {
    const clientKey = options.clientKey ?? randomClientKey();
    if (!CLIENT_KEY_PATTERN.test(clientKey)) throw new TypeError('clientKey must be 16 to 64 characters of [A-Za-z0-9_-]');
    this.#clientKey = clientKey;
    this.#options = {
      reconnect: options.reconnect ?? true,
      minReconnectDelayMs: options.minReconnectDelayMs ?? 100,
      maxReconnectDelayMs: options.maxReconnectDelayMs ?? 5_000,
      resendDelayMs: options.resendDelayMs ?? 200,
      clientId: options.clientId ?? Math.random().toString(36).slice(2, 10),
    };
    const transports = transportsFor(target, token, options.WebSocket, options.codec ?? 'json');
    if (typeof transports === 'string') {
      this.#transports = [];
      queueMicrotask(() => this.#fail('bad_url', transports));
      return;
    }
    this.#transports = transports;
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

  /**
   * `fields`: scalar top-level fields relayed with the selection (PROTOCOL.md §2: at most 16,
   * strings of at most 256 characters), e.g. the user's `name` and `color` for remote cursors.
   */
  setSelection(selections: readonly { anchor: number; head: number }[], fields: Readonly<Record<string, SelectionField>> = {}): void {
    this.#send({ ...fields, operation: 'create_selection', selections });
  }

  close(): void {
    this.#setState('closed');
    this.#stopTimers();
    this.#link?.close(1000, 'client closed');
    this.#link = null;
  }

  #open(): void {
    const transport = this.#transports[this.#transportIndex % this.#transports.length];
    const query: LinkQuery = { client: this.#clientKey };
    if (this.#doc) {
      query.version = this.#doc.version;
      if (this.#epoch !== undefined) query.epoch = this.#epoch;
    }
    let link: ClientLink | null = null;
    try {
      link = transport.open(query, {
        message: (frame) => {
          if (this.#link === link) this.#receive(transport, frame);
        },
        close: (code, reason) => {
          if (this.#link === link) this.#lost(code, reason);
        },
      });
    } catch (error) {
      // The WebSocket API refused the URL: no retry can change that. Told after this turn, so
      // that a listener added right after connect() hears it.
      const message = error instanceof Error ? error.message : String(error);
      queueMicrotask(() => this.#fail('bad_url', message));
      return;
    }
    this.#link = link;
  }

  #lost(code: number, reason: string): void {
    this.#link = null;
    this.#emit('closed', { code, reason });
    if (this.#state === 'closed') return;
    if (!this.#options.reconnect || FINAL_CLOSE_CODES.has(code)) return this.#fail('closed', `closed with ${code} ${reason}`);
    this.#retry();
  }

  #retry(): void {
    if (this.#state === 'closed') return;
    this.#setState('reconnecting');
    this.#scheduleReconnect();
  }

  /** A failure that waiting will not cure: state `closed` for good, then one `error` event. */
  #fail(code: 'closed' | 'bad_url', message: string): void {
    if (this.#state === 'closed') return;
    this.#stopTimers();
    this.#setState('closed');
    this.#emit('error', { code, message });
  }

  #stopTimers(): void {
    if (this.#timer) clearTimeout(this.#timer);
    if (this.#resendTimer) clearTimeout(this.#resendTimer);
    this.#timer = this.#resendTimer = null;
  }

  /** Exponential backoff with full jitter; each attempt tries the next URL. */
  #scheduleReconnect(): void {
    const ceiling = Math.min(this.#options.maxReconnectDelayMs, this.#options.minReconnectDelayMs * 2 ** this.#attempt);
    this.#attempt++;
    this.#transportIndex++;
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
    const link = this.#link;
    this.#link = null;
    link?.close(1000, 'resuming');
    this.#reconnects++;
    this.#open();
  }

  /**
   * A frame the SDK cannot use (undecodable, or a change that does not fit the document) must not
   * throw out of the link's handler: it is reported, and the connection starts over (with
   * backoff), resuming from the last version that was applied; nothing local is lost.
   */
  #receive(transport: ClientTransport, frame: unknown): void {
    try {
      this.#handle(transport.decode(frame) as Record<string, any>);
    } catch (error) {
      // An application's listener that threw is its own error, not the server's.
      if (error instanceof ListenerError) throw error.cause;
      this.#emit('error', { code: 'bad_message', message: `unusable message from the server: ${error instanceof Error ? error.message : String(error)}` });
      // Ended from this side: 4400 tells the server why, and is not the server's final word.
      const link = this.#link;
      this.#link = null;
      link?.close(4400, 'unusable message');
      this.#emit('closed', { code: 4400, reason: 'unusable message' });
      this.#retry();
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
    const epoch = epochOf(data);
    // A history lost and started again: our version means nothing in the new one.
    const sameHistory = epoch === undefined || this.#epoch === undefined || epoch === this.#epoch;
    this.#epoch = epoch ?? this.#epoch;
    if (!this.#doc) {
      this.#doc = new PendingDoc(data.code ?? '', data.version, this.#options.clientId);
    } else if (data.resumed) {
      // The missed changes follow, before anything else; our in-flight one may be among them.
    } else if (data.version === this.#doc.version && data.code === this.#doc.confirmedText) {
      // Nothing was missed: pending changes stay as they are and go out again.
    } else if (resync && sameHistory && data.version > this.#doc.version && data.version - this.#doc.version <= 100_000) {
      // A resync ahead of us sends only its text: ask for the missed changes by a resume. (A
      // full `connected` is the answer to a resume the server could not serve: asking again
      // would loop; its text is all there is.)
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

  #send(message: object): void {
    if (this.#state === 'open') this.#link?.send(message);
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

/** `connected.data.epoch` (PROTOCOL.md §1), when the server gives one. */
function epochOf(data: ConnectedData): string | undefined {
  const epoch = (data as { epoch?: unknown }).epoch;
  return typeof epoch === 'string' ? epoch : undefined;
}

/**
 * Connects to a codespace:
 * - `connect('ws://host:port', token)`, or several URLs, tried in turn on reconnect;
 * - `connect('ws://host:port/codespace/<token>/')`, the URL the server prints (or several);
 * - `connect(transport)`: any `ClientTransport`, such as an in-process connection to an embedded
 *   hub (`inProcessTransport(hub, token)` from `codespace`), with no socket at all.
 */
export function connect(urls: string | readonly string[], token: string, options?: ClientOptions): CodespaceClient;
export function connect(urls: string | readonly string[], options?: ClientOptions): CodespaceClient;
export function connect(transport: ClientTransport | readonly ClientTransport[], options?: ClientOptions): CodespaceClient;
export function connect(target: ServerTarget, tokenOrOptions?: string | ClientOptions, options: ClientOptions = {}): CodespaceClient {
  if (typeof tokenOrOptions === 'string') return new CodespaceClient(target, tokenOrOptions, options);
  return new CodespaceClient(target, undefined, tokenOrOptions ?? options);
}
