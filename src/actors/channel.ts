/**
 * The Channel actor: one per codespace. It owns the document, orders changes into versions,
 * rebases concurrent edits, commits them to the backplane and fans them out. It holds no sockets:
 * everything it says leaves through `send` as envelopes with bytes already encoded.
 */
import type { Backplane } from '../backplane/backplane.ts';
import type { TextDoc, LogEntry } from '../doc/text_doc.ts';
import { encodeMessage } from '../protocol/codec.ts';
import type {
  Codec,
  ConnectedMessage,
  CreateSelectionRequest,
  ErrorCode,
  InsertValueBroadcast,
  InsertValueRequest,
  Mode,
  PeerInfo,
} from '../protocol/messages.ts';
import type { ChannelInbound, ChannelOutbound } from './envelopes.ts';

/** What the actor accepts: every inbound envelope but the store replies its backplane takes. */
export type ChannelMessage = Exclude<ChannelInbound, { type: 'store_reply' }>;

interface Member {
  mode: Mode;
  codec: Codec;
}

export interface ChannelOptions {
  codespace: string;
  doc: TextDoc;
  backplane: Backplane;
  send: (envelope: ChannelOutbound) => void;
  /** Versions between background snapshots. */
  snapshotEvery: number;
}

export class Channel {
  readonly #codespace: string;
  readonly #doc: TextDoc;
  readonly #backplane: Backplane;
  readonly #send: (envelope: ChannelOutbound) => void;
  readonly #snapshotEvery: number;
  #members = new Map<string, Member>();
  #codecCounts: Record<Codec, number> = { json: 0, msgpack: 0 };
  #snapshotVersion: number;

  constructor(options: ChannelOptions) {
    this.#codespace = options.codespace;
    this.#doc = options.doc;
    this.#backplane = options.backplane;
    this.#send = options.send;
    this.#snapshotEvery = options.snapshotEvery;
    this.#snapshotVersion = options.doc.version;
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
        return message.msg.operation === 'insert_value'
          ? this.#insertValue(message.session, message.msg as InsertValueRequest)
          : this.#relaySelection(message.session, message.msg as CreateSelectionRequest);
      case 'heartbeat':
        return this.#send({ type: 'heartbeat_ack', seq: message.seq });
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
    const missed = resume === undefined || resync ? null : this.#doc.entriesAfter(resume);
    const data: ConnectedMessage['data'] = {
      id: session,
      mode,
      codespace: this.#codespace,
      version: this.#doc.version,
      peers: this.#peersOf(session),
    };
    if (missed) data.resumed = true;
    else data.code = this.#doc.toString();
    this.#to(session, { operation: resync ? 'resync' : 'connected', data });
    if (missed) for (const entry of missed) this.#to(session, broadcastOf(entry));
    if (!known) this.#broadcast({ operation: 'peer_joined', data: { id: session, mode } }, session);
  }

  #leave(session: string): void {
    const member = this.#members.get(session);
    if (!member) return;
    this.#members.delete(session);
    this.#codecCounts[member.codec]--;
    this.#broadcast({ operation: 'peer_left', data: { id: session, mode: member.mode } }, null);
  }

  async #insertValue(session: string, request: InsertValueRequest): Promise<void> {
    const member = this.#members.get(session);
    if (!member) return; // it left while this message was on its way: nobody to answer
    if (member.mode !== 'edit') return this.#refuse(session, 'forbidden', 'this connection is view_only', request.ref);
    const prepared = this.#doc.prepare(
      { changes: request.changes, docLength: request.doc_length, version: request.version, ref: request.ref },
      session,
    );
    if (prepared.kind === 'duplicate') return this.#ack(session, prepared.version, request.ref);
    if (prepared.kind === 'rejected') return this.#refuse(session, prepared.code, prepared.message, request.ref);
    const committed = await this.#backplane.commit(this.#codespace, prepared.entry);
    if (!committed.ok) return this.#refuse(session, 'unavailable', `not committed: ${committed.message}`, request.ref);
    this.#doc.install(prepared.entry, prepared.set);
    this.#ack(session, prepared.entry.version, request.ref);
    this.#broadcast(broadcastOf(prepared.entry), session);
    if (this.#doc.version - this.#snapshotVersion >= this.#snapshotEvery) await this.#snapshot();
  }

  #relaySelection(session: string, request: CreateSelectionRequest): void {
    if (!this.#members.has(session)) return;
    this.#broadcast({ ...request, sender: session, version: this.#doc.version }, session);
  }

  async #stop(): Promise<void> {
    await this.#snapshot();
    this.#send({ type: 'stopped', version: this.#doc.version });
  }

  async #snapshot(): Promise<void> {
    if (this.#doc.version === this.#snapshotVersion) return;
    await this.#backplane.saveSnapshot(this.#codespace, this.#doc.toString(), this.#doc.version);
    this.#snapshotVersion = this.#doc.version;
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
    this.#answer(session, { operation: 'error', data: ref === undefined ? { code, message } : { code, message, ref } });
  }

  /** The one reply an insert_value gets. */
  #answer(session: string, message: unknown): void {
    const member = this.#members.get(session);
    if (member) this.#send({ type: 'to', session, data: encodeMessage(message, member.codec), answer: true });
  }

  #to(session: string, message: unknown): void {
    const member = this.#members.get(session);
    if (member) this.#send({ type: 'to', session, data: encodeMessage(message, member.codec) });
  }

  /** Encodes once per codec that some recipient uses; main writes the same bytes to each. */
  #broadcast(message: unknown, except: string | null): void {
    const excluded = except === null ? undefined : this.#members.get(except)?.codec;
    const jsonRecipients = this.#codecCounts.json - (excluded === 'json' ? 1 : 0);
    const msgpackRecipients = this.#codecCounts.msgpack - (excluded === 'msgpack' ? 1 : 0);
    if (jsonRecipients + msgpackRecipients === 0) return;
    this.#send({
      type: 'broadcast',
      except,
      json: jsonRecipients > 0 ? encodeMessage(message, 'json') : null,
      msgpack: msgpackRecipients > 0 ? encodeMessage(message, 'msgpack') : null,
    });
  }
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
