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
import { specsOf } from './text_doc.ts';

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

/** One account of what the client holds: its text once it processed the first `processed` queued. */
interface Hypothesis extends Replay {
  processed: number;
}

/**
 * Accounts kept at once. Several survive an edit only when the messages between them change
 * nothing or were dropped, which takes typing racing typing; beyond this many, an even spread
 * from the least to the most processed is kept.
 */
const MAX_HYPOTHESES = 32;

/** Accounts an edit's placement is worked out for (a diff each, when not placed by versions). */
const MAX_PLACEMENTS_TRIED = 4;

/** Messages kept unconfirmed for a page that does not type; older ones count as processed. */
const MAX_QUEUED = 512;

export class VersionlessModel {
  readonly #session: string;
  readonly #joinVersion: number;
  /**
   * Every account of the client's text that its edits so far allow, the likeliest first (the
   * one that processed the most: messages usually reach it long before its next keystroke).
   * Edits are placed by the first; repairs are made to land whichever is true.
   */
  #hypotheses: Hypothesis[];
  #queue: Sent[] = [];
  /** Until its first edit the client may hold an older text than the one in `connected`. */
  #edited = false;
  /** A reset decided by an edit the model could not account for, until the channel takes it. */
  #pendingReset: RepairMessage | null = null;

