/**
 * The main thread's handle to one Channel actor: its port, its members, and the fan-out of the
 * bytes the channel encoded to each member's transport. It never decodes a fan-out payload.
 */
import type { MemoryBackplane } from '../backplane/memory_backplane.ts';
import { encodeMessage } from '../protocol/codec.ts';
import { CloseCode, type CloseCodeEntry } from '../protocol/close_codes.ts';
import type { ClientMessage, Codec, ErrorMessage, Mode } from '../protocol/messages.ts';
import type { ChannelInbound, ChannelOutbound, ChannelStats } from './envelopes.ts';
import { PortLink, type ThreadLink } from './port_link.ts';
import type { JoinParams } from '../server/upgrade_target.ts';

/** A connection as a channel sees it: transport-neutral (WebSocket session or in-process). */
export interface Member {
  readonly id: string;
  readonly codec: Codec;
  readonly mode: Mode;
  /** Whom its refs are deduplicated for: a hashed client key, or the connection itself. */
  readonly author: string;
  /** `coalesce`: this message may be replaced by a newer one of the same key if the member lags. */
  deliver(bytes: Uint8Array, coalesce?: string): void;
  closeWith(close: CloseCodeEntry): void;
}

/** Selections one member may have waiting behind its own edit; beyond, the oldest goes. */
const MAX_HELD_SELECTIONS = 256;

export type ChannelState = 'starting' | 'ready' | 'stopping' | 'stopped';

export interface ChannelRefEvents {
  channelReady(ref: ChannelRef): void;
  storeConflict(ref: ChannelRef, message: string): void;
  /** From a change reaching the channel to its broadcast written to every socket, in seconds. */
  fannedOut(seconds: number): void;
  /** A host offered its thread's link on this channel's port: the supervisor routes it. */
  threadLinkOffered(port: MessagePort): void;
}

export class ChannelRef {
  readonly codespace: string;
  state: ChannelState = 'starting';
  /** Thread id of the worker hosting the actor (0: in-process); -1 until it is ready. */
  thread = -1;
  /** When the last member left (ms since epoch), or null while it has members. */
  emptySince: number | null;
  restarts = 0;
  /** Set by the host while the actor's code runs (SpawnTask.busy); null in-process. */
  busy: Int32Array | null = null;
  /** Runs in the quarantine worker: it crashed or hung before. */
  quarantined = false;
  readonly #members = new Map<string, Member>();
  /**
   * Members the actor has welcomed (sent `connected` or `resync`): only they get broadcasts. One
   * joining in the same moment as another is in `#members` before the actor has seen its join,
   * and a `peer_joined` meant for the members before it must not reach it first (issue 11).
   */
  readonly #welcomed = new Set<string>();
  readonly #store: MemoryBackplane;
  readonly #events: ChannelRefEvents;
  /** The spawn the actor runs as: its envelopes on a thread link carry it. */
  #spawn: number;
  /** The channel's own port: its first envelopes, until the actor speaks over its thread's link. */
  #link: PortLink<ChannelOutbound, ChannelInbound>;
  #threadLink: ThreadLink<ChannelOutbound, ChannelInbound> | null = null;
  #endedListeners: (() => void)[] = [];
  /** Refs of insert_values forwarded and not answered yet, per member, oldest first. */
  readonly #unanswered = new Map<string, (string | undefined)[]>();
  /**
   * Main relays selections itself where the store is local (issue 15: half of what clients send
   * never crosses to the actor's thread). `#version`: the document's version as the actor last
   * said it, which a relayed selection carries. A member's selections wait while its `connected`
   * or an edit of its own is still with the actor (nothing it sent after may overtake them).
   */
  readonly #relaysSelections: boolean;
  #version = 0;
  readonly #heldSelections = new Map<string, ClientMessage[]>();
  /** Deliveries of selections relayed here since the supervisor last took the count (for /metrics). */
  #relayed = 0;

  constructor(codespace: string, spawn: number, port: MessagePort, store: MemoryBackplane, events: ChannelRefEvents, now: number, relaysSelections = false) {
    this.codespace = codespace;
    this.#relaysSelections = relaysSelections;
    this.#spawn = spawn;
    this.#store = store;
    this.#events = events;
    this.emptySince = now;
    this.#link = this.#linkTo(port);
  }

  get spawn(): number {
    return this.#spawn;
  }

  get size(): number {
    return this.#members.size;
  }

  members(): IterableIterator<Member> {
    return this.#members.values();
  }

