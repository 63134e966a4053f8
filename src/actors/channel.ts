/**
 * The Channel actor: one per codespace. It owns the document, orders changes into versions,
 * rebases concurrent edits, commits them to the backplane and fans them out. It holds no sockets:
 * everything it says leaves through `send` as envelopes with bytes already encoded.
 */
import type { ChangeSet, Text } from '@codemirror/state';
import type { Backplane, RemoteEvent } from '../backplane/backplane.ts';
import { entryBytes, TextDoc, type EditRequest, type LogEntry, type StoredDoc } from '../doc/text_doc.ts';
import { bringBack } from '../doc/history_merge.ts';
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
  | Exclude<ChannelInbound, { type: 'store_reply' } | { type: 'switch' } | { type: 'heartbeat' }>
  | { type: 'remote'; event: RemoteEvent }
  | { type: 'tick'; now: number };

/** The sender of changes the server makes itself (a history brought back, a repair); never a connection id. */
export const SERVER_SENDER = 'server';

/** Commits lost to other instances in a row before the edit is answered `unavailable`. */
const MAX_COMMIT_ATTEMPTS = 32;

interface Member {
  mode: Mode;
  codec: Codec;
  /** Whom its refs are deduplicated for (a hashed client key, or the connection). */
  author: string;
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
  /**
   * True while the hosting thread is short of memory: new joins get 1013 and edits `unavailable`
   * (both temporary), before the thread runs out and takes every channel on it down (issue 11).
   */
  overBudget?: () => boolean;
  /**
   * The channel's messages queued next that match, taken out of its mailbox (at most `max`): the
   * edits queued behind one are committed with it, in one write, where the store can.
   */
  takeQueued?: (match: (message: ChannelMessage) => boolean, max: number) => ChannelMessage[];
}

/** Edits committed together at most, when they are queued behind one another (issue 15). */
const MAX_EDITS_TOGETHER = 64;

/** Where one of several edits committed together stands before its answer goes out. */
type TogetherOutcome =
  | { kind: 'gone' }
  | { kind: 'refuse'; code: ErrorCode; message: string }
  | { kind: 'duplicate'; version: number }
  | { kind: 'commit'; entry: LogEntry; set: ChangeSet; content: Text };