  /**
   * `older`: recent texts of the length of the joining one that the page may have loaded
   * instead; no length tells them apart, so they are kept as accounts from the start.
   */
  constructor(session: string, joinVersion: number, joinText: Text, older: readonly { version: number; text: Text }[] = []) {
    this.#session = session;
    this.#joinVersion = joinVersion;
    this.#hypotheses = [joinText, ...older.map((one) => one.text)].map((text, i) => ({
      text,
      structure: { base: i === 0 ? joinVersion : older[i - 1].version, own: [] },
      unknown: false,
      processed: 0,
    }));
  }

  /** What the model believes the client holds now (the likeliest account). */
  get text(): string {
    return this.#hypotheses[0].text.toString();
  }

  get hypotheses(): number {
    return this.#hypotheses.length;
  }

  get queued(): number {
    return this.#queue.length;
  }

  /** The broadcast of a version another client made has been sent to this one. */
  sent(step: VersionStep, server: ServerView): void {
    this.#queue.push({ kind: 'change', version: step.version, set: step.set });
    if (this.#queue.length > MAX_QUEUED) this.#settleOldest(this.#queue.length - MAX_QUEUED, server);
  }

  /** Repairs sent with `connected` (catch-up for a page that loaded an older text), in order. */
  sentRepairs(repairs: readonly RepairMessage[], server: ServerView): void {
    for (const repair of repairs) {
      const set = ChangeSet.of(repair.changes, repair.doc_length);
      this.#queue.push({ kind: 'repair', set, expect: server.text, version: server.version });
    }
  }

  /**
   * The client's edit `changes`, made on a text of `docLength`: works out which of the queued
   * messages it had processed, and places the edit on the server's current text.
   */
  place(changes: readonly ChangeSpec[], docLength: number | undefined, server: ServerView): Placement {
    let found = this.#advance(this.#hypotheses, docLength, server);
    if (found.length === 0 && !this.#edited && docLength !== undefined) found = this.#olderLoads(docLength, server);
    this.#edited = true;
    if (found.length === 0 || found[0].unknown) return this.#lose(changes, found[0]?.text.length ?? docLength, server);
    const length = found[0].text.length;
    const shapeError = checkShape(changes, length);
    if (shapeError) return { kind: 'invalid', message: shapeError };
    const edit = ChangeSet.of(changes as ChangeSpec[], length);
    const { chosen, placed, byVersions } = this.#choosePlacement(edit, found, server);
    const kept: Hypothesis[] = [];
    for (const hypothesis of [chosen, ...found.filter((other) => other !== chosen)]) {
      if (hypothesis.unknown) continue;
      // Only the account the edit was placed by knows how the server placed it.
      const structure = hypothesis === chosen && byVersions && hypothesis.structure ? { base: hypothesis.structure.base, own: [...hypothesis.structure.own, edit] } : null;
      kept.push({ text: edit.apply(hypothesis.text), structure, unknown: false, processed: hypothesis.processed });
    }
    this.#keep(kept);
    return { kind: 'placed', changes: specsOf(placed), version: server.version };
  }

  /**
   * The account to place the edit by: the one whose placement deletes the fewest characters of
   * the server's text (an edit placed on a text the client did not hold can delete what others
   * typed; one misplaced insertion costs less), then the likeliest.
   */
  #choosePlacement(edit: ChangeSet, found: Hypothesis[], server: ServerView): { chosen: Hypothesis; placed: ChangeSet; byVersions: boolean } {
    let best: { chosen: Hypothesis; placed: ChangeSet; byVersions: boolean; deletes: number } | null = null;
    for (const hypothesis of found.slice(0, MAX_PLACEMENTS_TRIED)) {
      if (hypothesis.unknown) continue;
      // Holding the server's text (the usual case: nobody typed meanwhile) resets the base, so
      // that a page typing alone is never walked over its own versions. Cheap: the two texts
      // share every part neither changed.
      if (hypothesis.text.eq(server.text)) hypothesis.structure = { base: server.version, own: [] };
      const byVersions = hypothesis.structure && this.#placeByVersions(edit, hypothesis.structure, server);
      const placed = byVersions ?? edit.map(towardServer(hypothesis.text, server.text));
      const deletes = placed.length - placed.newLength + insertedLength(placed);
      if (!best || deletes < best.deletes) best = { chosen: hypothesis, placed, byVersions: byVersions !== null, deletes };
      if (deletes === 0) break;
    }
    return best!;
  }

  /** The placed edit was not committed: the client holds it, the server does not. */
  refused(): void {
    for (const hypothesis of this.#hypotheses) hypothesis.structure = null;
  }

  /**
   * The repairs to send: for each length the client's text may have once it has processed what
   * is on its way (if it edits no more), one smallest range that turns every such text into the
   * server's. Only one can land (the client has one length; after it, the others are dropped,
   * or, of the server's own length, change nothing). None while every account will end with the
   * server's text: so a repair on its way that will make it right is the only one outstanding,
   * and another follows only when the model knows it cannot (the client's length moved on, or
   * it will land on a text that changed meanwhile).
   */
  repairs(server: ServerView): RepairMessage[] {
    const serverText = server.text.toString();
    const byLength = new Map<number, ChangeSpec>();
    const seen: Text[] = [];
    for (const hypothesis of this.#hypotheses) {
      const predicted = this.#replay(hypothesis);
      if (predicted.unknown || predicted.text.eq(server.text) || seen.some((text) => text.eq(predicted.text))) continue;
      seen.push(predicted.text);
      const range = smallestRange(predicted.text.toString(), serverText);
      const length = predicted.text.length;
      const before = byLength.get(length);
      byLength.set(length, before ? widen(before, range, length, serverText) : range);
    }
    const messages: RepairMessage[] = [];
    for (const [length, range] of byLength) {
      this.#queue.push({ kind: 'repair', set: ChangeSet.of(range, length), expect: server.text, version: server.version });
      messages.push({ operation: 'insert_value', sender: REPAIR_SENDER, changes: [range], doc_length: length });
    }
    return messages;
  }

  /** The server's history was rebuilt (a reload): versions known before may not mean the same. */
  historyLost(): void {
    this.refused();
    for (const sent of this.#queue) if (sent.kind === 'repair') sent.version = -1;
  }

  /**
   * The reset decided by a lost edit, once; the channel sends it.
   */
  takeReset(): RepairMessage | null {
    const reset = this.#pendingReset;
    this.#pendingReset = null;
    return reset;
  }

  /** Every way of processing more of the queue that reaches `docLength`, likeliest first. */
  #advance(from: readonly Hypothesis[], docLength: number | undefined, server: ServerView): Hypothesis[] {
    const found: Hypothesis[] = [];
    for (const start of from) {
      let state: Replay = { text: start.text, structure: copyStructure(start.structure), unknown: start.unknown };
      for (let processed = start.processed; ; processed++) {
        if (docLength === undefined || state.text.length === docLength) found.push({ ...state, structure: copyStructure(state.structure), processed });
        if (processed === this.#queue.length) break;
        state = this.#process(state, this.#queue[processed], server);
      }
    }
    found.sort((a, b) => b.processed - a.processed);
    const distinct: Hypothesis[] = [];
    for (const hypothesis of found) {
      if (distinct.some((kept) => kept.processed === hypothesis.processed && kept.text.eq(hypothesis.text))) continue;
      distinct.push(hypothesis);
    }
    return docLength === undefined ? distinct.slice(0, 1) : spread(distinct, MAX_HYPOTHESES);
  }

  /** At the first edit: the newest older server text that, loaded instead, accounts for it (§7). */
  #olderLoads(docLength: number, server: ServerView): Hypothesis[] {
    for (let version = this.#joinVersion - 1; ; version--) {
      const text = server.textAt(version);
      if (!text) return [];
      const found = this.#advance([{ text, structure: { base: version, own: [] }, unknown: false, processed: 0 }], docLength, server);
      if (found.length > 0) return found;
    }
  }

  /**
   * A page that does not type lets the queue grow: the oldest messages reached it long ago, so
   * every account processes them as the page did.
   */
  #settleOldest(count: number, server: ServerView): void {
    const settled = this.#hypotheses.map((hypothesis) => {
      let state: Replay = hypothesis;
      for (let i = hypothesis.processed; i < count; i++) state = this.#process(state, this.#queue[i], server);
      return { ...state, processed: Math.max(hypothesis.processed, count) };
    });
    const distinct = settled.filter((one, i) => !settled.slice(0, i).some((other) => other.processed === one.processed && other.text.eq(one.text)));
    this.#keep(distinct);
  }

  /** Takes `hypotheses` and forgets the queued messages every one of them has processed. */
  #keep(hypotheses: Hypothesis[]): void {
    const done = Math.min(...hypotheses.map((hypothesis) => hypothesis.processed));
    this.#queue.splice(0, done);
    for (const hypothesis of hypotheses) hypothesis.processed -= done;
    this.#hypotheses = hypotheses;
  }

  /** The rest of the queue processed, as the client will if it edits no more. */
  #replay(hypothesis: Hypothesis): Replay {
    let state: Replay = hypothesis;
    for (let i = hypothesis.processed; i < this.#queue.length; i++) state = this.#process(state, this.#queue[i], null);
    return state;
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

  /**
   * The client's text is not what the model can account for (a page that missed a message we
   * could not see, a channel restart). Its length after the edit is known, so a reset replacing
   * everything lands whatever it holds; until then its edits are refused.
   */
  #lose(changes: readonly ChangeSpec[], docLength: number | undefined, server: ServerView): Placement {
    if (docLength === undefined || checkShape(changes, docLength)) {
      return { kind: 'invalid', message: 'doc_length missing, or the changes do not fit it' };
    }
    let length = docLength;
    for (const { from, to, insert } of changes) length += insert.length - (to - from);
    const range = { from: 0, to: length, insert: server.text.toString() };
    this.#queue = [{ kind: 'repair', set: ChangeSet.of(range, length), expect: server.text, version: server.version }];
    this.#hypotheses = [{ text: Text.of([' '.repeat(length)]), structure: null, unknown: true, processed: 0 }];
    this.#pendingReset = { operation: 'insert_value', sender: REPAIR_SENDER, changes: [range], doc_length: length };
    return { kind: 'lost', message: "the server lost track of this page's text; it is being reset" };
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

/** At most `count` of `items`, evenly spread, the first and the last always among them. */
function spread<T>(items: T[], count: number): T[] {
  if (items.length <= count) return items;
  return Array.from({ length: count }, (_, i) => items[Math.round((i * (items.length - 1)) / (count - 1))]);
}

function insertedLength(set: ChangeSet): number {
  let inserted = 0;
  set.iterChanges((_fromA, _toA, fromB, toB) => {
    inserted += toB - fromB;
  });
  return inserted;
}

function copyStructure(structure: Structure | null): Structure | null {
  return structure && { base: structure.base, own: [...structure.own] };
}

/** A multi-hunk diff from the client's text to the server's, as a change on the client's. */
function towardServer(client: Text, server: Text): ChangeSet {
  return ChangeSet.of(diffSpecs(client.toString(), server.toString()), client.length);
}

/** One range, on texts of `length`, covering both `a` and `b` (each turning one into `target`). */
function widen(a: ChangeSpec, b: ChangeSpec, length: number, target: string): ChangeSpec {
  const from = Math.min(a.from, b.from);
  const suffix = Math.min(length - a.to, length - b.to);
  return { from, to: length - suffix, insert: target.slice(from, target.length - suffix) };
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
