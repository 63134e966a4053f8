/**
 * One WebSocket: frames in, bytes out. The adapter between `ws` and a transport-neutral
 * Connection. An error on a socket ends as `connection.fail(error)`, the one place an error
 * becomes a close (STYLE.md rule 8).
 */
import { setImmediate } from 'node:timers';
import * as wsModule from 'ws';
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

/**
 * The fan-out fast path (ARCHITECTURE.md, facts measured): server frames are unmasked, so a
 * broadcast is framed once and the same bytes go to every socket; and each socket's frames of
 * one event-loop turn leave in one write, not one syscall each. It needs ws's `Sender.frame` and
 * the net socket under the WebSocket; where either is missing (Bun swaps in its own `ws`),
 * every message goes through `ws.send` as before.
 */
type FrameFn = (data: Uint8Array, options: { fin: boolean; opcode: number; mask: boolean; readOnly: boolean; rsv1: boolean }) => Uint8Array[];
const frameWith = (wsModule as { Sender?: { frame?: unknown } }).Sender?.frame as FrameFn | undefined;
const FRAME_TEXT = { fin: true, opcode: 0x01, mask: false, readOnly: true, rsv1: false };
const FRAME_BINARY = { fin: true, opcode: 0x02, mask: false, readOnly: true, rsv1: false };

interface RawSocket {
  write(data: Uint8Array): boolean;
  readonly writableLength: number;
}

function rawSocketOf(socket: WebSocket): RawSocket | null {
  if (typeof frameWith !== 'function') return null;
  const raw = (socket as unknown as { _socket?: Partial<RawSocket> })._socket;
  return raw && typeof raw.write === 'function' && typeof raw.writableLength === 'number' ? (raw as RawSocket) : null;
}

/**
 * The last payload framed, per opcode: a fan-out hands every recipient the same Uint8Array, so
 * one entry is enough to frame each broadcast once (the reference keeps identity unambiguous).
 */
const lastFramed: { text: [Uint8Array | null, Buffer | null]; binary: [Uint8Array | null, Buffer | null] } = { text: [null, null], binary: [null, null] };

function framed(bytes: Uint8Array, binary: boolean): Buffer {
  const cache = binary ? lastFramed.binary : lastFramed.text;
  if (cache[0] === bytes) return cache[1]!;
  const parts = frameWith!(bytes, binary ? FRAME_BINARY : FRAME_TEXT);
  const frame = Buffer.concat(parts);
  cache[0] = bytes;
  cache[1] = frame;
  return frame;
}

/** An empty ping (RFC 6455 §5.5.2), as every sweep sends one to every connection: framed once. */
const PING_FRAME = Buffer.from([0x89, 0x00]);

/** Shared by every idle session (never pushed to): a queue is only allocated once there is something to write. */
const EMPTY_QUEUE: Buffer[] = [];

/** Sessions with frames queued this turn, written out together on the next check phase. */
let dirty: Session[] = [];
let flushScheduled = false;

/**
 * Sessions holding presence (PRESENCE_DELAY_MS): `peer_joined`/`peer_left` wait there, framed,
 * for the next ones to the same client, so that a burst of joins to a codespace costs each member
 * a few writes, not one per join. One timer serves them all. Nothing overtakes them: any other
 * message to that client takes them along first, and a close sends them before its close frame.
 */
const presenceHolders = new Set<Session>();
let presenceTimer: ReturnType<typeof setTimeout> | null = null;

function holdPresenceOf(session: Session, delayMs: number): void {
  presenceHolders.add(session);
  if (presenceTimer === null) presenceTimer = setTimeout(releaseDuePresence, delayMs);
}

function releaseDuePresence(): void {
  presenceTimer = null;
  const now = performance.now();
  let nextDue = Infinity;
  for (const session of presenceHolders) {
    const due = session.presenceDue;
    if (due <= now + 1) session.releasePresence();
    else nextDue = Math.min(nextDue, due);
  }
  if (presenceHolders.size > 0) presenceTimer = setTimeout(releaseDuePresence, Math.max(1, nextDue - now));
}

