/** The SDK's options and the events it emits (client.ts). */
import type { ChangeSpec, Codec, ConnectedData, ErrorCode, PeerInfo } from '../protocol/messages.ts';
import type { WebSocketConstructor } from './transport.ts';

export type ConnectionState = 'connecting' | 'open' | 'reconnecting' | 'closed';

export interface ClientOptions {
  /** Defaults to `globalThis.WebSocket`. */
  WebSocket?: WebSocketConstructor;
  codec?: Codec;
  /** Reconnect after a lost connection (default true). */
  reconnect?: boolean;
  minReconnectDelayMs?: number;
  maxReconnectDelayMs?: number;
  /** Wait before resending an edit the server answered `unavailable`. */
  resendDelayMs?: number;
  /** Prefix of this client's refs; random by default. */
  clientId?: string;
  /**
   * The client key (PROTOCOL.md §1: 16 to 64 characters of `[A-Za-z0-9_-]`), sent on every
   * connection and kept across reconnects; random by default, once per client. A secret: never
   * log it.
   */
  clientKey?: string;
}

export interface RemoteChange {
  version: number;
  sender: string;
  /** As the server broadcast it: in the coordinates of the document at `version - 1`. */
  changes: ChangeSpec[];
  docLength: number;
  /**
   * The same change in the coordinates of this client's `text` just before it, which differ
   * from the server's while local edits are pending: what an editor showing `text` applies.
   */
  localChanges: ChangeSpec[];
}

export interface ClientEvents {
  state: ConnectionState;
  connected: ConnectedData;
  resync: ConnectedData;
  change: RemoteChange;
  ack: { version: number; ref: string | undefined };
  selection: Record<string, unknown>;
  presence: { kind: 'joined' | 'left'; peer: PeerInfo };
  /**
   * `closed`: a close code after which reconnecting cannot help (4401, 4404, ...), or any close
   * with `reconnect: false`; `bad_url`: a server URL that cannot work. Both are final: the state
   * is `closed` and nothing is retried.
   */
  error: { code: ErrorCode | 'closed' | 'bad_url' | 'local_edits_lost' | 'bad_message'; message: string; ref?: string };
  closed: { code: number; reason: string };
  /**
   * `text` changed by something other than a local edit or a remote change: a refused edit taken
   * back out, or a restart from the server's text. An editor replaces its whole content.
   */
  replaced: { text: string; reason: 'refused' | 'reset' };
}
