/**
 * The server's model of what one version-less client holds (PROTOCOL.md §2, issue 12).
 *
 * The SharePython frontend sends its edits with `doc_length` but no version, applies its own edits
 * at once, and applies an incoming `insert_value` only when its length equals that message's
 * `doc_length` (otherwise CodeMirror throws and the change is lost). So the server cannot take an
 * edit as made on its current text, nor trust the client to hold that text. This model keeps:
 *
 * - `text`: the client's text after everything the server knows it did;
 * - `queue`: the messages sent to it whose processing it has not confirmed yet. An edit's
 *   `doc_length` tells how many of them it had processed: the model replays them the way the
 *   frontend does (applied only when the length matches) until the length is that `doc_length`;
 * - `structure`: while the client's text is server version `base` plus its own edits made since
 *   (the changes it dropped do not break this; one applied on a different text does), an edit is
 *   placed exactly, by mapping it the way @codemirror/collab's client would receive those
 *   versions. Otherwise it is placed through a multi-hunk diff from the client's text to the
 *   server's.
 *
 * When the client's text (as it will be once it has processed what is on its way) differs from
 * the server's, the model makes one repair: an `insert_value` of the smallest single range, from
 * `"sender":"server"`, with the client's length as `doc_length`. The frontend moves its cursor to
 * the end of an inserted text and records it in undo, hence the smallest range.
 *
 * Pure logic: no I/O. The channel feeds it what it sends and what it receives (see
 * `versionless_clients.ts`).
 */
import { ChangeSet, Text } from '@codemirror/state';
import diff from 'fast-diff';
import type { ChangeSpec } from '../protocol/messages.ts';

/** The `sender` of a repair; never a connection id (PROTOCOL.md §2). */
export const REPAIR_SENDER = 'server';

/** One committed version, as the model needs it. */
export interface VersionStep {
  version: number;
  set: ChangeSet;
  sender: string;
}

/** What the model reads of the server's document: the current text and the recent versions. */
export interface ServerView {
  readonly version: number;
  readonly text: Text;
  /** The versions after `version` up to the current one, oldest first; null if not kept. */
  stepsAfter(version: number): VersionStep[] | null;
  /** The text at a recent version; null if not kept. */
  textAt(version: number): Text | null;
}

export interface RepairMessage {
  operation: 'insert_value';
  sender: typeof REPAIR_SENDER;
  changes: ChangeSpec[];
  doc_length: number;
}

/** Where the client's edit lands on the server's current text, or why it cannot be placed. */
export type Placement =
  | { kind: 'placed'; changes: ChangeSpec[]; version: number }
  /** The edit does not fit the client's text as modelled (a broken client, not a race). */
  | { kind: 'invalid'; message: string }
  /** The model cannot tell what the client holds: the edit is refused and a reset is on its way. */
  | { kind: 'lost'; message: string };

type Sent =
  | { kind: 'change'; version: number; set: ChangeSet }
  /** `expect`: the server's text the repair turns the client's into, at `version`. */
  | { kind: 'repair'; set: ChangeSet; expect: Text; version: number };

interface Structure {
  /** The client's text is the server's text at `base`... */
  base: number;
  /** ...with these edits of its own applied, in the form the client made them, oldest first. */
  own: ChangeSet[];
}

interface Replay {
  text: Text;
  structure: Structure | null;
  /** True while the text's content is unknown (only its length is): until a full reset lands. */
  unknown: boolean;
}

export class VersionlessModel {
  readonly #session: string;
  #text: Text;
  #unknown = false;
  #structure: Structure | null;
  #queue: Sent[] = [];
  /** Until its first edit the client may hold an older text than the one in `connected`. */
  #edited = false;
  /** A reset decided by an edit the model could not account for, until the channel takes it. */
  #pendingReset: RepairMessage | null = null;

  constructor(session: string, joinVersion: number, joinText: Text) {
    this.#session = session;
    this.#text = joinText;
    this.#structure = { base: joinVersion, own: [] };
  }

  /** What the model believes the client holds now (for tests and diagnostics). */
  get text(): string {
    return this.#text.toString();
  }

  get queued(): number {
    return this.#queue.length;
  }

  /** The broadcast of a version another client made has been sent to this one. */
  sent(step: VersionStep): void {
    this.#queue.push({ kind: 'change', version: step.version, set: step.set });
  }

