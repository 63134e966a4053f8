/** Wire types of PROTOCOL.md §2. Positions and lengths count UTF-16 code units. */

export type Mode = 'edit' | 'view_only';
export type Codec = 'json' | 'msgpack';

export interface ChangeSpec {
  from: number;
  to: number;
  insert: string;
}

export interface PeerInfo {
  id: string;
  mode: Mode;
}

export type ErrorCode =
  | 'unknown_operation'
  | 'malformed'
  | 'forbidden'
  | 'invalid_change'
  | 'stale'
  | 'too_large'
  | 'rate_limited'
  | 'unavailable';

// ---- client to server ----

export interface InsertValueRequest {
  operation: 'insert_value';
  changes: ChangeSpec[];
  doc_length?: number;
  version?: number;
  ref?: string;
}

export interface CreateSelectionRequest {
  operation: 'create_selection';
  /** Relayed with every field the client sent; only `sender` and `version` are overwritten. */
  [field: string]: unknown;
}

/** Stress tests only, accepted when FAULT_INJECTION=1: makes the channel throw, spin or exhaust its worker's memory. */
export interface FaultRequest {
  operation: '__fault';
  kind: FaultKind;
}

export type FaultKind = 'throw' | 'hang' | 'oom';

export type ClientMessage = InsertValueRequest | CreateSelectionRequest | FaultRequest;

// ---- server to client ----

export interface ConnectedData {
  id: string;
  mode: Mode;
  codespace: string;
  version: number;
  /** The history `version` belongs to (PROTOCOL.md §1). */
  epoch: string;
  code?: string;
  peers: PeerInfo[];
  resumed?: true;
}

export interface ConnectedMessage {
  operation: 'connected' | 'resync';
  data: ConnectedData;
}

export interface InsertValueBroadcast {
  operation: 'insert_value';
  sender: string;
  version: number;
  changes: ChangeSpec[];
  doc_length: number;
  ref?: string;
}

export interface AckMessage {
  operation: 'ack';
  version: number;
  ref?: string;
}

export interface PeerMessage {
  operation: 'peer_joined' | 'peer_left';
  data: PeerInfo;
}

export interface ErrorMessage {
  operation: 'error';
  data: { code: ErrorCode; message: string; ref?: string };
}

export type ServerMessage =
  | ConnectedMessage
  | InsertValueBroadcast
  | AckMessage
  | PeerMessage
  | ErrorMessage
  | ({ operation: 'create_selection'; sender: string; version: number } & Record<string, unknown>);

export const SUBPROTOCOL_JSON = 'codespace.v1.json';
export const SUBPROTOCOL_MSGPACK = 'codespace.v1.msgpack';

/** PROTOCOL.md §1, less ids ending in `:log`: their Redis hash would be another codespace's log stream (§7). */
export const CODESPACE_ID_PATTERN = /^(?!.*:log$)[A-Za-z0-9_.:-]{1,128}$/;

export const MAX_REF_LENGTH = 64;