function isVersionedEdit(message: ChannelMessage): message is Extract<ChannelMessage, { type: 'client' }> {
  return message.type === 'client' && message.msg.operation === 'insert_value' && (message.msg as InsertValueRequest).version !== undefined;
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
  readonly #overBudget: () => boolean;
  /** A reconcile with the store failed (it was not back yet): the next ticks try again. */
  #reconcilePending = false;
  /** Bytes of changes installed since the last snapshot: a snapshot is due past HISTORY_BYTES/2. */
  #bytesSinceSnapshot = 0;
  /** When the client message being handled reached the channel (for the fan-out latency). */
  #receivedAt: number | undefined;
  /** What each version-less client holds, to place its edits and repair it (PROTOCOL.md §2). */
  #versionless: VersionlessClients;
  readonly #takeQueued: ChannelOptions['takeQueued'] | null;
  /** The version main was last told (`to`, `broadcast`); -1: not yet. */
  #toldVersion = -1;

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
    this.#overBudget = options.overBudget ?? (() => false);
    this.#takeQueued = options.takeQueued ?? null;
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
        return this.#join(message);
      case 'leave':
        return this.#leave(message.session);
      case 'client':
        this.#receivedAt = clockMs();
        if (message.msg.operation === 'insert_value') return this.#edits(message.session, message.msg as InsertValueRequest);
        if (message.msg.operation === '__fault') return injectFault((message.msg as FaultRequest).kind);
        return this.#relaySelection(message.session, message.msg as CreateSelectionRequest);
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

  #join(join: Extract<ChannelMessage, { type: 'join' }>): void {
    const { session, mode, codec, author } = join;
    const resync = join.resync === true;
    const known = this.#members.get(session);
    if (!known && !resync && this.#overBudget()) return this.#send({ type: 'refuse_join', session });
    if (known) this.#codecCounts[known.codec]--;
    this.#members.set(session, { mode, codec, author });
    this.#codecCounts[codec]++;
    // Only a page that sends neither a client key nor a version is modelled (PROTOCOL.md §2).
    const catchUps = this.#versionless.join(session, mode, join.resume === undefined && author.startsWith('c:'));
    // A resume is served from this history only: with another epoch its versions mean other texts.
    const sameHistory = join.epoch === undefined || join.epoch === this.#doc.epoch;
    const missed = join.resume === undefined || resync || !sameHistory ? null : this.#doc.entriesAfter(join.resume);
    const data = this.#welcomeOf(session, mode);
    if (missed) data.resumed = true;
    else data.code = this.#doc.toString();
    this.#to(session, { operation: resync ? 'resync' : 'connected', data });
    if (missed) for (const entry of missed) this.#to(session, broadcastOf(entry));
    for (const catchUp of catchUps) this.#to(session, catchUp);
    // After a restart every member joins again with `resync`: the others already know it.
    if (!known && !resync) this.#broadcast({ operation: 'peer_joined', data: { id: session, mode } }, session);
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
    const refusal = this.#editRefusal(member);
    if (refusal) return this.#refuse(session, refusal.code, refusal.message, request.ref);
    const edit = this.#editRequestOf(session, request);
    if (!edit) return;
    for (let attempt = 1; ; attempt++) {
      const prepared = this.#doc.prepare(edit, session, member.author);
      if (prepared.kind === 'duplicate') return this.#ack(session, prepared.version, request.ref);
      if (prepared.kind === 'rejected') return this.#refuse(session, prepared.code, prepared.message, request.ref);
      const started = performance.now();
      const committed = await this.#backplane.commit(this.#codespace, prepared.entry, this.#doc.epoch);
      this.#recordCommit((performance.now() - started) / 1000);
      if (committed.ok) {
        this.#doc.install(prepared.entry, prepared.set);
        this.#versionless.installed(prepared.entry, this.#doc.content, prepared.set);
        this.#ack(session, prepared.entry.version, request.ref);
        this.#broadcast(broadcastOf(prepared.entry), session);
        return this.#afterInstall(prepared.entry);
      }
      if (committed.reason === 'unavailable' || attempt === MAX_COMMIT_ATTEMPTS) {
        return this.#refuse(session, 'unavailable', `not committed: ${committed.message}`, request.ref);
      }
      // Another instance committed first (catch up, then rebase over it), or the store lost the
      // history this channel holds (reconcile: restore it, or bring it back on top of the new one).
      const epoch = this.#doc.epoch;
      const lost = committed.epoch !== epoch || committed.stored < this.#doc.version;
      const recovered = lost ? await this.#reconcile() : await this.#catchUp();
      if (!recovered) return this.#refuse(session, 'unavailable', 'the store could not be read; send it again', request.ref);
      // Its base version belongs to a history that is gone; its author got `resync` and resends.
      if (this.#doc.epoch !== epoch) return this.#refuse(session, 'unavailable', 'the history changed; send it again', request.ref);
    }
  }

  /**
   * An insert_value; with a version, and a store that commits many at once, the versioned ones
   * queued right behind it come along: one write and one sync for all (issue 15).
   */
  #edits(session: string, request: InsertValueRequest): Promise<void> {
    const queued = this.#takeQueued && this.#backplane.commitMany && request.version !== undefined ? this.#takeQueued(isVersionedEdit, MAX_EDITS_TOGETHER - 1) : [];
    if (queued.length === 0) return this.#edit(session, request);
    const edits = [{ session, request }];
    for (const message of queued as Extract<ChannelMessage, { type: 'client' }>[]) edits.push({ session: message.session, request: message.msg as InsertValueRequest });
    return this.#editTogether(edits);
  }

  /**
   * Prepares each edit on a fork of the doc, on top of the ones before it, and commits what is
   * ready in one `commitMany`. Committed: the fork becomes the doc and every edit is answered in
   * order, as one after another would have been. Not committed (a conflict, the store away):
   * the fork is dropped and each edit takes the one-by-one path, with its retries and recovery.
   */
  async #editTogether(edits: { session: string; request: InsertValueRequest }[]): Promise<void> {
    const doc = this.#doc.fork();
    const outcomes: TogetherOutcome[] = [];
    const entries: LogEntry[] = [];
    for (const { session, request } of edits) {
      const member = this.#members.get(session);
      const refusal = member && this.#editRefusal(member);
      if (!member) outcomes.push({ kind: 'gone' });
      else if (refusal) outcomes.push({ kind: 'refuse', ...refusal });
      else {
        // A versioned edit: taken as made on its version (its author is no version-less page).
        const prepared = doc.prepare(this.#editRequestOf(session, request)!, session, member.author);
        if (prepared.kind === 'duplicate') outcomes.push({ kind: 'duplicate', version: prepared.version });
        else if (prepared.kind === 'rejected') outcomes.push({ kind: 'refuse', code: prepared.code, message: prepared.message });
        else {
          doc.install(prepared.entry, prepared.set);
          entries.push(prepared.entry);
          outcomes.push({ kind: 'commit', entry: prepared.entry, set: prepared.set, content: doc.content });
        }
      }
    }
    if (entries.length > 0) {
      const started = performance.now();
      const committed = await this.#backplane.commitMany!(this.#codespace, entries, this.#doc.epoch);
      const seconds = (performance.now() - started) / 1000;
      for (let i = 0; i < entries.length; i++) this.#recordCommit(seconds);
      if (!committed.ok) {
        for (const { session, request } of edits) await this.#edit(session, request);
        return;
      }
      this.#doc = doc;
    }
    for (let i = 0; i < edits.length; i++) {
      const { session, request } = edits[i];
      const outcome = outcomes[i];
      if (outcome.kind === 'gone') continue;
      if (outcome.kind === 'refuse') this.#refuse(session, outcome.code, outcome.message, request.ref);
      else if (outcome.kind === 'duplicate') this.#ack(session, outcome.version, request.ref);
      else {
        this.#versionless.installed(outcome.entry, outcome.content, outcome.set);
        this.#ack(session, outcome.entry.version, request.ref);
        this.#broadcast(broadcastOf(outcome.entry), session);
        this.#noteInstalled(outcome.entry);
      }
    }
    await this.#snapshotIfDue();
  }

  /** Why `member` may not edit now (view_only, or its thread short of memory), or null. */
  #editRefusal(member: Member): { code: ErrorCode; message: string } | null {
    if (member.mode !== 'edit') return { code: 'forbidden', message: 'this connection is view_only' };
    if (this.#overBudget()) return { code: 'unavailable', message: 'the server is short of memory; send it again later' };
    return null;
  }

  /** An insert_value, then the repair its author needs if it is a version-less client. */
  async #edit(session: string, request: InsertValueRequest): Promise<void> {
    await this.#insertValue(session, request);
    for (const repair of this.#versionless.repairsFor(session)) this.#to(session, repair);
  }

  /**
   * With a version, the edit is taken as made on it. Without (SharePython pages), the page's
   * model places it on the text it was made on; a page that is not modelled (view_only, or one
   * that sent a version once, or a client key) has it taken as made on the document as it is
   * now. Pinning that base lets a lost commit race rebase it like any other. Undefined: refused here.
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
        if (event.epoch !== this.#doc.epoch) {
          await this.#reconcileOrRetry(); // committed to another history than ours: never apply it
          return;
        }
        if (event.entry.version <= this.#doc.version) return; // our own echo, or already read from the log
        if (event.entry.version === this.#doc.version + 1) return this.#installCommitted(event.entry);
        await this.#catchUp(); // a gap: pub/sub lost something, the log has it
        return;
      case 'selection':
        return this.#broadcast(event.message, null);
      case 'reconnected':
        // Pub/sub drops what was published while it was away; and a Redis that restarted empty
        // must get back what this channel holds.
        await this.#reconcileOrRetry();
        return;
      default: {
        const unexpected: never = event;
        throw new TypeError(`unknown remote event ${JSON.stringify(unexpected)}`);
      }
    }
  }

  /**
   * Installs what other instances committed after our version; false if the store is away. A
   * store that holds another history is reconciled with, never read from as if it were ours.
   */
  async #catchUp(reconcileIfOther = true): Promise<boolean> {
    let log: { epoch: string; entries: LogEntry[] | null };
    try {
      log = await this.#backplane.readLog(this.#codespace, this.#doc.version);
    } catch {
      return false;
    }
    if (log.epoch !== this.#doc.epoch) return reconcileIfOther ? this.#reconcile() : false;
    if (log.entries === null) return this.#reload();
    for (const entry of log.entries) this.#installCommitted(entry);
    return true;
  }

  /** A change committed elsewhere (or by a commit whose answer was lost): apply and fan out. */
  #installCommitted(entry: LogEntry): void {
    if (entry.version <= this.#doc.version) return;
    this.#doc.install(entry);
    this.#versionless.installed(entry, this.#doc.content);
    // Its author, if connected here, was answered `unavailable` and resends: dedup acks it.
    this.#broadcast(broadcastOf(entry), entry.sender);
    void this.#afterInstall(entry);
  }

  /**
   * The store and this channel disagree about the history (issue 11): the store restarted empty,
   * lost its tail, or holds a history started since. The store's committed versions are never
   * overwritten. A store with no version at all gets ours back; one that lost only our latest
   * versions of the same history gets them appended; one with another history keeps it, and what
   * we acknowledged that it lacks comes back on top as one change. Then this channel adopts the
   * store's history and its members get `resync`. False if the store is away.
   */
  async #reconcile(): Promise<boolean> {
    for (let attempt = 1; attempt <= MAX_COMMIT_ATTEMPTS; attempt++) {
      let stored: StoredDoc;
      try {
        stored = await this.#backplane.load(this.#codespace);
      } catch {
        return false;
      }
      const doc = this.#doc;
      if (stored.epoch === doc.epoch && stored.version >= doc.version) return this.#catchUp(false);
      try {
        if (stored.version === 0 && doc.version > 0) {
          if (await this.#backplane.restore(this.#codespace, this.#storedDoc())) return true;
          continue; // someone committed meanwhile: look again
        }
        if (stored.epoch === doc.epoch && this.#sharesTail(stored)) {
          const appended = await this.#appendMissing(doc.entriesAfter(stored.version) ?? [], stored.epoch);
          if (appended === 'unavailable') return false;
          if (appended === 'done') return true;
          continue;
        }
      } catch {
        return false;
      }
      const changes = bringBack(stored.text, doc.toString());
      if (changes.length > 0) {
        const entry: LogEntry = { version: stored.version + 1, changes, docLength: stored.text.length, sender: SERVER_SENDER };
        const committed = await this.#backplane.commit(this.#codespace, entry, stored.epoch);
        if (!committed.ok && committed.reason === 'unavailable') return false;
        if (!committed.ok) continue;
      }
      return this.#reload();
    }
    return false;
  }

  /**
   * The subscriber can be back before the command connection is: a reconcile that could not
   * read the store is tried again at the next ticks until it can (else a Redis that restarted
   * empty would not get this channel's history back until someone edits).
   */
  async #reconcileOrRetry(): Promise<void> {
    this.#reconcilePending = !(await this.#reconcile());
  }

  /** The store's last entry is ours too: the store holds a prefix of our history. */
  #sharesTail(stored: StoredDoc): boolean {
    if (stored.version === 0) return true;
    const theirs = stored.log[stored.log.length - 1];
    const ours = this.#doc.entriesAfter(stored.version - 1)?.[0];
    return theirs !== undefined && ours !== undefined && JSON.stringify(entryKeyOf(theirs)) === JSON.stringify(entryKeyOf(ours));
  }

  /** Commits entries of our history the store lost, in order; 'again' when another got there first. */
  async #appendMissing(entries: LogEntry[], epoch: string): Promise<'done' | 'again' | 'unavailable'> {
    for (const entry of entries) {
      const committed = await this.#backplane.commit(this.#codespace, entry, epoch);
      if (!committed.ok) return committed.reason === 'unavailable' ? 'unavailable' : 'again';
    }
    return 'done';
  }

  /** The log no longer reaches back to our version, or the history changed: rebuild from the store and resync everyone. */
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

  #storedDoc(): StoredDoc {
    const doc = this.#doc;
    return { text: doc.toString(), version: doc.version, log: doc.entriesAfter(doc.oldestBase) ?? [], epoch: doc.epoch, refs: doc.refsBefore(doc.oldestBase + 1) };
  }

  #afterInstall(entry: LogEntry): void | Promise<void> {
    this.#noteInstalled(entry);
    return this.#snapshotIfDue();
  }

  #noteInstalled(entry: LogEntry): void {
    if (this.#dirtySince === null) this.#dirtySince = this.#now;
    this.#bytesSinceSnapshot += entryBytes(entry);
  }

  #snapshotIfDue(): void | Promise<void> {
    // The store keeps every change after its snapshot: large edits make a snapshot due sooner.
    const bytesDue = this.#settings.historyBytes > 0 && this.#bytesSinceSnapshot > this.#settings.historyBytes / 2;
    if (bytesDue || this.#doc.version - this.#snapshotVersion >= this.#snapshotEvery) return this.#snapshot();
  }

  async #tick(now: number): Promise<void> {
    this.#now = now;
    if (this.#reconcilePending) await this.#reconcileOrRetry();
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
      await this.#backplane.saveSnapshot(this.#codespace, this.#doc.toString(), version, this.#doc.epoch);
    } catch {
      return;
    }
    this.#snapshotVersion = version;
    if (this.#doc.version === version) {
      this.#dirtySince = null;
      this.#bytesSinceSnapshot = 0;
    }
  }

  /**
   * What the channel did since the last call, or null if nothing. Its thread answers heartbeats
   * with it outside the mailbox (host_link.ts), so a channel waiting on its store still reports:
   * a heartbeat asks whether the thread is alive, not whether this channel is idle.
   */
  takeStats(): ChannelStats | null {
    const stats = this.#stats;
    if (stats.commitS.length === 0 && isEmpty(stats.out) && isEmpty(stats.errors)) return null;
    stats.lagS = this.#threadLagS();
    this.#stats = { out: {}, errors: {}, commitS: [], lagS: 0 };
    return stats;
  }

  /**
   * The host's clock, read from its one timer for every channel on the thread (host_link.ts):
   * true when a tick has work (a snapshot pending, or the store's expiry to refresh while members
   * are here), and only then is one posted. Between ticks the channel still knows the time.
   */
  advanceClock(now: number): boolean {
    this.#now = now;
    return this.#reconcilePending || this.#dirtySince !== null || (this.#members.size > 0 && now - this.#lastTouch >= this.#touchEveryMs);
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
    return { id: session, mode, codespace: this.#codespace, version: this.#doc.version, epoch: this.#doc.epoch, peers: this.#peersOf(session) };
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
    if (member) this.#send(this.#withVersion({ type: 'to', session, data: encodeMessage(message, member.codec), answer: true }));
  }

  #to<M extends { operation: string }>(session: string, message: M): void {
    this.#countOut(message.operation, 1);
    const member = this.#members.get(session);
    if (member) this.#send(this.#withVersion({ type: 'to', session, data: encodeMessage(message, member.codec) }));
  }

  /** Tells main the document's version when it changed since it last did (main relays selections with it). */
  #withVersion<E extends Extract<ChannelOutbound, { type: 'to' | 'broadcast' }>>(envelope: E): E {
    if (this.#doc.version !== this.#toldVersion) envelope.version = this.#toldVersion = this.#doc.version;
    return envelope;
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
    this.#send(this.#withVersion(envelope));
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

function isEmpty(record: Record<string, number>): boolean {
  for (const _ in record) return false;
  return true;
}

/** Selections coalesce per sender, presence per peer; everything else is delivered in full. */
function coalesceKeyOf(message: { operation?: unknown; sender?: unknown; data?: unknown }): string | undefined {
  if (message.operation === 'create_selection') return `s:${String(message.sender)}`;
  if (message.operation === 'peer_joined' || message.operation === 'peer_left') return `p:${String((message.data as { id?: unknown })?.id)}`;
  return undefined;
}

/** What identifies a committed entry across instances (its author's key stays out of the comparison order). */
function entryKeyOf(entry: LogEntry): unknown[] {
  return [entry.version, entry.docLength, entry.sender, entry.ref ?? null, entry.changes.map((change) => [change.from, change.to, change.insert])];
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
