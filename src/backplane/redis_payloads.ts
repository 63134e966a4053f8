/**
 * What the Redis backplane writes and reads, typed and checked in one place (STYLE.md rule 16):
 * log entries in the stream, and what instances publish to each other. Anything that does not fit
 * (another version of this server, a hand-written key, a corrupted value) is dropped and counted,
 * never cast and trusted.
 */
import type { LogEntry } from '../doc/text_doc.ts';
import { isNonNegativeInteger, isRecord, readChanges } from '../protocol/validate.ts';

/** Payloads dropped because they did not fit, for tests and the log. */
export const droppedPayloads = { count: 0 };

/**
 * A committed change, as published: `e` + JSON, `o` first: the publishing instance, whose own
 * echo is recognised by its first bytes and never parsed (`isOwnEcho`).
 */
export interface EntryPayload {
  origin: string;
  epoch: string;
  entry: LogEntry;
}

/** A relayed selection: `s` + JSON, `o` the publishing instance (its own echo is dropped). */
export interface SelectionPayload {
  origin: string;
  message: Record<string, unknown>;
}

export type Published = { kind: 'entry'; payload: EntryPayload } | { kind: 'selection'; payload: SelectionPayload };

/** A log entry rebuilt from its known fields; null when it does not fit. */
export function entryFrom(value: unknown): LogEntry | null {
  if (!isRecord(value) || !isNonNegativeInteger(value.version) || value.version < 1 || !isNonNegativeInteger(value.docLength) || typeof value.sender !== 'string') return null;
  // The same rebuild as a client's changes get (validate.ts): only the known fields, each checked.
  const changes = readChanges(value.changes);
  if (typeof changes === 'string') return null;
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
  return 'e' + JSON.stringify({ o: payload.origin, epoch: payload.epoch, entry: payload.entry });
}

export function encodeSelectionPayload(payload: SelectionPayload): string {
  return 's' + JSON.stringify({ o: payload.origin, m: payload.message });
}

/**
 * True for what `origin` published itself (both kinds start `<kind>{"o":"<origin>",`): pub/sub
 * hands every instance its own messages back, and those need no parsing (issue 15).
 */
export function isOwnEcho(message: string, origin: string): boolean {
  return message.startsWith(origin, 7) && message.startsWith('{"o":"', 1) && message.startsWith('",', 7 + origin.length);
}

/** A pub/sub message; null (and counted) when it does not fit. */
export function parsePublished(message: string): Published | null {
  const body = parseJson(message.slice(1));
  if (message[0] === 'e' && isRecord(body) && typeof body.epoch === 'string') {
    const entry = entryFrom(body.entry);
    if (entry) return { kind: 'entry', payload: { origin: typeof body.o === 'string' ? body.o : '', epoch: body.epoch, entry } };
  } else if (message[0] === 's' && isRecord(body) && typeof body.o === 'string' && isRecord(body.m)) {
    return { kind: 'selection', payload: { origin: body.o, message: body.m } };
  }
  droppedPayloads.count++;
  return null;
}
