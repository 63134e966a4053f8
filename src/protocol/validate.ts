/**
 * Shape checks of PROTOCOL.md §2 for client messages. A value that is not a message at all is a
 * ProtocolError (close 4400); a message with a bad field is a refusal the connection survives.
 */
import { CloseCode, ProtocolError } from './close_codes.ts';
import { MAX_REF_LENGTH, type ChangeSpec, type ClientMessage, type CreateSelectionRequest, type ErrorCode } from './messages.ts';

export interface Refusal {
  refused: true;
  code: ErrorCode;
  message: string;
  ref?: string;
}

/** PROTOCOL.md §2: what a create_selection may carry besides its `selections`. */
const MAX_SELECTIONS = 100;
const MAX_EXTRA_FIELDS = 16;
const MAX_SCALAR_STRING = 256;
/** Server-set fields of a relayed selection: whatever the client put there is overwritten. */
const SERVER_FIELDS = new Set(['operation', 'selections', 'sender', 'version']);

export function isNonNegativeInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array);
}

function malformed(message: string, ref: string | undefined): Refusal {
  return ref === undefined ? { refused: true, code: 'malformed', message } : { refused: true, code: 'malformed', message, ref };
}

/**
 * The changes rebuilt from their known fields (extra ones are dropped here, so nothing a client
 * nests in a change crosses to the worker), or why not. A BigInt (msgpack uint64) is no number.
 */
export function readChanges(value: unknown): ChangeSpec[] | string {
  if (!Array.isArray(value)) return '`changes` must be an array of objects';
  const changes: ChangeSpec[] = [];
  for (let i = 0; i < value.length; i++) {
    const change: unknown = value[i];
    if (!isRecord(change)) return `changes[${i}] must be an object`;
    if (!isNonNegativeInteger(change.from)) return `changes[${i}].from must be a non-negative integer`;
    if (!isNonNegativeInteger(change.to)) return `changes[${i}].to must be a non-negative integer`;
    if (typeof change.insert !== 'string') return `changes[${i}].insert must be a string`;
    changes.push({ from: change.from, to: change.to, insert: change.insert });
  }
  return changes;
}

function readSelections(value: unknown): { anchor: number; head: number }[] | string {
  if (!Array.isArray(value)) return '`selections` must be an array of {anchor, head}';
  if (value.length > MAX_SELECTIONS) return `at most ${MAX_SELECTIONS} selections`;
  const ranges: { anchor: number; head: number }[] = [];
  for (let i = 0; i < value.length; i++) {
    const range: unknown = value[i];
    if (!isRecord(range) || !isNonNegativeInteger(range.anchor) || !isNonNegativeInteger(range.head)) {
      return `selections[${i}] must be {anchor, head} with non-negative integers`;
    }
    ranges.push({ anchor: range.anchor, head: range.head });
  }
  return ranges;
}

/** PROTOCOL.md §2's scalars: a short string, a finite number, a boolean or null. */
function isScalar(value: unknown): boolean {
  if (value === null || typeof value === 'boolean') return true;
  if (typeof value === 'number') return Number.isFinite(value) && (Number.isInteger(value) ? Number.isSafeInteger(value) : true);
  return typeof value === 'string' && value.length <= MAX_SCALAR_STRING;
}

/**
 * A create_selection rebuilt from what may be relayed: its ranges and at most 16 scalar fields
 * (a peer's name and colour, a SharePython field). Anything nested, or too much, is refused.
 */
function readSelectionMessage(value: Record<string, unknown>): CreateSelectionRequest | string {
  const selections = readSelections(value.selections);
  if (typeof selections === 'string') return selections;
  const message: CreateSelectionRequest = { operation: 'create_selection', selections };
  let extra = 0;
  for (const key of Object.keys(value)) {
    if (SERVER_FIELDS.has(key)) continue;
    if (key === '__proto__' || key.length > 64) return `field names are at most 64 characters`;
    if (!isScalar(value[key])) return `\`${key.slice(0, 64)}\` must be a scalar (a string of at most ${MAX_SCALAR_STRING} characters, a finite number, a boolean or null)`;
    if (++extra > MAX_EXTRA_FIELDS) return `at most ${MAX_EXTRA_FIELDS} fields besides \`selections\``;
    message[key] = value[key];
  }
  return message;
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
      const changes = readChanges(value.changes);
      if (typeof changes === 'string') return malformed(changes, ref);
      // Checked here, not only in the channel: a lone surrogate does not survive the msgpack
      // (UTF-8) trip to the worker, which would see U+FFFD and accept a different change.
      const lone = changes.findIndex((change) => !change.insert.isWellFormed());
      if (lone >= 0) return { refused: true, code: 'invalid_change', message: `changes[${lone}] inserts a lone surrogate`, ...(ref === undefined ? {} : { ref }) };
      for (const field of ['version', 'doc_length'] as const) {
        if (value[field] !== undefined && !isNonNegativeInteger(value[field])) {
          return malformed(`\`${field}\` must be a non-negative integer`, ref);
        }
      }
      const request: ClientMessage = { operation: 'insert_value', changes };
      if (value.doc_length !== undefined) request.doc_length = value.doc_length as number;
      if (value.version !== undefined) request.version = value.version as number;
      if (ref !== undefined) request.ref = ref;
      return request;
    }
    case 'create_selection': {
      const selection = readSelectionMessage(value);
      return typeof selection === 'string' ? malformed(selection, ref) : selection;
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
