/**
 * The public API (`codespace`): run the whole server (`startServer`), or embed the hub with no
 * socket at all (`createHub`) and reach it in-process, raw (`connectInProcess`) or through the
 * SDK (`connect(inProcessTransport(hub, token))`). Exports only; see embed.ts.
 */
export type { Config } from './config.ts';
export type { JoinParams } from './server/upgrade_target.ts';
export { loadConfig, helpText, defaultConfig } from './config.ts';
export { Hub } from './server/hub.ts';
export type { LogFn } from './server/hub.ts';
export { Acceptor } from './server/acceptor.ts';
export { CloseCode, ProtocolError } from './protocol/close_codes.ts';
export type { CloseCodeEntry } from './protocol/close_codes.ts';
export type * from './protocol/messages.ts';
export { TextDoc, changeSetOf, specsOf, textOf, LINE_SEPARATOR } from './doc/text_doc.ts';
export type { LogEntry, StoredDoc } from './doc/text_doc.ts';
export { connect, CodespaceClient, randomClientKey } from './client/client.ts';
export type {
  ClientEvents,
  ClientLink,
  ClientOptions,
  ClientTransport,
  ConnectionState,
  LinkEvents,
  LinkQuery,
  RemoteChange,
  ServerTarget,
  WebSocketConstructor,
  WebSocketLike,
} from './client/client.ts';
export { syncEditor, remote } from './client/codemirror.ts';
export type { EditorLike, EditorSync } from './client/codemirror.ts';
export { startServer, createHub, connectInProcess, inProcessTransport } from './embed.ts';
export type { RunningServer, CloseListener, InProcessConnection } from './embed.ts';
