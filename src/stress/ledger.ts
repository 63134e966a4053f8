/**
 * What the run sent and what every client saw, frame by frame. Each edit inserts a token
 * `<codespace.client.seq>`; its send time is kept here (one process, one clock), so a receipt
 * anywhere gives its latency, and a token in the wrong codespace is cross-talk.
 */
import { decodeServerFrame } from '../protocol/codec.ts';
import type { Codec } from '../protocol/messages.ts';
import type { FrameTap } from './tapped_socket.ts';

const TOKEN = /<(\d+)\.(\d+)\.(\d+)>/g;

export function tokenOf(codespace: number, client: number, seq: number): string {
  return `<${codespace}.${client}.${seq}>`;
}

export function tokensIn(text: string): { codespace: number; client: number; seq: number }[] {
  return [...text.matchAll(TOKEN)].map((match) => ({ codespace: Number(match[1]), client: Number(match[2]), seq: Number(match[3]) }));
}

export class ClientLedger {
  readonly codespace: CodespaceLedger;
  readonly index: number;
  readonly codec: Codec;
  /** Send time (performance.now) of each token this client inserted, by seq. */
  readonly sentAt: number[] = [];
  readonly acked: boolean[] = [];
  /** `received[author][seq]`: how many times this client got that token in an insert_value. */
  readonly received: number[][] = [];
  readonly versions = new Set<number>();
  /** The version this client's current connection has reached, as the SDK counts it. */
  #lastVersion = 0;
  /** `?version=` of the connection being opened: a resumed `connected` continues from it. */
  #resumeFrom = 0;
  readonly #refTokens = new Map<string, number[]>();
  duplicated = 0;
  /** insert_value frames that skipped versions (the SDK drops them and resumes). */
  gaps = 0;
  crossTalk = 0;
  resyncs = 0;
  selectionsSent = 0;
  selectionsReceived = 0;
  readonly errors: string[] = [];
  #clientKey: string | null = null;

  constructor(codespace: CodespaceLedger, index: number, codec: Codec) {
    this.codespace = codespace;
    this.index = index;
    this.codec = codec;
  }

  get sent(): number {
    return this.sentAt.length;
  }

  /** Records a new token's send time and returns it. */
  nextToken(now: number): string {
    const seq = this.sentAt.length;
    this.sentAt.push(now);
    this.codespace.run.sent++;
    return tokenOf(this.codespace.index, this.index, seq);
  }

  receivedCount(author: number, seq: number): number {
    return this.received[author]?.[seq] ?? 0;
  }

  /**
   * PROTOCOL.md §1: a client sends a key on every connection, the same across its reconnects
   * (else the server cannot tell its resends from new edits). Only checked, never recorded.
   */
  #checkClientKey(key: string | null): void {
    if (key === null) this.errors.push('no_client_key');
    else if (this.#clientKey === null) this.#clientKey = key;
    else if (key !== this.#clientKey) this.errors.push('client_key_changed');
  }

  /** The tap this client's sockets report to. */
  tap(): FrameTap {
    return {
      opening: (url) => {
        const params = new URL(url).searchParams;
        this.#resumeFrom = Number(params.get('version') ?? 0);
        this.#checkClientKey(params.get('client'));
      },
      incoming: (data) => this.#incoming(data),
      outgoing: (data) => this.#outgoing(data),
      sdkThrew: (error) => this.errors.push(`sdk_exception: ${error instanceof Error ? error.message : String(error)}`),
    };
  }

  #incoming(data: string | ArrayBuffer): void {
    let message: Record<string, any>;
    try {
      message = decodeServerFrame(typeof data === 'string' ? data : new Uint8Array(data), this.codec) as Record<string, any>;
    } catch {
      this.errors.push('undecodable_frame');
      return;
    }
    switch (message.operation) {
      case 'insert_value':
        return this.#insertValue(message);
      case 'ack':
        this.#lastVersion = Math.max(this.#lastVersion, Number(message.version) || 0);
        return this.#acked(message.ref);
      case 'create_selection':
        this.selectionsReceived++;
        return this.#checkSender(message.sender);
      case 'connected':
      case 'resync':
        return this.#joined(message.operation === 'resync', message.data ?? {});
      case 'peer_joined':
      case 'peer_left':
        return this.#checkSender(message.data?.id);
      case 'error':
        this.errors.push(String(message.data?.code));
        return;
      default:
        return;
    }
  }

