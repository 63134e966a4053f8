/**
 * The public API. Run the whole server (`startServer`), or embed the hub with no socket at all
 * (`createHub` + `connectInProcess`): a desktop app runs the same supervisor and channel actors
 * in-process or in workers, and talks to them through `send(message)` / `onMessage(listener)`.
 */
import { loadConfig, type Config } from './config.ts';
import { Acceptor } from './server/acceptor.ts';
import { Hub, type LogFn } from './server/hub.ts';
import { decodeServerFrame } from './protocol/codec.ts';
import type { JoinParams } from './server/upgrade_target.ts';
import type { ClientMessage, ServerMessage } from './protocol/messages.ts';

export type { Config } from './config.ts';
export type { JoinParams } from './server/upgrade_target.ts';
export { loadConfig, helpText, defaultConfig } from './config.ts';
export { Hub } from './server/hub.ts';
export { Acceptor } from './server/acceptor.ts';
export { CloseCode, ProtocolError } from './protocol/close_codes.ts';
export type * from './protocol/messages.ts';
export { TextDoc, changeSetOf, specsOf, textOf, LINE_SEPARATOR } from './doc/text_doc.ts';
export type { LogEntry, StoredDoc } from './doc/text_doc.ts';
export { connect, CodespaceClient } from './client/client.ts';
export type { ClientOptions, ClientEvents, ConnectionState, RemoteChange } from './client/client.ts';
export { syncEditor, remote } from './client/codemirror.ts';
export type { EditorLike, EditorSync } from './client/codemirror.ts';

export interface RunningServer {
  hub: Hub;
  acceptor: Acceptor;
  host: string;
  port: number;
  url: string;
  close(): Promise<void>;
}

/** Starts hub and acceptor. `overrides` win over the environment. */
export async function startServer(overrides: Partial<Config> = {}, log?: LogFn, env: Record<string, string | undefined> = {}): Promise<RunningServer> {
  const config = loadConfig(env, [], overrides);
  const hub = new Hub(config, log);
  const acceptor = new Acceptor(hub);
  try {
    const { host, port } = await acceptor.listen();
    const shownHost = host.includes(':') ? `[${host}]` : host;
    return { hub, acceptor, host, port, url: `ws://${shownHost}:${port}`, close: () => acceptor.close() };
  } catch (error) {
    await hub.close();
    throw error;
  }
}

export function createHub(overrides: Partial<Config> = {}, log?: LogFn): Hub {
  return new Hub(loadConfig({}, [], { workers: 0, ...overrides }), log);
}

export type CloseListener = (code: number, reason: string) => void;

/** A connection with no socket: the embedding way in. */
export interface InProcessConnection {
  readonly id: string;
  send(message: ClientMessage | Record<string, unknown>): void;
  /** Returns a function that removes the listener. Messages that came before any listener wait. */
  onMessage(listener: (message: ServerMessage) => void): () => void;
  onClose(listener: CloseListener): void;
  close(): void;
}

/** Opens an in-process connection to the codespace `token` grants (a tmp- token needs no API). */
export async function connectInProcess(hub: Hub, token: string, options: JoinParams = {}): Promise<InProcessConnection> {
  const listeners = new Set<(message: ServerMessage) => void>();
  const closeListeners: CloseListener[] = [];
  const waiting: ServerMessage[] = [];
  let closedWith: { code: number; reason: string } | null = null;
  const connection = hub.connection({
    // msgpack: the cheapest codec to decode again on this side.
    write(bytes) {
      const message = decodeServerFrame(bytes, 'msgpack') as ServerMessage;
      if (listeners.size === 0) waiting.push(message);
      else for (const listener of listeners) listener(message);
    },
    close(code, reason) {
      closedWith = { code, reason };
      for (const listener of closeListeners) listener(code, reason);
    },
  }, 'msgpack');
  await hub.open(connection, token, options);
  return {
    id: connection.id,
    send(message) {
      try {
        connection.receive(message);
      } catch (error) {
        connection.fail(error);
      }
    },
    onMessage(listener) {
      listeners.add(listener);
      for (const message of waiting.splice(0)) listener(message);
      return () => listeners.delete(listener);
    },
    onClose(listener) {
      if (closedWith) listener(closedWith.code, closedWith.reason);
      else closeListeners.push(listener);
    },
    close() {
      connection.detach();
    },
  };
}
