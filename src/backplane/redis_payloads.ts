/**
 * What the Redis backplane writes and reads, typed and checked in one place (STYLE.md rule 16):
 * log entries in the stream, and what instances publish to each other. Anything that does not fit
 * (another version of this server, a hand-written key, a corrupted value) is dropped and counted,
 * never cast and trusted.
 */
import type { LogEntry } from '../doc/text_doc.ts';
import type { ChangeSpec } from '../protocol/messages.ts';

/** Payloads dropped because they did not fit, for tests and the log. */
export const droppedPayloads = { count: 0 };

/** A committed change, as published: `e` + JSON. */
export interface EntryPayload {
  epoch: string;
  entry: LogEntry;
}

/** A relayed selection: `s` + JSON, `o` the publishing instance (its own echo is dropped). */
export interface SelectionPayload {
  origin: string;
  message: Record<string, unknown>;
}

export type Published = { kind: 'entry'; payload: EntryPayload } | { kind: 'selection'; payload: SelectionPayload };

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function changesOf(value: unknown): ChangeSpec[] | null {
  if (!Array.isArray(value)) return null;
  const changes: ChangeSpec[] = [];
  for (const change of value) {
    if (!isRecord(change) || !isCount(change.from) || !isCount(change.to) || typeof change.insert !== 'string') return null;
    changes.push({ from: change.from, to: change.to, insert: change.insert });
  }
  return changes;
}

/** A log entry rebuilt from its known fields; null when it does not fit. */
export function entryFrom(value: unknown): LogEntry | null {
  if (!isRecord(value) || !isCount(value.version) || value.version < 1 || !isCount(value.docLength) || typeof value.sender !== 'string') return null;
  const changes = changesOf(value.changes);
  if (!changes) return null;
  const entry: LogEntry = { version: value.version, changes, docLength: value.docLength, sender: value.sender };
  if (typeof value.ref === 'string') entry.ref = value.ref;
  if (typeof value.author === 'string') entry.author = value.author;
  return entry;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** A stream entry's field `e`; null (and counted) when it does not fit. */
export function parseStoredEntry(text: string | undefined): LogEntry | null {
  const entry = text === undefined ? null : entryFrom(parseJson(text));
  if (!entry) droppedPayloads.count++;
  return entry;
}

export function encodeEntryPayload(payload: EntryPayload): string {
  return 'e' + JSON.stringify({ epoch: payload.epoch, entry: payload.entry });
}

export function encodeSelectionPayload(payload: SelectionPayload): string {
  return 's' + JSON.stringify({ o: payload.origin, m: payload.message });
}

/** A pub/sub message; null (and counted) when it does not fit. */
export function parsePublished(message: string): Published | null {
  const body = parseJson(message.slice(1));
  if (message[0] === 'e' && isRecord(body) && typeof body.epoch === 'string') {
    const entry = entryFrom(body.entry);
    if (entry) return { kind: 'entry', payload: { epoch: body.epoch, entry } };
  } else if (message[0] === 's' && isRecord(body) && typeof body.o === 'string' && isRecord(body.m)) {
    return { kind: 'selection', payload: { origin: body.o, message: body.m } };
  }
  droppedPayloads.count++;
  return null;
}
