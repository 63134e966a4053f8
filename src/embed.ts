/**
 * Embedding: run the whole server in an app (`startServer`), or the hub with no socket at all
 * (`createHub`), and talk to it in-process, either raw (`connectInProcess`) or through the SDK
 * (`connect(inProcessTransport(hub, token))`), which brings rebasing, resending, resume and the
 * CodeMirror binding to an editor in the same process.
 */
import type { ClientLink, ClientTransport } from './client/transport.ts';
import { loadConfig, type Config } from './config.ts';
import { decodeServerFrame } from './protocol/codec.ts';
import type { ClientMessage, ServerMessage } from './protocol/messages.ts';
import { Acceptor } from './server/acceptor.ts';
import { Hub, type LogFn } from './server/hub.ts';
import type { JoinParams } from './server/upgrade_target.ts';

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

/** A hub with no socket; channels run on this thread unless `workers` says otherwise. */
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

/**
 * The SDK's transport to an embedded hub: `connect(inProcessTransport(hub, token))`. Each
 * (re)connect opens a new in-process connection, resuming as a WebSocket client would; a close
 * from the hub (shutdown, a refused token) reaches the SDK with its code, as over a socket.
 */
export function inProcessTransport(hub: Hub, token: string): ClientTransport {
  return {
    open(query, events) {
      let connection: InProcessConnection | null = null;
      let ended = false;
      const queued: object[] = [];
      const end = (code: number, reason: string): void => {
        if (ended) return;
        ended = true;
        events.close(code, reason);
      };
      // The same join parameters as a WebSocket URL's query: resume, epoch and client key.
      connectInProcess(hub, token, { resume: query.version, epoch: query.epoch, clientKey: query.client }).then(
        (opened) => {
          if (ended) return opened.close();
          connection = opened;
          opened.onClose(end);
          opened.onMessage((message) => {
            if (!ended) events.message(message);
          });
          for (const message of queued.splice(0)) opened.send(message as ClientMessage);
        },
        (error: unknown) => end(1011, `in-process connection failed: ${error instanceof Error ? error.message : String(error)}`),
      );
      const link: ClientLink = {
        send(message) {
          if (ended) return;
          // A copy: the SDK keeps its in-flight change to resend, and nothing else may hold it.
          if (connection) connection.send(structuredClone(message) as ClientMessage);
          else queued.push(structuredClone(message));
        },
        close(code, reason) {
          if (ended) return;
          connection?.close();
          // As a WebSocket does: the close is heard afterwards, never from inside close().
          queueMicrotask(() => end(code, reason));
        },
      };
      return link;
    },
    decode(message) {
      return message;
    },
  };
}
