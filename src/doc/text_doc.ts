/**
 * One codespace's document: text, version, the history window, and the rebase of PROTOCOL.md §3.
 * Pure logic: no I/O, no threads. The channel actor owns exactly one.
 */
import { ChangeSet, Text } from '@codemirror/state';
import type { ChangeSpec, ErrorCode } from '../protocol/messages.ts';
import { hasCarriageReturn } from './line_breaks.ts';

/**
 * Line separator handed to CodeMirror. With its default, an inserted "\r\n" would count as one
 * position; the protocol counts UTF-16 units of a plain string, so only "\n" may split lines.
 */
export const LINE_SEPARATOR = '\n';

/** One committed version, as broadcast and as stored in the change log. */
export interface LogEntry {
  version: number;
  changes: ChangeSpec[];
  /** Length of the document at `version - 1`, the coordinates `changes` are in. */
  docLength: number;
  sender: string;
  ref?: string;
  /**
   * Whom `ref` is deduplicated for (PROTOCOL.md §2): a hashed client key or a connection. Stored
   * with the entry, never broadcast.
   */
  author?: string;
}

/** A committed ref, kept for deduplication after its entry's changes were trimmed away. */
export interface RefRecord {
  version: number;
  author: string;
  ref: string;
}

export interface StoredDoc {
  text: string;
  version: number;
  /** The most recent entries, oldest first, ending at `version`. */
  log: LogEntry[];
  /** The identity of this history (PROTOCOL.md §1): a history started again gets a new one. */
  epoch: string;
  /** Refs committed within the last HISTORY versions whose entries `log` no longer holds. */
  refs?: RefRecord[];
}

export interface TextDocOptions {
  /** Versions kept for resume, rebase and deduplication. */
  history: number;
  /** Bytes of changes kept for resume and rebase (PROTOCOL.md §6); 0 or absent: no limit. */
  historyBytes?: number;
  maxDocLength: number;
}

/** PROTOCOL.md §6: a change costs the UTF-16 units it inserts plus 16. */
export function entryBytes(entry: LogEntry): number {
  let bytes = 0;
  for (const change of entry.changes) bytes += change.insert.length + 16;
  return bytes;
}

/** A new history's identity: random, URL-safe. */
export function newEpoch(): string {
  return crypto.randomUUID().replace(/-/g, '').slice(0, 16);
}

export interface EditRequest {
  changes: ChangeSpec[];
  docLength?: number;
  /** Base version; absent (SharePython clients): the current document as is. */
  version?: number;
  ref?: string;
}

export type PrepareResult =
  | { kind: 'ready'; entry: LogEntry; set: ChangeSet }
  | { kind: 'duplicate'; version: number }
  | { kind: 'rejected'; code: ErrorCode; message: string };

interface HistoryItem {
  entry: LogEntry;
  set: ChangeSet;
}

export function textOf(value: string): Text {
  return Text.of(value.split(LINE_SEPARATOR));
}

export function changeSetOf(changes: readonly ChangeSpec[], docLength: number): ChangeSet {
  return ChangeSet.of(changes as ChangeSpec[], docLength, LINE_SEPARATOR);
}

/** The broadcast form of a change set: sorted, non-overlapping specs in its base coordinates. */
export function specsOf(set: ChangeSet): ChangeSpec[] {
  const specs: ChangeSpec[] = [];
  set.iterChanges((fromA, toA, _fromB, _toB, inserted) => {
    specs.push({ from: fromA, to: toA, insert: inserted.sliceString(0, inserted.length, LINE_SEPARATOR) });
  });
  return specs;
}

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff;
}

function isLowSurrogate(code: number): boolean {
  return code >= 0xdc00 && code <= 0xdfff;
}

function splitsSurrogatePair(text: Text, pos: number): boolean {
  if (pos <= 0 || pos >= text.length) return false;
  const around = text.sliceString(pos - 1, pos + 1);
  return isHighSurrogate(around.charCodeAt(0)) && isLowSurrogate(around.charCodeAt(1));
}

/** Checks order and bounds in the base document's coordinates; returns a reason or null. */
export function checkChangeShape(changes: readonly ChangeSpec[], baseLength: number): string | null {
  let lastTo = 0;
  for (let i = 0; i < changes.length; i++) {
    const { from, to, insert } = changes[i];
    if (from > to) return `change ${i} is reversed (from ${from} > to ${to})`;
    if (to > baseLength) return `change ${i} ends at ${to}, past the document length ${baseLength}`;
    if (from < lastTo) return `change ${i} overlaps or precedes the one before it`;
    // A lone surrogate would not survive UTF-8 (msgpack, Redis) and clients would diverge.
    if (!insert.isWellFormed()) return `change ${i} inserts a lone surrogate`;
    if (hasCarriageReturn(insert)) return `change ${i} inserts a "\\r": line breaks are "\\n" (PROTOCOL.md §2)`;
    lastTo = to;
  }
  return null;
}

