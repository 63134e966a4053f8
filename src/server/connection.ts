/**
 * One client connection, whatever carries it: the WebSocket session is one adapter, an
 * in-process connection (embedding) another. It validates what the client says and forwards it
 * to its channel; it writes what the channel says to its transport.
 */
import { createHash } from 'node:crypto';
import type { ChannelRef, Member } from '../actors/channel_ref.ts';
import type { Supervisor } from '../actors/supervisor.ts';
import { encodeMessage } from '../protocol/codec.ts';
import { CloseCode, closeFor, ProtocolError, type CloseCodeEntry } from '../protocol/close_codes.ts';
import type { ClientMessage, Codec, ErrorMessage, Mode } from '../protocol/messages.ts';
import { isRefusal, parseClientMessage, type Refusal } from '../protocol/validate.ts';
import { RateLimiter } from './rate_limit.ts';
import type { JoinParams } from './upgrade_target.ts';

export interface Transport {
  /** `coalesce`: may be replaced by a newer message of the same key while the peer lags. */
  write(bytes: Uint8Array, coalesce?: string): void;
  close(code: number, reason: string): void;
}

/** Messages a client may send before its join completes (auth in flight); more is abuse. */
const MAX_EARLY_MESSAGES = 64;

/** What the hub counts for /metrics; every method is cheap (a counter increment). */
export interface ConnectionObserver {
  received(operation: string, codespace: string | null): void;
  refused(code: string): void;
  closedWith(code: number): void;
  detached(): void;
  /** Something other than a ProtocolError ended a connection: a server fault, logged. */
  failed(error: unknown, codespace: string | null): void;
}

export interface ConnectionOptions {
  observer?: ConnectionObserver;
  /** FAULT_INJECTION: accept `__fault` messages. */
  faults?: boolean;
  /** Messages per second, sustained (0 or absent: no limit), and in a burst. */
  ratePerS?: number;
  burst?: number;
}

let connectionCounter = 0;

/**
 * Who a change is deduplicated for (PROTOCOL.md §2): the hash of the client key, kept across
 * reconnects, or this connection alone. The key itself is a secret: it goes no further than here.
 */
export function authorOf(clientKey: string | undefined, connectionId: string): string {
  if (clientKey === undefined) return `c:${connectionId}`;
  return `k:${createHash('sha256').update(clientKey).digest('base64url').slice(0, 22)}`;
}

function newConnectionId(): string {
  // Random prefix keeps ids unique across instances; the counter keeps them unique here.
  return `${crypto.randomUUID().slice(0, 8)}-${(++connectionCounter).toString(36)}`;
}

export class Connection implements Member {
  readonly id = newConnectionId();
  readonly codec: Codec;
  mode: Mode = 'view_only';
  codespace: string | null = null;
  /** The deduplication scope of its changes: a hashed client key, or this connection. */
  author: string;
  /** Last time the client said anything (ms since epoch), for IDLE_TIMEOUT_MS. */
  lastActivity = Date.now();
  /** The channel has spoken to it (its `connected`): from then on it may be idle. */
  welcomed = false;
  #channel: ChannelRef | null = null;
  /** Made only for joins that wait on a token lookup (most never need one). */
  #left: AbortController | null = null;
  #early: unknown[] | null = [];
  /** Main's own answers to messages that came before the channel's `connected`. */
  #earlyReplies: Uint8Array[] | null = null;
  #closed = false;
  readonly #transport: Transport;
  readonly #supervisor: Supervisor;
  readonly #observer: ConnectionObserver | null;
  readonly #faults: boolean;
  readonly #limiter: RateLimiter | null;