  #outgoing(data: string | Uint8Array): void {
    const message = decodeServerFrame(data, this.codec) as Record<string, any>;
    if (message.operation === 'create_selection') this.selectionsSent++;
    if (message.operation !== 'insert_value' || typeof message.ref !== 'string' || this.#refTokens.has(message.ref)) return;
    const seqs: number[] = [];
    for (const change of message.changes) for (const token of tokensIn(change.insert)) seqs.push(token.seq);
    this.#refTokens.set(message.ref, seqs);
  }

  #insertValue(message: Record<string, any>): void {
    const now = performance.now();
    const tokens = (message.changes ?? []).flatMap((change: { insert?: unknown }) => tokensIn(String(change.insert)));
    const owner = this.codespace.run.ownerOf(message.sender);
    if ((owner !== undefined && owner !== this.codespace.index) || tokens.some((token: { codespace: number }) => token.codespace !== this.codespace.index)) {
      this.crossTalk++;
      return;
    }
    if (message.version > this.#lastVersion + 1) {
      // The SDK ignores it and resumes, which brings it again: a gap, not a duplicate.
      this.gaps++;
      return;
    }
    this.#lastVersion = Math.max(this.#lastVersion, message.version);
    if (this.versions.has(message.version)) this.duplicated++;
    this.versions.add(message.version);
    for (const token of tokens) if (token.client !== this.index) this.#receipt(token.client, token.seq, now);
    // Our own change among the missed ones after a reconnect: committed, as good as an ack.
    if (typeof message.ref === 'string') this.#acked(message.ref);
  }

  #receipt(author: number, seq: number, now: number): void {
    const counts = (this.received[author] ??= []);
    counts[seq] = (counts[seq] ?? 0) + 1;
    const sentAt = this.codespace.clients[author]?.sentAt[seq];
    if (counts[seq] === 1 && sentAt !== undefined) this.codespace.addLatency(now, now - sentAt);
  }

  #acked(ref: unknown): void {
    const seqs = typeof ref === 'string' ? this.#refTokens.get(ref) : undefined;
    if (!seqs) return;
    for (const seq of seqs) {
      if (!this.acked[seq]) this.codespace.run.acked++;
      this.acked[seq] = true;
    }
  }

  #joined(resync: boolean, data: Record<string, any>): void {
    this.#lastVersion = data.resumed === true ? this.#resumeFrom : Number(data.version) || 0;
    if (resync) {
      this.resyncs++;
      this.codespace.run.resyncs++;
    }
    if (typeof data.id === 'string') this.codespace.run.own(data.id, this.codespace.index);
    if (data.codespace !== undefined && data.codespace !== this.codespace.token) this.crossTalk++;
    if (typeof data.code === 'string' && tokensIn(data.code).some((token) => token.codespace !== this.codespace.index)) this.crossTalk++;
    for (const peer of data.peers ?? []) this.#checkSender(peer?.id);
  }

  #checkSender(id: unknown): void {
    const owner = typeof id === 'string' ? this.codespace.run.ownerOf(id) : undefined;
    if (owner !== undefined && owner !== this.codespace.index) this.crossTalk++;
  }
}

export class CodespaceLedger {
  readonly run: RunLedger;
  readonly index: number;
  readonly token: string;
  readonly clients: ClientLedger[] = [];
  /** Receipt times (ms since the editing began) and latencies (ms), in arrival order. */
  readonly latencyTimes: number[] = [];
  readonly latencies: number[] = [];

  constructor(run: RunLedger, index: number, token: string) {
    this.run = run;
    this.index = index;
    this.token = token;
  }

  addLatency(now: number, latencyMs: number): void {
    this.latencyTimes.push(now - this.run.startedAt);
    this.latencies.push(latencyMs);
    this.run.deliveries++;
  }
}

export class RunLedger {
  readonly codespaces: CodespaceLedger[] = [];
  /** performance.now() when the editing began; receipt times are relative to it. */
  startedAt = performance.now();
  /** SDK clients that have joined (the first `connected`). */
  opened = 0;
  sent = 0;
  acked = 0;
  deliveries = 0;
  resyncs = 0;
  /**
   * How late this process's own timers fired (ms), sampled through the run: a stall here delays
   * every receipt, so it tells a slow tool from a slow server.
   */
  readonly lagTimes: number[] = [];
  readonly lags: number[] = [];
  /** Every connection id any client was given, and its codespace. */
  readonly #owners = new Map<string, number>();

  own(id: string, codespace: number): void {
    this.#owners.set(id, codespace);
  }

  ownerOf(id: unknown): number | undefined {
    return typeof id === 'string' ? this.#owners.get(id) : undefined;
  }
}
