/**
 * The Channel actor: one per codespace. It owns the document, orders changes into versions,
 * rebases concurrent edits, commits them to the backplane and fans them out. It holds no sockets:
 * everything it says leaves through `send` as envelopes with bytes already encoded.
 */
import type { Backplane, RemoteEvent } from '../backplane/backplane.ts';
import { TextDoc, type EditRequest, type LogEntry, type StoredDoc } from '../doc/text_doc.ts';
import { VersionlessClients } from '../doc/versionless_clients.ts';
import { encodeMessage } from '../protocol/codec.ts';
import type {
  Codec,
  ConnectedMessage,
  CreateSelectionRequest,
  ErrorCode,
  FaultKind,
  FaultRequest,
  InsertValueBroadcast,
  InsertValueRequest,
  Mode,
  PeerInfo,
} from '../protocol/messages.ts';
import type { ChannelInbound, ChannelOutbound, ChannelSettings, ChannelStats } from './envelopes.ts';

/**
 * What the actor accepts: every inbound envelope but the store replies its backplane takes and
 * the `switch` its host takes, what other instances publish, and the host's clock tick
 * (snapshots and expiry).
 */
export type ChannelMessage =
  | Exclude<ChannelInbound, { type: 'store_reply' } | { type: 'switch' }>
  | { type: 'remote'; event: RemoteEvent }
  | { type: 'tick'; now: number };

/** Commits lost to other instances in a row before the edit is answered `unavailable`. */
const MAX_COMMIT_ATTEMPTS = 32;

interface Member {
  mode: Mode;
  codec: Codec;
}

export interface ChannelOptions {
  codespace: string;
  doc: TextDoc;
  backplane: Backplane;
  send: (envelope: ChannelOutbound) => void;
  settings: ChannelSettings;
  /** Versions between background snapshots. */
  snapshotEvery: number;
  /** Milliseconds between expiry refreshes while clients are connected. */
  touchEveryMs: number;
  /** The hosting thread's event-loop lag p99 in seconds, reported with heartbeats. */
  threadLagS?: () => number;
}

/** Commit samples kept between two heartbeats; beyond, the newest replace the oldest. */
const MAX_COMMIT_SAMPLES = 2_000;

/** Milliseconds since the time origin shared by every thread of the process. */
function clockMs(): number {
  return performance.timeOrigin + performance.now();
}

export class Channel {
  readonly #codespace: string;
  #doc: TextDoc;
  readonly #backplane: Backplane;
  readonly #send: (envelope: ChannelOutbound) => void;
  readonly #settings: ChannelSettings;
  readonly #snapshotEvery: number;
  readonly #touchEveryMs: number;
  #members = new Map<string, Member>();
  #codecCounts: Record<Codec, number> = { json: 0, msgpack: 0 };
  #snapshotVersion: number;
  /** When the oldest change not in a snapshot was installed (tick time), or null. */
  #dirtySince: number | null = null;
  #lastTouch = 0;
  #now = 0;
  #stats: ChannelStats = { out: {}, errors: {}, commitS: [], lagS: 0 };
  readonly #threadLagS: () => number;
  /** When the client message being handled reached the channel (for the fan-out latency). */
  #receivedAt: number | undefined;
  /** What each version-less client holds, to place its edits and repair it (PROTOCOL.md §2). */
  #versionless: VersionlessClients;

  constructor(options: ChannelOptions) {
    this.#codespace = options.codespace;
    this.#doc = options.doc;
    this.#backplane = options.backplane;
    this.#send = options.send;
    this.#settings = options.settings;
    this.#snapshotEvery = options.snapshotEvery;
    this.#touchEveryMs = options.touchEveryMs;
    this.#snapshotVersion = options.doc.version;
    this.#threadLagS = options.threadLagS ?? (() => 0);
    this.#versionless = new VersionlessClients(options.doc.version, options.doc.content);
  }

  get version(): number {
    return this.#doc.version;
  }

  get text(): string {
    return this.#doc.toString();
  }

  handle(message: ChannelMessage): void | Promise<void> {
    switch (message.type) {
      case 'join':
        return this.#join(message.session, message.mode, message.codec, message.resume, message.resync === true);
      case 'leave':
        return this.#leave(message.session);
      case 'client':
        this.#receivedAt = clockMs();
        if (message.msg.operation === 'insert_value') return this.#edit(message.session, message.msg as InsertValueRequest);
        if (message.msg.operation === '__fault') return injectFault((message.msg as FaultRequest).kind);
        return this.#relaySelection(message.session, message.msg as CreateSelectionRequest);
      case 'heartbeat':
        return this.#heartbeat(message.seq);
      case 'remote':
        return this.#remote(message.event);
      case 'tick':
        return this.#tick(message.now);
      case 'stop':
        return this.#stop();
      default: {
        const unexpected: never = message;
        throw new TypeError(`channel got an unknown envelope ${JSON.stringify(unexpected)}`);
      }
    }
  }