  constructor(transport: Transport, codec: Codec, supervisor: Supervisor, options: ConnectionOptions = {}) {
    this.#transport = transport;
    this.codec = codec;
    this.#supervisor = supervisor;
    this.#observer = options.observer ?? null;
    this.#faults = options.faults ?? false;
    this.#limiter = options.ratePerS ? new RateLimiter(options.ratePerS, options.burst ?? options.ratePerS * 2, Date.now()) : null;
    this.author = authorOf(undefined, this.id);
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Aborts once this connection is gone: its token lookup need not go on for it. */
  get leftSignal(): AbortSignal {
    this.#left ??= new AbortController();
    if (this.#closed) this.#left.abort();
    return this.#left.signal;
  }

  get joined(): boolean {
    return this.#channel !== null;
  }

  /** Joins the codespace the token granted; messages that came early follow in order. */
  join(codespace: string, mode: Mode, params: JoinParams = {}): void {
    if (this.#closed || this.#channel) return;
    this.codespace = codespace;
    this.mode = mode;
    this.author = authorOf(params.clientKey, this.id);
    // A client cannot be idle before it could talk: the idle clock starts at the join.
    this.lastActivity = Date.now();
    this.#channel = this.#supervisor.join(this, codespace, params);
    const early = this.#early ?? [];
    this.#early = null;
    for (const value of early) this.receive(value);
  }

  /** A decoded client message. Throws ProtocolError when it is not a message at all. */
  receive(value: unknown): void {
    if (this.#closed) return;
    this.lastActivity = Date.now();
    if (this.#early) {
      if (this.#early.length >= MAX_EARLY_MESSAGES) throw new ProtocolError(CloseCode.tryAgainLater, 'too many messages before join');
      this.#early.push(value);
      return;
    }
    const message = parseClientMessage(value, this.#faults);
    if (this.#limiter && !this.#limiter.take(this.lastActivity)) return this.#rateLimited(message);
    if (isRefusal(message)) {
      this.#observer?.refused(message.code);
      const reply: ErrorMessage = { operation: 'error', data: { code: message.code, message: message.message } };
      if (message.ref !== undefined) reply.data.ref = message.ref;
      return this.#reply(encodeMessage(reply, this.codec));
    }
    this.#observer?.received(message.operation, this.codespace);
    this.#supervisor.forward(this, this.#channel!, message);
  }

  /**
   * Over the rate: the message is not forwarded. An edit is answered `rate_limited` (its author
   * resends it later); other messages get one answer a second; sustained abuse closes 4429.
   */
  #rateLimited(message: ClientMessage | Refusal): void {
    if (this.#limiter!.abusive) throw new ProtocolError(CloseCode.rateLimited, 'message rate far above the limit');
    const isEdit = !isRefusal(message) && message.operation === 'insert_value';
    if (!isEdit && !this.#limiter!.takeNotice()) return;
    this.#observer?.refused('rate_limited');
    const reply: ErrorMessage = { operation: 'error', data: { code: 'rate_limited', message: 'too many messages; slow down and send it again' } };
    const ref = isEdit ? (message as { ref?: string }).ref : undefined;
    if (ref !== undefined) reply.data.ref = ref;
    this.#reply(encodeMessage(reply, this.codec));
  }

  deliver(bytes: Uint8Array, coalesce?: string): void {
    if (this.#closed) return;
    this.#transport.write(bytes, coalesce);
    if (!this.welcomed && this.#channel) {
      // The idle clock starts once the client could talk: a channel that is slow to load (a
      // cold worker, a busy machine) must not cost its joiners their connection (4408).
      this.welcomed = true;
      this.lastActivity = Date.now();
      const replies = this.#earlyReplies;
      this.#earlyReplies = null;
      if (replies) for (const reply of replies) this.#transport.write(reply);
    }
  }

  /**
   * An answer main gives itself (a refusal, rate_limited). Before the channel's `connected` it
   * waits, so that `connected` stays the first message of a join (PROTOCOL.md §2).
   */
  #reply(bytes: Uint8Array): void {
    if (this.welcomed) return this.deliver(bytes);
    if (this.#closed) return;
    this.#earlyReplies ??= [];
    if (this.#earlyReplies.length >= MAX_EARLY_MESSAGES) throw new ProtocolError(CloseCode.tryAgainLater, 'too many messages before connected');
    this.#earlyReplies.push(bytes);
  }

  /** The one way an error ends a connection: its close code (STYLE.md rule 8), logged if unexpected. */
  fail(error: unknown): void {
    if (!(error instanceof ProtocolError)) this.#observer?.failed(error, this.codespace);
    this.closeWith(closeFor(error));
  }

  closeWith(close: CloseCodeEntry): void {
    if (this.#closed) return;
    this.#observer?.closedWith(close.code);
    this.#transport.close(close.code, close.reason);
    this.detach();
  }

  /** The transport is gone (closed by either side): leave the channel, free everything. */
  detach(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#left?.abort();
    this.#observer?.detached();
    this.#early = null;
    if (this.#channel) this.#supervisor.leave(this, this.#channel);
    this.#channel = null;
  }
}