/** Key of a committed ref in the dedup map: refs are per author, never shared by a codespace. */
function refKey(author: string, ref: string): string {
  return `${author}\u0000${ref}`;
}

export class TextDoc {
  #text: Text;
  #version: number;
  readonly epoch: string;
  /** Oldest first; `#history[i].entry.version === #version - #history.length + 1 + i`. */
  #history: HistoryItem[] = [];
  /** Bytes of changes in `#history` (entryBytes). */
  #historyBytes = 0;
  /** Committed refs of the last `history` versions, by refKey, and the same in commit order. */
  #refs = new Map<string, number>();
  #refOrder: { version: number; key: string }[] = [];
  #refHead = 0;
  readonly #historyLimit: number;
  readonly #historyBytesLimit: number;
  readonly #maxLength: number;

  constructor(stored: StoredDoc, options: TextDocOptions) {
    this.#text = textOf(stored.text);
    this.#version = stored.version;
    this.epoch = stored.epoch;
    this.#historyLimit = options.history;
    this.#historyBytesLimit = options.historyBytes ?? 0;
    this.#maxLength = options.maxDocLength;
    const log = stored.log.slice(-this.#historyLimit);
    if (log.length > 0 && log[log.length - 1].version !== stored.version) {
      throw new RangeError(`log ends at ${log[log.length - 1].version}, document is at ${stored.version}`);
    }
    const firstLogged = log.length > 0 ? log[0].version : stored.version + 1;
    for (const record of stored.refs ?? []) {
      if (record.version < firstLogged && record.version > stored.version - this.#historyLimit) this.#rememberRef(record.version, record.author, record.ref);
    }
    for (const entry of log) this.#remember(entry, changeSetOf(entry.changes, entry.docLength));
  }

  get version(): number {
    return this.#version;
  }

  /**
   * An independent copy (the text is persistent, so only the history's arrays are copied): edits
   * are prepared and installed on it while their commit is in flight, and it replaces this doc
   * once they are committed, or is dropped.
   */
  fork(): TextDoc {
    const copy = new TextDoc({ text: '', version: this.#version, log: [], epoch: this.epoch }, { history: this.#historyLimit, historyBytes: this.#historyBytesLimit, maxDocLength: this.#maxLength });
    copy.#text = this.#text;
    copy.#history = this.#history.slice();
    copy.#historyBytes = this.#historyBytes;
    copy.#refs = new Map(this.#refs);
    copy.#refOrder = this.#refOrder.slice(this.#refHead);
    return copy;
  }

  /** Refs still deduplicated whose entries the history no longer holds (for a store to keep). */
  refsBefore(version: number): RefRecord[] {
    const records: RefRecord[] = [];
    for (let i = this.#refHead; i < this.#refOrder.length; i++) {
      const { version: at, key } = this.#refOrder[i];
      if (at >= version) break;
      const split = key.indexOf('\u0000');
      records.push({ version: at, author: key.slice(0, split), ref: key.slice(split + 1) });
    }
    return records;
  }

  get length(): number {
    return this.#text.length;
  }

  /** The text itself (persistent: later edits make new ones), for the version-less models. */
  get content(): Text {
    return this.#text;
  }

  toString(): string {
    return this.#text.sliceString(0, this.#text.length, LINE_SEPARATOR);
  }

  /** The oldest base version a change or a resume can still start from. */
  get oldestBase(): number {
    return this.#version - this.#history.length;
  }

  /** Entries after `version`, or null when the history does not reach back that far. */
  entriesAfter(version: number): LogEntry[] | null {
    if (version > this.#version || version < this.oldestBase) return null;
    return this.#history.slice(version - this.oldestBase).map((item) => item.entry);
  }

  /**
   * Validates an edit, rebases it over every version its author had not seen, and returns the
   * entry to commit. Nothing changes until `install`: a commit that fails leaves the doc intact.
   */
  prepare(request: EditRequest, sender: string, author: string = sender): PrepareResult {
    if (request.ref !== undefined) {
      const committed = this.#refs.get(refKey(author, request.ref));
      if (committed !== undefined) return { kind: 'duplicate', version: committed };
    }
    const base = request.version ?? this.#version;
    if (base > this.#version) return reject('invalid_change', `version ${base} is ahead of the server (${this.#version})`);
    if (base < this.oldestBase) return reject('stale', `version ${base} is older than the history kept (from ${this.oldestBase}); reload`);
    const baseLength = base === this.#version ? this.#text.length : this.#history[base - this.oldestBase].entry.docLength;
    if (request.docLength !== undefined && request.docLength !== baseLength) {
      return reject('invalid_change', `doc_length ${request.docLength} is not the length at version ${base} (${baseLength})`);
    }
    const shapeError = checkChangeShape(request.changes, baseLength);
    if (shapeError) return reject('invalid_change', shapeError);
    // The fast path (issue 15): a change made on the current version needs no rebase, and when its
    // specs are already in the broadcast's form (non-empty, apart, in order) the set built from
    // them is the one every other party rebuilds: built once, not three times.
    const asBroadcast = base === this.#version && isCanonical(request.changes);
    let set = changeSetOf(request.changes, baseLength);
    for (let i = base - this.oldestBase; i < this.#history.length; i++) set = set.map(this.#history[i].set);
    const splitError = this.#checkSurrogateSplits(set);
    if (splitError) return reject('invalid_change', splitError);
    if (set.newLength > this.#maxLength && set.newLength > set.length) {
      return reject('too_large', `the document would be ${set.newLength} long; the limit is ${this.#maxLength}`);
    }
    const changes = asBroadcast ? request.changes.map(({ from, to, insert }) => ({ from, to, insert })) : specsOf(set);
    const entry: LogEntry = { version: this.#version + 1, changes, docLength: this.#text.length, sender };
    if (request.ref !== undefined) {
      entry.ref = request.ref;
      entry.author = author;
    }
    // Keep the set every other party rebuilds from the broadcast, not the mapped one: the two
    // apply alike but can map differently (an insertion next to a deletion is one replacement
    // once it went through `changes`), and rebasing over different structures diverges.
    return { kind: 'ready', entry, set: asBroadcast ? set : changeSetOf(changes, entry.docLength) };
  }

  /** Applies a committed entry: one this doc prepared, or one committed elsewhere. */
  install(entry: LogEntry, set: ChangeSet = changeSetOf(entry.changes, entry.docLength)): void {
    if (entry.version !== this.#version + 1) {
      throw new RangeError(`entry ${entry.version} does not follow version ${this.#version}`);
    }
    this.#text = set.apply(this.#text);
    this.#version = entry.version;
    this.#remember(entry, set);
  }

  /**
   * Keeps the entry for resume and rebase, within `history` versions and `historyBytes` bytes,
   * and its ref for deduplication within `history` versions whatever the bytes (PROTOCOL.md §6).
   */
  #remember(entry: LogEntry, set: ChangeSet): void {
    this.#history.push({ entry, set });
    this.#historyBytes += entryBytes(entry);
    // An entry without an author comes from a store written before refs were per author: its
    // sender (the connection) is the scope it had.
    if (entry.ref !== undefined) this.#rememberRef(entry.version, entry.author ?? entry.sender, entry.ref);
    let drop = 0;
    const overBytes = (): boolean => this.#historyBytesLimit > 0 && this.#historyBytes > this.#historyBytesLimit;
    while (drop < this.#history.length && (this.#history.length - drop > this.#historyLimit || overBytes())) {
      this.#historyBytes -= entryBytes(this.#history[drop].entry);
      drop++;
    }
    if (drop > 0) this.#history.splice(0, drop);
    this.#forgetRefsBefore(this.#version - this.#historyLimit + 1);
  }

  #rememberRef(version: number, author: string, ref: string): void {
    const key = refKey(author, ref);
    this.#refs.set(key, version);
    this.#refOrder.push({ version, key });
  }

  #forgetRefsBefore(version: number): void {
    const order = this.#refOrder;
    while (this.#refHead < order.length && order[this.#refHead].version < version) {
      const { key, version: at } = order[this.#refHead++];
      if (this.#refs.get(key) === at) this.#refs.delete(key);
    }
    if (this.#refHead > 1024 && this.#refHead * 2 > order.length) {
      this.#refOrder = order.slice(this.#refHead);
      this.#refHead = 0;
    }
  }

  #checkSurrogateSplits(set: ChangeSet): string | null {
    let error: string | null = null;
    set.iterChangedRanges((fromA, toA) => {
      if (error === null && (splitsSurrogatePair(this.#text, fromA) || splitsSurrogatePair(this.#text, toA))) {
        error = `a change at ${fromA}..${toA} splits a surrogate pair`;
      }
    });
    return error;
  }
}

/**
 * Specs exactly as `specsOf` gives them back: each changes something, and each starts after the
 * one before ends (adjacent ones would come back merged). Shape is checked before.
 */
function isCanonical(changes: readonly ChangeSpec[]): boolean {
  let lastTo = -1;
  for (const { from, to, insert } of changes) {
    if ((from === to && insert === '') || from <= lastTo) return false;
    lastTo = to;
  }
  return true;
}

function reject(code: ErrorCode, message: string): PrepareResult {
  return { kind: 'rejected', code, message };
}
