/**
 * A client's view of one document: its text and version, the one change in flight and the local
 * changes buffered behind it, rebased over remote changes as PROTOCOL.md §3 says. Pure logic,
 * shared by the SDK and the tests; browser-safe (no Node imports).
 */
import type { ChangeSet, Text } from '@codemirror/state';
import { changeSetOf, specsOf, textOf, LINE_SEPARATOR } from '../doc/text_doc.ts';
import type { ChangeSpec, InsertValueRequest } from '../protocol/messages.ts';

export interface InFlight {
  /** As sent: in the coordinates of `baseVersion`. Resent as is after a reconnect. */
  request: InsertValueRequest;
  /** Rebased over remote changes seen since it was sent, in the local text's history. */
  local: ChangeSet;
}

export class PendingDoc {
  #text: Text;
  /** The text at `#version` as the server has it: `#text` without the pending changes. */
  #confirmed: Text;
  #version: number;
  #inFlight: InFlight | null = null;
  #buffered: ChangeSet | null = null;
  readonly #refPrefix: string;
  #refCounter = 0;

  constructor(text: string, version: number, refPrefix: string) {
    this.#text = textOf(text);
    this.#confirmed = this.#text;
    this.#version = version;
    this.#refPrefix = refPrefix;
  }

  get version(): number {
    return this.#version;
  }

  get text(): string {
    return this.#text.sliceString(0, this.#text.length, LINE_SEPARATOR);
  }

  /** The text at `version` without local changes the server has not acknowledged. */
  get confirmedText(): string {
    return this.#confirmed.sliceString(0, this.#confirmed.length, LINE_SEPARATOR);
  }

  get length(): number {
    return this.#text.length;
  }

  get inFlight(): InFlight | null {
    return this.#inFlight;
  }

  get hasPending(): boolean {
    return this.#inFlight !== null || this.#buffered !== null;
  }

  /** A local edit, in the coordinates of the current local text. */
  applyLocal(changes: readonly ChangeSpec[]): void {
    const set = changeSetOf(changes, this.#text.length);
    this.#text = set.apply(this.#text);
    this.#buffered = this.#buffered ? this.#buffered.compose(set) : set;
  }

  /** The next request to send, if nothing is in flight and something is buffered. */
  takeRequest(): InsertValueRequest | null {
    if (this.#inFlight || !this.#buffered) return null;
    const set = this.#buffered;
    this.#buffered = null;
    const request: InsertValueRequest = {
      operation: 'insert_value',
      changes: specsOf(set),
      doc_length: set.length,
      version: this.#version,
      ref: `${this.#refPrefix}-${++this.#refCounter}`,
    };
    // The server rebuilds the change from `changes`; rebasing over anything but that very
    // structure (a composed set keeps an insertion and a deletion apart) can diverge from it.
    this.#inFlight = { request, local: changeSetOf(request.changes, set.length) };
    return request;
  }

  /**
   * A remote change: applied over the pending ones, which are rebased over it. Returns the
   * change as it applied to the local text (what an editor showing `text` must apply).
   */
  receiveRemote(version: number, changes: readonly ChangeSpec[], docLength: number): ChangeSpec[] {
    if (version !== this.#version + 1) throw new RangeError(`remote version ${version} after ${this.#version}`);
    let remote = changeSetOf(changes, docLength);
    this.#confirmed = remote.apply(this.#confirmed);
    if (this.#inFlight) {
      const mapped = remote.map(this.#inFlight.local, true);
      this.#inFlight.local = this.#inFlight.local.map(remote);
      remote = mapped;
    }
    if (this.#buffered) {
      const mapped = remote.map(this.#buffered, true);
      this.#buffered = this.#buffered.map(remote);
      remote = mapped;
    }
    this.#text = remote.apply(this.#text);
    this.#version = version;
    return specsOf(remote);
  }

  /** The server committed the in-flight change as `version`. */
  receiveAck(version: number, ref: string | undefined): void {
    if (!this.#inFlight || this.#inFlight.request.ref !== ref) throw new Error(`ack for ${ref} with nothing of that ref in flight`);
    if (version !== this.#version + 1) throw new RangeError(`ack version ${version} after ${this.#version}`);
    this.#confirmed = this.#inFlight.local.apply(this.#confirmed);
    this.#inFlight = null;
    this.#version = version;
  }

  /**
   * The server refused the in-flight change for good: it is taken back out of the local text,
   * and what was typed after it stays.
   */
  dropInFlight(): void {
    if (!this.#inFlight) return;
    const undo = this.#inFlight.local.invert(this.#confirmed);
    this.#buffered = this.#buffered ? this.#buffered.map(undo) : null;
    this.#inFlight = null;
    this.#text = this.#buffered ? this.#buffered.apply(this.#confirmed) : this.#confirmed;
  }

  /**
   * Starts over from the server's text when there is no history to rebase over (a resume too
   * old for the server). Returns whether local changes were dropped.
   */
  reset(text: string, version: number): boolean {
    const dropped = this.hasPending;
    this.#text = textOf(text);
    this.#confirmed = this.#text;
    this.#version = version;
    this.#inFlight = null;
    this.#buffered = null;
    return dropped;
  }
}