  join(member: Member, params: JoinParams): void {
    this.#members.set(member.id, member);
    this.emptySince = null;
    const join: ChannelInbound = { type: 'join', session: member.id, mode: member.mode, codec: member.codec, author: member.author };
    if (params.resume !== undefined) join.resume = params.resume;
    if (params.epoch !== undefined) join.epoch = params.epoch;
    this.#send(join);
  }

  leave(member: Member, now: number): void {
    if (!this.#members.delete(member.id)) return;
    this.#welcomed.delete(member.id);
    this.#unanswered.delete(member.id);
    this.#heldSelections.delete(member.id);
    this.#send({ type: 'leave', session: member.id });
    if (this.#members.size === 0) this.emptySince = now;
  }

  forward(member: Member, msg: ClientMessage): void {
    if (msg.operation === 'create_selection' && this.#relaysSelections) return this.#relaySelection(member.id, msg);
    if (msg.operation === 'insert_value') {
      const refs = this.#unanswered.get(member.id);
      if (refs) refs.push(msg.ref);
      else this.#unanswered.set(member.id, [msg.ref]);
    }
    this.#send({ type: 'client', session: member.id, msg });
  }

  /** Deliveries of relayed selections since the last call. */
  takeRelayed(): number {
    const relayed = this.#relayed;
    this.#relayed = 0;
    return relayed;
  }

  /** Its `connected` or one of its edits is still with the actor: what it sends since waits. */
  #isBehind(sender: string): boolean {
    return !this.#welcomed.has(sender) || (this.#unanswered.get(sender)?.length ?? 0) > 0;
  }

  #relaySelection(sender: string, msg: ClientMessage): void {
    const held = this.#heldSelections.get(sender);
    if (held || this.#isBehind(sender)) {
      if (!held) this.#heldSelections.set(sender, [msg]);
      else if (held.push(msg) > MAX_HELD_SELECTIONS) held.shift();
      return;
    }
    this.#relayNow(sender, msg);
  }

  /** As the actor would: stamped with its sender and version, to every other welcomed member. */
  #relayNow(sender: string, msg: ClientMessage): void {
    const relayed = { ...msg, sender, version: this.#version };
    let json: Uint8Array | null = null;
    let msgpack: Uint8Array | null = null;
    // Encoded once per codec a recipient uses, at the first such recipient.
    const bytesFor = (codec: Codec): Uint8Array => (codec === 'json' ? (json ??= encodeMessage(relayed, 'json')) : (msgpack ??= encodeMessage(relayed, 'msgpack')));
    this.#relayed += this.#fanOut(sender, bytesFor, `s:${sender}`);
  }

  /**
   * After the batch being handled (the edit's broadcast comes after its ack in it): what `sender`
   * held goes out, if nothing holds it any more.
   */
  #releaseSelectionsSoon(sender: string): void {
    if (!this.#heldSelections.has(sender)) return;
    queueMicrotask(() => {
      const held = this.#heldSelections.get(sender);
      if (!held || this.#isBehind(sender)) return;
      this.#heldSelections.delete(sender);
      for (const msg of held) this.#relayNow(sender, msg);
    });
  }

  stop(): void {
    this.state = 'stopping';
    this.#send({ type: 'stop' });
  }

  /**
   * After a crash: a fresh actor (spawn `spawn`, on `port`) rebuilt from the store; every member
   * gets `resync` and keeps its connection.
   */
  restartOn(port: MessagePort, spawn: number): void {
    this.#link.close();
    this.#answerLostEdits();
    this.#welcomed.clear();
    this.state = 'starting';
    this.thread = -1;
    this.#spawn = spawn;
    this.#threadLink = null;
    this.#link = this.#linkTo(port);
    for (const member of this.#members.values()) {
      this.#send({ type: 'join', session: member.id, mode: member.mode, codec: member.codec, author: member.author, resync: true });
    }
  }

  /** Ends the channel's clients with `close` (e.g. 4500 after repeated failures). */
  closeMembers(close: CloseCodeEntry): void {
    for (const member of [...this.#members.values()]) member.closeWith(close);
    this.#members.clear();
    this.#welcomed.clear();
    this.#heldSelections.clear();
  }

  /** `listener` runs when the actor's task ends next (stop, crash or worker death). */
  onEnded(listener: () => void): void {
    this.#endedListeners.push(listener);
  }

  markEnded(): void {
    for (const listener of this.#endedListeners.splice(0)) listener();
  }

  detach(): void {
    this.state = 'stopped';
    this.#link.close();
  }

  /**
   * Edits the dead actor had not answered may or may not have been committed: each gets
   * `unavailable`, so its author resends it, and deduplication by `ref` makes that safe.
   */
  #answerLostEdits(): void {
    for (const [id, refs] of this.#unanswered) {
      const member = this.#members.get(id);
      if (!member) continue;
      for (const ref of refs) {
        const reply: ErrorMessage = { operation: 'error', data: { code: 'unavailable', message: 'the channel restarted before answering; send it again' } };
        if (ref !== undefined) reply.data.ref = ref;
        member.deliver(encodeMessage(reply, member.codec));
      }
    }
    this.#unanswered.clear();
  }

  #linkTo(port: MessagePort): PortLink<ChannelOutbound, ChannelInbound> {
    return new PortLink<ChannelOutbound, ChannelInbound>(port, (envelope) => this.#receive(envelope), (offered) => this.#events.threadLinkOffered(offered));
  }

  #send(envelope: ChannelInbound): void {
    if (this.#threadLink) this.#threadLink.send(this.#spawn, envelope);
    else this.#link.send(envelope);
  }

  /**
   * An envelope of this spawn over a thread link. The first one moves what main says there
   * too, after a `switch` on the channel's own port that tells the actor where they begin.
   */
  receiveVia(threadLink: ThreadLink<ChannelOutbound, ChannelInbound>, envelope: ChannelOutbound): void {
    if (this.#threadLink !== threadLink) {
      this.#link.send({ type: 'switch' });
      this.#threadLink = threadLink;
    }
    this.#receive(envelope);
  }

  #receive(envelope: ChannelOutbound): void {
    switch (envelope.type) {
      case 'to': {
        if (envelope.version !== undefined) this.#version = envelope.version;
        if (envelope.answer) this.#unanswered.get(envelope.session)?.shift();
        const member = this.#members.get(envelope.session);
        if (!member) return;
        // The actor's first message to a member is always its `connected` (or `resync`).
        this.#welcomed.add(envelope.session);
        member.deliver(envelope.data);
        this.#releaseSelectionsSoon(envelope.session);
        return;
      }
      case 'refuse_join':
        this.#members.get(envelope.session)?.closeWith(CloseCode.overloaded);
        return;
      case 'broadcast':
        if (envelope.version !== undefined) this.#version = envelope.version;
        this.#fanOut(envelope.except, (codec) => (codec === 'json' ? envelope.json : envelope.msgpack), envelope.coalesce);
        if (envelope.at !== undefined) this.#events.fannedOut((performance.timeOrigin + performance.now() - envelope.at) / 1000);
        return;
      case 'store_load':
        this.#send({ type: 'store_reply', id: envelope.id, doc: this.#store.loadNow(this.codespace) });
        return;
      case 'store_append': {
        const result = this.#store.commitNow(this.codespace, envelope.entry);
        if (!result.ok) this.#events.storeConflict(this, result.message);
        return;
      }
      case 'store_snapshot':
        this.#store.saveSnapshotNow(this.codespace, envelope.text, envelope.version);
        return;
      case 'ready':
        this.#version = envelope.version;
        this.state = this.state === 'stopping' ? 'stopping' : 'ready';
        this.thread = envelope.thread;
        this.#events.channelReady(this);
        return;
      case 'thread_beat':
        return; // the thread's, not a channel's: the supervisor takes it off the thread link
      case 'stopped':
        // The pool task settles too; the supervisor acts on that, once.
        return;
      default: {
        const unexpected: never = envelope;
        throw new TypeError(`unknown envelope from channel: ${JSON.stringify(unexpected)}`);
      }
    }
  }

  /** To every welcomed member but `except`, the bytes of its codec; returns how many got them. */
  #fanOut(except: string | null, bytesFor: (codec: Codec) => Uint8Array | null, coalesce: string | undefined): number {
    let delivered = 0;
    for (const member of this.#members.values()) {
      if (member.id === except || !this.#welcomed.has(member.id)) continue;
      const bytes = bytesFor(member.codec);
      if (!bytes) continue;
      member.deliver(bytes, coalesce);
      delivered++;
    }
    return delivered;
  }
}

/** True when the actor was in the middle of its own code (the one that hung its thread). */
export function wasRunning(ref: ChannelRef): boolean {
  return ref.busy !== null && Atomics.load(ref.busy, 0) === 1;
}
