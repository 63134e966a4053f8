/**
 * The memory backplane as seen from a channel in another thread: the store lives on the main
 * thread (so it outlives a crashed worker) and is reached over the channel's own port.
 */
import type { ChannelOutbound } from '../actors/envelopes.ts';
import type { LogEntry, StoredDoc } from '../doc/text_doc.ts';
import type { Backplane, CommitResult, RemoteListener } from './backplane.ts';

const COMMITTED: CommitResult = { ok: true };

export class PortBackplane implements Backplane {
  readonly #send: (envelope: ChannelOutbound) => void;
  #nextId = 1;
  #pendingLoads = new Map<number, { resolve: (doc: StoredDoc) => void; reject: (error: Error) => void }>();

  constructor(send: (envelope: ChannelOutbound) => void) {
    this.#send = send;
  }

  load(_codespace: string): Promise<StoredDoc> {
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pendingLoads.set(id, { resolve, reject });
      this.#send({ type: 'store_load', id });
    });
  }

  /**
   * Resolves at once: the main thread handles this channel's envelopes in the order they were
   * sent, so it stores the entry before it forwards the `ack` the channel sends after it. The
   * channel is the only sequencer of its codespace on the memory backplane.
   */
  commit(_codespace: string, entry: LogEntry, _epoch: string): Promise<CommitResult> {
    this.#send({ type: 'store_append', entry });
    return Promise.resolve(COMMITTED);
  }

  commitMany(_codespace: string, entries: LogEntry[], _epoch: string): Promise<CommitResult> {
    for (const entry of entries) this.#send({ type: 'store_append', entry });
    return Promise.resolve(COMMITTED);
  }

  saveSnapshot(_codespace: string, text: string, version: number, _epoch: string): Promise<void> {
    this.#send({ type: 'store_snapshot', text, version });
    return Promise.resolve();
  }

  /** The channel is the only sequencer here, so it never falls behind the store it feeds. */
  async readLog(_codespace: string, _version: number): Promise<{ epoch: string; entries: LogEntry[] | null }> {
    return { epoch: '', entries: null };
  }

  async restore(_codespace: string, _doc: StoredDoc): Promise<boolean> {
    return false;
  }

  async subscribe(_codespace: string, _listener: RemoteListener): Promise<void> {}

  unsubscribe(_codespace: string): void {}

  publishSelection(_codespace: string, _message: Record<string, unknown>): void {}

  async touch(_codespace: string): Promise<void> {}

  receiveReply(id: number, doc: StoredDoc | undefined, error: string | undefined): void {
    const pending = this.#pendingLoads.get(id);
    if (!pending) return;
    this.#pendingLoads.delete(id);
    if (doc) pending.resolve(doc);
    else pending.reject(new Error(error ?? 'store gave no document'));
  }
}