  #join(session: string, mode: Mode, codec: Codec, resume: number | undefined, resync: boolean): void {
    const known = this.#members.get(session);
    if (known) this.#codecCounts[known.codec]--;
    this.#members.set(session, { mode, codec });
    this.#codecCounts[codec]++;
    const catchUps = this.#versionless.join(session, mode, resume === undefined);
    const missed = resume === undefined || resync ? null : this.#doc.entriesAfter(resume);
    const data = this.#welcomeOf(session, mode);
    if (missed) data.resumed = true;
    else data.code = this.#doc.toString();
    this.#to(session, { operation: resync ? 'resync' : 'connected', data });
    if (missed) for (const entry of missed) this.#to(session, broadcastOf(entry));
    for (const catchUp of catchUps) this.#to(session, catchUp);
    if (!known) this.#broadcast({ operation: 'peer_joined', data: { id: session, mode } }, session);
  }

  #leave(session: string): void {
    const member = this.#members.get(session);
    if (!member) return;
    this.#members.delete(session);
    this.#versionless.forget(session);
    this.#codecCounts[member.codec]--;
    this.#broadcast({ operation: 'peer_left', data: { id: session, mode: member.mode } }, null);
  }

  async #insertValue(session: string, request: InsertValueRequest): Promise<void> {
    const member = this.#members.get(session);
    if (!member) return; // it left while this message was on its way: nobody to answer
    if (member.mode !== 'edit') return this.#refuse(session, 'forbidden', 'this connection is view_only', request.ref);
    const edit = this.#editRequestOf(session, request);
    if (!edit) return;
    for (let attempt = 1; ; attempt++) {
      const prepared = this.#doc.prepare(edit, session);
      if (prepared.kind === 'duplicate') return this.#ack(session, prepared.version, request.ref);
      if (prepared.kind === 'rejected') return this.#refuse(session, prepared.code, prepared.message, request.ref);
      const started = performance.now();
      const committed = await this.#backplane.commit(this.#codespace, prepared.entry);
      this.#recordCommit((performance.now() - started) / 1000);
      if (committed.ok) {
        this.#doc.install(prepared.entry, prepared.set);
        this.#versionless.installed(prepared.entry, this.#doc.content, prepared.set);
        this.#ack(session, prepared.entry.version, request.ref);
        this.#broadcast(broadcastOf(prepared.entry), session);
        return this.#afterInstall();
      }
      if (committed.reason === 'unavailable' || attempt === MAX_COMMIT_ATTEMPTS) {
        return this.#refuse(session, 'unavailable', `not committed: ${committed.message}`, request.ref);
      }
      // Another instance committed first (catch up, then rebase over it), or the store lost
      // versions this channel holds (write them back).
      const recovered = committed.stored < this.#doc.version ? await this.#restoreStore() : await this.#catchUp();
      if (!recovered) return this.#refuse(session, 'unavailable', 'the store could not be read; send it again', request.ref);
    }
  }

  /** An insert_value, then the repair its author needs if it is a version-less client. */
  async #edit(session: string, request: InsertValueRequest): Promise<void> {
    await this.#insertValue(session, request);
    for (const repair of this.#versionless.repairsFor(session)) this.#to(session, repair);
  }

  /**
   * With a version, the edit is taken as made on it. Without (SharePython pages), the page's
   * model places it on the text it was made on; a page that is not modelled (view_only, or one
   * that sent a version once) has it taken as made on the document as it is now. Pinning that
   * base lets a lost commit race rebase it like any other. Undefined: refused here.
   */
  #editRequestOf(session: string, request: InsertValueRequest): EditRequest | undefined {
    if (request.version !== undefined) {
      this.#versionless.forget(session);
      return { changes: request.changes, docLength: request.doc_length, version: request.version, ref: request.ref };
    }
    const placed = this.#versionless.place(session, request.changes, request.doc_length);
    if (!placed) return { changes: request.changes, docLength: request.doc_length, version: this.#doc.version, ref: request.ref };
    if (placed.kind === 'placed') return { changes: placed.changes, version: placed.version, ref: request.ref };
    this.#refuse(session, 'invalid_change', placed.message, request.ref);
    return undefined;
  }

  /** Events from other instances, in the order their pub/sub delivered them. */
  async #remote(event: RemoteEvent): Promise<void> {
    switch (event.kind) {
      case 'entry':
        if (event.entry.version <= this.#doc.version) return; // our own echo, or already read from the log
        if (event.entry.version === this.#doc.version + 1) return this.#installCommitted(event.entry);
        await this.#catchUp(); // a gap: pub/sub lost something, the log has it
        return;
      case 'selection':
        return this.#broadcast(event.message, null);
      case 'reconnected':
        // Pub/sub drops what was published while it was away; and a Redis that restarted empty
        // must get back what this channel holds.
        if (await this.#catchUp()) await this.#restoreStore();
        return;
      default: {
        const unexpected: never = event;
        throw new TypeError(`unknown remote event ${JSON.stringify(unexpected)}`);
      }
    }
  }

  /** Installs what other instances committed after our version; false if the store is away. */
  async #catchUp(): Promise<boolean> {
    let entries: LogEntry[] | null;
    try {
      entries = await this.#backplane.readLog(this.#codespace, this.#doc.version);
    } catch {
      return false;
    }
    if (entries === null) return this.#reload();
    for (const entry of entries) this.#installCommitted(entry);
    return true;
  }

  /** A change committed elsewhere (or by a commit whose answer was lost): apply and fan out. */
  #installCommitted(entry: LogEntry): void {
    if (entry.version <= this.#doc.version) return;
    this.#doc.install(entry);
    this.#versionless.installed(entry, this.#doc.content);
    // Its author, if connected here, was answered `unavailable` and resends: dedup acks it.
    this.#broadcast(broadcastOf(entry), entry.sender);
    this.#afterInstall();
  }

  /** The log no longer reaches back to our version: rebuild from the store and resync everyone. */
  async #reload(): Promise<boolean> {
    let stored: StoredDoc;
    try {
      stored = await this.#backplane.load(this.#codespace);
    } catch {
      return false;
    }
    this.#doc = new TextDoc(stored, this.#settings);
    this.#versionless.reloaded(this.#doc.version, this.#doc.content);
    this.#snapshotVersion = stored.version;
    this.#dirtySince = null;
    for (const [session, member] of this.#members) {
      this.#to(session, { operation: 'resync', data: { ...this.#welcomeOf(session, member.mode), code: this.#doc.toString() } });
    }
    return true;
  }

  async #restoreStore(): Promise<boolean> {
    try {
      await this.#backplane.restore(this.#codespace, this.#storedDoc());
      return true;
    } catch {
      return false;
    }
  }

  #storedDoc(): StoredDoc {
    return { text: this.#doc.toString(), version: this.#doc.version, log: this.#doc.entriesAfter(this.#doc.oldestBase) ?? [] };
  }

  #afterInstall(): void | Promise<void> {
    if (this.#dirtySince === null) this.#dirtySince = this.#now;
    if (this.#doc.version - this.#snapshotVersion >= this.#snapshotEvery) return this.#snapshot();
  }

  async #tick(now: number): Promise<void> {
    this.#now = now;
    if (this.#dirtySince !== null && now - this.#dirtySince >= this.#settings.snapshotIntervalMs) await this.#snapshot();
    if (this.#members.size > 0 && now - this.#lastTouch >= this.#touchEveryMs) {
      this.#lastTouch = now;
      await this.#backplane.touch(this.#codespace).catch(() => {
        // Redis is away: the next tick tries again, long before the TTL runs out.
        this.#lastTouch = 0;
      });
    }
  }

  #relaySelection(session: string, request: CreateSelectionRequest): void {
    if (!this.#members.has(session)) return;
    const relayed = { ...request, sender: session, version: this.#doc.version };
    this.#broadcast(relayed, session);
    this.#backplane.publishSelection(this.#codespace, relayed);
  }

  async #stop(): Promise<void> {
    await this.#snapshot();
    this.#send({ type: 'stopped', version: this.#doc.version });
  }

  /** Best effort: the log already holds every committed change; a failed one is tried again. */
  async #snapshot(): Promise<void> {
    if (this.#doc.version === this.#snapshotVersion) return;
    const version = this.#doc.version;
    try {
      await this.#backplane.saveSnapshot(this.#codespace, this.#doc.toString(), version);
    } catch {
      return;
    }
    this.#snapshotVersion = version;
    if (this.#doc.version === version) this.#dirtySince = null;
  }

  #heartbeat(seq: number): void {
    const stats = this.#stats;
    stats.lagS = this.#threadLagS();
    this.#stats = { out: {}, errors: {}, commitS: [], lagS: 0 };
    this.#send({ type: 'heartbeat_ack', seq, stats });
  }

  #recordCommit(seconds: number): void {
    const samples = this.#stats.commitS;
    if (samples.length < MAX_COMMIT_SAMPLES) samples.push(seconds);
    else samples[Math.floor(Math.random() * MAX_COMMIT_SAMPLES)] = seconds;
  }

  #countOut(operation: string, recipients: number): void {
    this.#stats.out[operation] = (this.#stats.out[operation] ?? 0) + recipients;
  }

  #welcomeOf(session: string, mode: Mode): ConnectedMessage['data'] {
    return { id: session, mode, codespace: this.#codespace, version: this.#doc.version, peers: this.#peersOf(session) };
  }

  #peersOf(session: string): PeerInfo[] {
    const peers: PeerInfo[] = [];
    for (const [id, member] of this.#members) if (id !== session) peers.push({ id, mode: member.mode });
    return peers;
  }

  #ack(session: string, version: number, ref: string | undefined): void {
    this.#answer(session, ref === undefined ? { operation: 'ack', version } : { operation: 'ack', version, ref });
  }

  #refuse(session: string, code: ErrorCode, message: string, ref: string | undefined): void {
    this.#stats.errors[code] = (this.#stats.errors[code] ?? 0) + 1;
    // A version-less page applied its edit already: now it holds what the server does not.
    if (code !== 'forbidden') this.#versionless.refused(session);
    this.#answer(session, { operation: 'error', data: ref === undefined ? { code, message } : { code, message, ref } });
  }

  /** The one reply an insert_value gets. */
  #answer<M extends { operation: string }>(session: string, message: M): void {
    this.#countOut(message.operation, 1);
    const member = this.#members.get(session);
    if (member) this.#send({ type: 'to', session, data: encodeMessage(message, member.codec), answer: true });
  }

  #to<M extends { operation: string }>(session: string, message: M): void {
    this.#countOut(message.operation, 1);
    const member = this.#members.get(session);
    if (member) this.#send({ type: 'to', session, data: encodeMessage(message, member.codec) });
  }

  /** Encodes once per codec that some recipient uses; main writes the same bytes to each. */
  #broadcast<M extends { operation?: unknown }>(message: M, except: string | null): void {
    const excluded = except === null ? undefined : this.#members.get(except)?.codec;
    const jsonRecipients = this.#codecCounts.json - (excluded === 'json' ? 1 : 0);
    const msgpackRecipients = this.#codecCounts.msgpack - (excluded === 'msgpack' ? 1 : 0);
    if (jsonRecipients + msgpackRecipients === 0) return;
    this.#countOut(String(message.operation), jsonRecipients + msgpackRecipients);
    const envelope: ChannelOutbound = {
      type: 'broadcast',
      except,
      json: jsonRecipients > 0 ? encodeMessage(message, 'json') : null,
      msgpack: msgpackRecipients > 0 ? encodeMessage(message, 'msgpack') : null,
    };
    if (message.operation === 'insert_value' && this.#receivedAt !== undefined) envelope.at = this.#receivedAt;
    const key = coalesceKeyOf(message);
    if (key !== undefined) envelope.coalesce = key;
    this.#send(envelope);
  }
}

