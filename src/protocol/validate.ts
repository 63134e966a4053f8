/**
 * Shape checks of PROTOCOL.md §2 for client messages. A value that is not a message at all is a
 * ProtocolError (close 4400); a message with a bad field is a refusal the connection survives.
 */
import { CloseCode, ProtocolError } from './close_codes.ts';
import { MAX_REF_LENGTH, type ChangeSpec, type ClientMessage, type ErrorCode } from './messages.ts';

export interface Refusal {
  refused: true;
  code: ErrorCode;
  message: string;
  ref?: string;
}

/** Most selection ranges relayed in one message; far beyond what any editor shows. */
const MAX_SELECTIONS = 1000;

function isNonNegativeInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array);
}

function malformed(message: string, ref: string | undefined): Refusal {
  return ref === undefined ? { refused: true, code: 'malformed', message } : { refused: true, code: 'malformed', message, ref };
}

function checkChanges(value: unknown): string | null {
  if (!Array.isArray(value)) return '`changes` must be an array of objects';
  for (let i = 0; i < value.length; i++) {
    const change = value[i];
    if (!isRecord(change)) return `changes[${i}] must be an object`;
    if (!isNonNegativeInteger(change.from)) return `changes[${i}].from must be a non-negative integer`;
    if (!isNonNegativeInteger(change.to)) return `changes[${i}].to must be a non-negative integer`;
    if (typeof change.insert !== 'string') return `changes[${i}].insert must be a string`;
  }
  return null;
}

function checkSelections(value: unknown): string | null {
  if (!Array.isArray(value)) return '`selections` must be an array of {anchor, head}';
  if (value.length > MAX_SELECTIONS) return `at most ${MAX_SELECTIONS} selections`;
  for (let i = 0; i < value.length; i++) {
    const range = value[i];
    if (!isRecord(range) || !isNonNegativeInteger(range.anchor) || !isNonNegativeInteger(range.head)) {
      return `selections[${i}] must be {anchor, head} with non-negative integers`;
    }
  }
  return null;
}

/** A `ref` is echoed in refusals only once it is known to be a proper one. */
function readRef(message: Record<string, unknown>): { ref?: string; error?: string } {
  if (message.ref === undefined) return {};
  if (typeof message.ref !== 'string' || message.ref.length > MAX_REF_LENGTH) {
    return { error: `\`ref\` must be a string of at most ${MAX_REF_LENGTH} characters` };
  }
  return { ref: message.ref };
}

const FAULT_KINDS = new Set(['throw', 'hang', 'oom']);

/** `faults`: FAULT_INJECTION is on, so `__fault` is a message (otherwise an unknown operation). */
export function parseClientMessage(value: unknown, faults = false): ClientMessage | Refusal {
  if (!isRecord(value) || typeof value.operation !== 'string') {
    throw new ProtocolError(CloseCode.badMessage, 'not an object with a string `operation`');
  }
  const { ref, error: refError } = readRef(value);
  switch (value.operation) {
    case 'insert_value': {
      if (refError) return malformed(refError, undefined);
      const changesError = checkChanges(value.changes);
      if (changesError) return malformed(changesError, ref);
      // Checked here, not only in the channel: a lone surrogate does not survive the msgpack
      // (UTF-8) trip to the worker, which would see U+FFFD and accept a different change.
      const lone = (value.changes as ChangeSpec[]).findIndex((change) => !change.insert.isWellFormed());
      if (lone >= 0) return { refused: true, code: 'invalid_change', message: `changes[${lone}] inserts a lone surrogate`, ...(ref === undefined ? {} : { ref }) };
      for (const field of ['version', 'doc_length'] as const) {
        if (value[field] !== undefined && !isNonNegativeInteger(value[field])) {
          return malformed(`\`${field}\` must be a non-negative integer`, ref);
        }
      }
      const request: ClientMessage = { operation: 'insert_value', changes: value.changes as ChangeSpec[] };
      if (value.doc_length !== undefined) request.doc_length = value.doc_length as number;
      if (value.version !== undefined) request.version = value.version as number;
      if (ref !== undefined) request.ref = ref;
      return request;
    }
    case 'create_selection': {
      const selectionsError = checkSelections(value.selections);
      if (selectionsError) return malformed(selectionsError, ref);
      return value as ClientMessage;
    }
    case '__fault':
      if (!faults) break;
      if (typeof value.kind !== 'string' || !FAULT_KINDS.has(value.kind)) return malformed('`kind` must be throw, hang or oom', ref);
      return { operation: '__fault', kind: value.kind as 'throw' | 'hang' | 'oom' };
  }
  return { refused: true, code: 'unknown_operation', message: `unknown operation ${JSON.stringify(value.operation.slice(0, 64))}`, ...(ref === undefined ? {} : { ref }) };
}

export function isRefusal(value: ClientMessage | Refusal): value is Refusal {
  return (value as Refusal).refused === true;
}