/** Presence held for one client beyond this is written at once. */
const MAX_HELD_PRESENCE_BYTES = 64 * 1024;

function flushDirtyOnImmediate(): void {
  flushScheduled = false;
  // A fan-out frames within one turn; past it, the cache would only keep a payload (and the
  // batch it is a view of) alive.
  lastFramed.text[0] = lastFramed.text[1] = lastFramed.binary[0] = lastFramed.binary[1] = null;
  const sessions = dirty;
  dirty = [];
  for (const session of sessions) session.flush();
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
  /** The net socket under the WebSocket, for the fast path; null: everything goes by `ws.send`. */
  readonly #raw: RawSocket | null;
  /** Frames waiting for this turn's write, and their bytes. */
  #queue: Buffer[] = EMPTY_QUEUE;
  #queuedBytes = 0;
  /** `ws.send`'s options for this session's frames (the path without the fast one). */
  readonly #sendOptions: typeof AS_BINARY | typeof AS_TEXT;
  readonly #presenceDelayMs: number;
  /** Presence frames held (PRESENCE_DELAY_MS), their bytes, and when they are due out. */
  #presence: Uint8Array[] | null = null;
  #presenceBytes = 0;
  presenceDue = 0;

  constructor(socket: WebSocket, codec: Codec, hub: Hub, sessions: Set<Session>) {
    this.socket = socket;
    this.#codec = codec;
    this.#sessions = sessions;
    this.#hub = hub;
    this.#softLimit = hub.config.slowConsumerBytes;
    this.#presenceDelayMs = hub.config.presenceDelayMs;
    this.#sendOptions = codec === 'msgpack' ? AS_BINARY : AS_TEXT;
    this.connection = hub.connection(this, codec);
    this.#raw = rawSocketOf(socket);
    sessions.add(this);
    Session.#listenTo(socket, this);
  }

  /**
   * Nobody waits for a slow reader: what it has not read piles up in its own send queue. Past
   * the soft limit its selections and presence are held (newest per key wins, PROTOCOL.md §3);
   * past four times that it is closed with 1013. Edits are never dropped.
   */
  write(bytes: Uint8Array, coalesce?: string): void {
    if (this.socket.readyState !== this.socket.OPEN) return;
    const queued = this.bufferedAmount;
    if (queued > 4 * this.#softLimit) return this.#closeSlow(queued);
    if (coalesce !== undefined && (this.#held !== null || queued > this.#softLimit)) {
      this.#held ??= new Map();
      this.#held.delete(coalesce); // re-inserted last: the newest goes out in its own turn
      this.#held.set(coalesce, bytes);
      this.#scheduleDrainCheck();
      return;
    }
    if (this.#presenceDelayMs > 0 && coalesce !== undefined && coalesce.startsWith('p:')) return this.#holdPresence(bytes);
    this.#send(bytes);
  }

  /** Held framed on the fast path (framed once for every recipient of the fan-out), as they are otherwise. */
  #holdPresence(bytes: Uint8Array): void {
    const frame = this.#raw === null ? bytes : framed(bytes, this.#codec === 'msgpack');
    if (this.#presence === null) {
      this.#presence = [];
      this.presenceDue = performance.now() + this.#presenceDelayMs;
      holdPresenceOf(this, this.#presenceDelayMs);
    }
    this.#presence.push(frame);
    this.#presenceBytes += frame.length;
    if (this.#presenceBytes > MAX_HELD_PRESENCE_BYTES) this.releasePresence();
  }

  /** The held presence goes into this turn's write, ahead of anything queued after it. */
  releasePresence(): void {
    const held = this.#presence;
    if (held === null) return;
    this.#presence = null;
    this.#presenceBytes = 0;
    presenceHolders.delete(this);
    if (this.socket.readyState !== this.socket.OPEN) return;
    if (this.#raw === null) for (const bytes of held) this.socket.send(bytes, this.#sendOptions);
    else for (const frame of held) this.#enqueue(frame as Buffer);
  }

  /** What `ws` has not written yet plus this turn's queue: the slow-consumer measure. */
  get bufferedAmount(): number {
    return this.#queuedBytes + this.#presenceBytes + this.socket.bufferedAmount;
  }

  #send(bytes: Uint8Array): void {
    if (this.#presence !== null) this.releasePresence();
    if (this.#raw === null) {
      this.socket.send(bytes, this.#sendOptions);
      return;
    }
    this.#enqueue(framed(bytes, this.#codec === 'msgpack'));
  }

  #enqueue(frame: Buffer): void {
    if (this.#queue.length === 0) {
      if (this.#queue === EMPTY_QUEUE) this.#queue = [];
      dirty.push(this);
      if (!flushScheduled) {
        flushScheduled = true;
        setImmediate(flushDirtyOnImmediate);
      }
    }
    this.#queue.push(frame);
    this.#queuedBytes += frame.length;
  }

  /**
   * The sweep's ping: on the fast path the same two bytes for every connection, queued with
   * this turn's frames (10,000 connections are 400 pings a second at the default interval).
   */
  ping(): void {
    if (this.#raw === null) return this.socket.ping();
    if (this.socket.readyState === this.socket.OPEN) this.#enqueue(PING_FRAME);
  }

  /**
   * Writes this turn's frames in one write. Before `ws` writes a frame of its own that must come
   * after them (close), the queue is flushed first; once the socket is closing (a close frame
   * went out), nothing more may follow it, and the queue is dropped.
   */
  flush(): void {
    const queue = this.#queue;
    if (queue.length === 0) return;
    const bytes = this.#queuedBytes;
    this.#queuedBytes = 0;
    if (this.socket.readyState === this.socket.OPEN) this.#raw!.write(queue.length === 1 ? queue[0] : Buffer.concat(queue, bytes));
    queue.length = 0; // reused: written (or copied) above, and dropped once the socket is closing
  }

  #scheduleDrainCheck(): void {
    if (this.#drainTimer) return;
    this.#drainTimer = setTimeout(() => {
      this.#drainTimer = null;
      if (this.socket.readyState !== this.socket.OPEN || !this.#held) return;
      if (this.bufferedAmount > this.#softLimit) return this.#scheduleDrainCheck();
      const held = this.#held;
      this.#held = null;
      for (const bytes of held.values()) this.#send(bytes);
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
      this.releasePresence();
      this.flush(); // what was sent before the close goes before its close frame
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
    this.#presence = null;
    presenceHolders.delete(this);
    this.#queue = EMPTY_QUEUE;
    this.#queuedBytes = 0;
    this.#sessions.delete(this);
    this.connection.detach();
  }

  /**
   * The socket's listeners are shared by every session (one function each, not four closures
   * per connection: issue 15's idle memory); each finds its session on the socket.
   */
  static readonly #onMessage = function sessionOnMessage(this: WebSocket, data: RawData, isBinary: boolean): void {
    const session = sessionOf(this);
    try {
      if (isBinary !== (session.#codec === 'msgpack')) throw new ProtocolError(CloseCode.unsupportedData);
      session.connection.receive(decodeFrame(toBytes(data), session.#codec));
    } catch (error) {
      session.connection.fail(error);
      session.#sessions.delete(session);
    }
  };

  static readonly #onPong = function sessionOnPong(this: WebSocket): void {
    sessionOf(this).isAlive = true;
  };

  static readonly #onClose = function sessionOnClose(this: WebSocket): void {
    sessionOf(this).#release();
  };

  static readonly #onError = function sessionOnError(): void {
    // ws closes the socket itself with the right code (1007, 1009, 1002); 'close' follows.
  };

  static #listenTo(socket: WebSocket, session: Session): void {
    (socket as SocketWithSession)[SESSION] = session;
    socket.on('message', Session.#onMessage);
    socket.on('pong', Session.#onPong);
    socket.on('close', Session.#onClose);
    // Without an 'error' listener an oversized or invalid frame crashes the process.
    socket.on('error', Session.#onError);
  }
}

const SESSION = Symbol('session');
type SocketWithSession = WebSocket & { [SESSION]?: Session };

function sessionOf(socket: WebSocket): Session {
  return (socket as SocketWithSession)[SESSION]!;
}