/**
 * FAULT_INJECTION only (main refuses `__fault` otherwise): the failures stress tests provoke.
 * `throw` crashes this channel; `hang` spins its worker's thread; `oom` allocates until the
 * worker's heap limit kills it.
 */
function injectFault(kind: FaultKind): void {
  switch (kind) {
    case 'throw':
      throw new Error('injected fault: throw');
    case 'hang':
      for (;;) {
        // spins until the supervisor terminates this worker
      }
    case 'oom': {
      const hoard: number[][] = [];
      for (;;) hoard.push(new Array(1 << 20).fill(hoard.length));
    }
  }
}

/** Selections coalesce per sender, presence per peer; everything else is delivered in full. */
function coalesceKeyOf(message: { operation?: unknown; sender?: unknown; data?: unknown }): string | undefined {
  if (message.operation === 'create_selection') return `s:${String(message.sender)}`;
  if (message.operation === 'peer_joined' || message.operation === 'peer_left') return `p:${String((message.data as { id?: unknown })?.id)}`;
  return undefined;
}

function broadcastOf(entry: LogEntry): InsertValueBroadcast {
  const message: InsertValueBroadcast = {
    operation: 'insert_value',
    sender: entry.sender,
    version: entry.version,
    changes: entry.changes,
    doc_length: entry.docLength,
  };
  if (entry.ref !== undefined) message.ref = entry.ref;
  return message;
}