  /**
   * The client's edit `changes`, made on a text of `docLength`: works out which of the queued
   * messages it had processed, and places the edit on the server's current text.
   */
  place(changes: readonly ChangeSpec[], docLength: number | undefined, server: ServerView): Placement {
    const replayed = this.#findReplay(docLength, server);
    if (!replayed) return this.#lose(changes, docLength, server);
    const { replay, processed } = replayed;
    this.#queue.splice(0, processed);
    this.#text = replay.text;
    this.#structure = replay.structure;
    this.#unknown = replay.unknown;
    this.#edited = true;
    const length = this.#text.length;
    const shapeError = checkShape(changes, length);
    if (shapeError) return { kind: 'invalid', message: shapeError };
    const edit = ChangeSet.of(changes as ChangeSpec[], length);
    if (this.#unknown) return this.#lose(changes, length, server);
    if (this.#structure === null && this.#text.eq(server.text)) this.#structure = { base: server.version, own: [] };
    const placed = (this.#structure && this.#placeByVersions(edit, this.#structure, server)) ?? this.#placeByDiff(edit, server);
    this.#text = edit.apply(this.#text);
    if (this.#structure) this.#structure.own.push(edit);
    return { kind: 'placed', changes: specsOf(placed), version: server.version };
  }

  /** The placed edit was not committed: the client holds it, the server does not. */
  refused(): void {
    this.#structure = null;
  }

  /**
   * A repair to send, if the client's text, once it has processed what is on its way (and if it
   * edits no more), will differ from the server's; null otherwise, or while an earlier repair may
   * still land.
   */
  repair(server: ServerView): RepairMessage | null {
    const predicted = this.#replay();
    if (predicted.unknown) return null;
    // A repair that will land is outstanding: the next waits until an edit shows what became of
    // it. One that cannot land (the client's length moved on) is dropped by the client.
    if (predicted.repairLands) return null;
    if (predicted.text.eq(server.text)) return null;
    const range = smallestRange(predicted.text.toString(), server.text.toString());
    const set = ChangeSet.of(range, predicted.text.length);
    this.#queue.push({ kind: 'repair', set, expect: server.text, version: server.version });
    return { operation: 'insert_value', sender: REPAIR_SENDER, changes: [range], doc_length: predicted.text.length };
  }

  /** The server's history was rebuilt (a reload): versions known before may not mean the same. */
  historyLost(): void {
    this.#structure = null;
    for (const sent of this.#queue) if (sent.kind === 'repair') sent.version = -1;
  }

  /**
   * The replay that reaches `docLength`: from the model's text, or, at the client's first edit,
   * from an older server text it may have loaded (the stored `code` lags, §7). The most messages
   * processed wins: they were sent before the edit arrived, usually long before.
   */
  #findReplay(docLength: number | undefined, server: ServerView): { replay: Replay; processed: number } | null {
    const fromModel = this.#bestReplay(this.#startState(), docLength, server);
    if (fromModel || this.#edited || docLength === undefined) return fromModel;
    const base = this.#structure?.base;
    if (base === undefined) return null;
    for (let version = base - 1; ; version--) {
      const text = server.textAt(version);
      if (!text) return null;
      const found = this.#bestReplay({ text, structure: { base: version, own: [] }, unknown: false }, docLength, server);
      if (found) return found;
    }
  }

  #startState(): Replay {
    return { text: this.#text, structure: this.#structure && { base: this.#structure.base, own: [...this.#structure.own] }, unknown: this.#unknown };
  }

  #bestReplay(start: Replay, docLength: number | undefined, server: ServerView): { replay: Replay; processed: number } | null {
    let best: { replay: Replay; processed: number } | null = null;
    let state = start;
    for (let processed = 0; ; processed++) {
      if (docLength === undefined || state.text.length === docLength) best = { replay: state, processed };
      if (processed === this.#queue.length) return best;
      state = this.#process(state, this.#queue[processed], server);
    }
  }

  /** The whole queue processed from the model's text, as the client will if it edits no more. */
  #replay(): Replay & { repairLands: boolean } {
    let state = this.#startState();
    let repairLands = false;
    for (const sent of this.#queue) {
      if (sent.kind === 'repair' && state.text.length === sent.set.length) repairLands = true;
      state = this.#process(state, sent, null);
    }
    return { ...state, repairLands };
  }

  /** What the frontend does with one message: `ChangeSet.of(changes, doc_length)`, or it throws. */
  #process(state: Replay, sent: Sent, server: ServerView | null): Replay {
    if (state.text.length !== sent.set.length) return state;
    const text = sent.set.apply(state.text);
    if (sent.kind === 'repair') {
      // A reset replaces everything, so whatever the client held, it now holds `expect`.
      const unknown = state.unknown && !replacesAll(sent.set);
      const exact = !unknown && sent.version >= 0 && text.eq(sent.expect);
      return { text, structure: exact ? { base: sent.version, own: [] } : null, unknown };
    }
    const structure = state.structure && server && !state.unknown ? followedBy(state.structure, sent.version, this.#session, server) : null;
    return { text, structure, unknown: state.unknown };
  }

  /**
   * Maps the edit to the current version the way a collab client receives versions: each
   * version another client made is rebased over the client's own edits not yet reached, and the
   * edit over it; the client's own versions are already in its text. Null when the history kept
   * does not cover it or does not match the model.
   */
  #placeByVersions(edit: ChangeSet, structure: Structure, server: ServerView): ChangeSet | null {
    const steps = server.stepsAfter(structure.base);
    if (!steps) return null;
    const pending = [...structure.own, edit];
    for (const step of steps) {
      if (step.sender === this.#session) {
        if (pending.length === 1) return null;
        pending.shift();
        continue;
      }
      let other = step.set;
      for (let i = 0; i < pending.length; i++) {
        const mine = pending[i];
        pending[i] = mine.map(other);
        other = other.map(mine, true);
      }
    }
    if (pending.length !== 1 || pending[0].length !== server.text.length) return null;
    return pending[0];
  }

  /** Maps the edit through a multi-hunk diff from the client's text to the server's. */
  #placeByDiff(edit: ChangeSet, server: ServerView): ChangeSet {
    this.#structure = null;
    const towardServer = ChangeSet.of(diffSpecs(this.#text.toString(), server.text.toString()), this.#text.length);
    return edit.map(towardServer);
  }

  /**
   * The client's text is not what the model can account for (a page that missed a message we
   * could not see, a channel restart). Its length after the edit is known, so a reset replacing
   * everything lands whatever it holds; until then its edits are refused.
   */
  #lose(changes: readonly ChangeSpec[], docLength: number | undefined, server: ServerView): Placement {
    this.#edited = true;
    if (docLength === undefined || checkShape(changes, docLength)) {
      return { kind: 'invalid', message: 'doc_length missing or the changes do not fit it' };
    }
    let length = docLength;
    for (const { from, to, insert } of changes) length += insert.length - (to - from);
    this.#text = Text.of([' '.repeat(length)]);
    this.#unknown = true;
    this.#structure = null;
    this.#queue = [];
    const range = { from: 0, to: length, insert: server.text.toString() };
    this.#queue.push({ kind: 'repair', set: ChangeSet.of(range, length), expect: server.text, version: server.version });
    this.#pendingReset = { operation: 'insert_value', sender: REPAIR_SENDER, changes: [range], doc_length: length };
    return { kind: 'lost', message: 'the server lost track of this page\'s text; it is being reset' };
  }

  /** The reset decided by a lost edit, once; the channel sends it. */
  takeReset(): RepairMessage | null {
    const reset = this.#pendingReset;
    this.#pendingReset = null;
    return reset;
  }
}

/**
 * The structure after the client applied the broadcast of `version`: exact only when every
 * version between its base and that one is its own (then its text is that version's text).
 */
function followedBy(structure: Structure, version: number, session: string, server: ServerView): Structure | null {
  if (version <= structure.base) return null;
  const steps = server.stepsAfter(structure.base);
  if (!steps) return null;
  const between = steps.filter((step) => step.version < version);
  if (between.length !== version - structure.base - 1) return null;
  if (between.length !== structure.own.length || between.some((step) => step.sender !== session)) return null;
  return { base: version, own: [] };
}

function replacesAll(set: ChangeSet): boolean {
  let all = false;
  set.iterChangedRanges((fromA, toA) => {
    if (fromA === 0 && toA === set.length) all = true;
  }, true);
  return all;
}

/** Sorted, in range, not overlapping: what `ChangeSet.of` needs. */
function checkShape(changes: readonly ChangeSpec[], length: number): string | null {
  let lastTo = 0;
  for (const { from, to } of changes) {
    if (from > to || to > length || from < lastTo) return `changes do not fit a text of length ${length}`;
    lastTo = to;
  }
  return null;
}

/** The change turning `from` into `to` within one range: the common prefix and suffix kept. */
export function smallestRange(from: string, to: string): ChangeSpec {
  const limit = Math.min(from.length, to.length);
  let start = 0;
  while (start < limit && from.charCodeAt(start) === to.charCodeAt(start)) start++;
  let end = 0;
  while (end < limit - start && from.charCodeAt(from.length - 1 - end) === to.charCodeAt(to.length - 1 - end)) end++;
  // Never cut a surrogate pair in two: widen the range by one on that side.
  if (start > 0 && (isLowSurrogate(from.charCodeAt(start)) || isLowSurrogate(to.charCodeAt(start)))) start--;
  if (end > 0 && (isLowSurrogate(from.charCodeAt(from.length - end)) || isLowSurrogate(to.charCodeAt(to.length - end)))) end--;
  return { from: start, to: from.length - end, insert: to.slice(start, to.length - end) };
}

function isLowSurrogate(code: number): boolean {
  return code >= 0xdc00 && code <= 0xdfff;
}

/** A diff as changes in `from`'s coordinates. */
function diffSpecs(from: string, to: string): ChangeSpec[] {
  const specs: ChangeSpec[] = [];
  let at = 0;
  for (const [op, text] of diff(from, to)) {
    if (op === diff.EQUAL) {
      at += text.length;
    } else if (op === diff.DELETE) {
      const last = specs[specs.length - 1];
      if (last && last.to === at) last.to += text.length;
      else specs.push({ from: at, to: at + text.length, insert: '' });
      at += text.length;
    } else {
      const last = specs[specs.length - 1];
      if (last && last.to === at) last.insert += text;
      else specs.push({ from: at, to: at, insert: text });
    }
  }
  return specs;
}

function specsOf(set: ChangeSet): ChangeSpec[] {
  const specs: ChangeSpec[] = [];
  set.iterChanges((fromA, toA, _fromB, _toB, inserted) => specs.push({ from: fromA, to: toA, insert: inserted.sliceString(0, inserted.length, '\n') }));
  return specs;
}
