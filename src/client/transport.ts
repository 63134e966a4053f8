/**
 * What the SDK talks to a server through. A transport opens one link per connection attempt; the
 * SDK does the rest (rebasing, resending, resume, backoff) the same way over any of them: a
 * WebSocket to a server URL here, or an in-process connection to an embedded hub
 * (`inProcessTransport` in the server package), with no socket at all.
 *
 * Browser-safe: the standard WebSocket and URL APIs only.
 */
import { decodeServerFrame, encodeMessage } from '../protocol/codec.ts';
import { CloseCode } from '../protocol/close_codes.ts';
import { SUBPROTOCOL_JSON, SUBPROTOCOL_MSGPACK, type Codec } from '../protocol/messages.ts';

/** What a connection attempt asks for (PROTOCOL.md §1). */
export interface LinkQuery {
  /** The client key: kept across reconnects, never shown to anyone but the server. */
  client: string;
  /** Resume from this version (the last one the client saw), of history `epoch`. */
  version?: number;
  epoch?: string;
}

/** What a link tells the SDK; never called synchronously from `open`. */
export interface LinkEvents {
  /** A message as the transport received it; the SDK hands it to `transport.decode`. */
  message(frame: unknown): void;
  /** The link ended (also after the SDK's own `close`), with the close code. */
  close(code: number, reason: string): void;
}

/** One connection attempt. */
export interface ClientLink {
  /** A message object; dropped if the link is not open (the SDK resends what is not acked). */
  send(message: object): void;
  close(code: number, reason: string): void;
}

export interface ClientTransport {
  /** Opens a link. Throws when it can never succeed (a URL the WebSocket API refuses). */
  open(query: LinkQuery, events: LinkEvents): ClientLink;
  /** Turns what `LinkEvents.message` received into a message object; throws on garbage. */
  decode(frame: unknown): unknown;
}

/**
 * An event handler property, compared bivariantly (as methods are): so that the WebSocket of
 * browsers, Deno and `ws`, whose handlers take their own richer event types, fits as it is.
 */
type Handler<E> = { handle(event: E): void }['handle'];

/** The part of the standard WebSocket the SDK uses (browsers, Deno, Bun, `ws`). */
export interface WebSocketLike {
  binaryType: string;
  readonly readyState: number;
  onopen: Handler<unknown> | null;
  onmessage: Handler<{ data: unknown }> | null;
  onclose: Handler<{ code: number; reason: string }> | null;
  onerror: Handler<unknown> | null;
  send(data: string | Uint8Array): void;
  close(code?: number, reason?: string): void;
}

export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

/** Close codes after which reconnecting cannot help: derived from the table (PROTOCOL.md §5). */
export const FINAL_CLOSE_CODES: ReadonlySet<number> = new Set(Object.values(CloseCode).filter((entry) => !entry.reconnect).map((entry) => entry.code));

/** PROTOCOL.md §1: 16 to 64 characters of `[A-Za-z0-9_-]`. */
export const CLIENT_KEY_PATTERN = /^[A-Za-z0-9_-]{16,64}$/;

/** A fresh client key: 128 random bits, base64url (22 characters). */
export function randomClientKey(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** A server URL taken apart: where the codespace path goes, and the token if the URL named one. */
export interface ServerUrl {
  /** Scheme, host and any path prefix, without a trailing slash: `ws://host:port/prefix`. */
  base: string;
  token: string | null;
  /** Query parameters of the URL that are not the SDK's own (kept, for a proxy in between). */
  params: [string, string][];
}

const CODESPACE_PATH = /^(.*?)\/codespace\/([^/]+)\/?$/;
const SDK_PARAMS = new Set(['version', 'epoch', 'client']);

/**
 * Parses `ws://host:port`, `ws://host:port/prefix`, or the full
 * `ws://host:port/codespace/<token>/` (http and https stand for ws and wss). Returns a message
 * saying what is wrong instead when the URL cannot work.
 */
export function parseServerUrl(input: string): ServerUrl | string {
  let url: URL;
  try {
    url = new URL(input);
  } catch {
    return `not a URL: ${JSON.stringify(input.slice(0, 200))}`;
  }
  const scheme = { 'ws:': 'ws:', 'wss:': 'wss:', 'http:': 'ws:', 'https:': 'wss:' }[url.protocol];
  if (!scheme) return `a server URL is ws:// or wss://, not ${url.protocol}//`;
  if (url.username || url.password) return 'a server URL carries no user name or password';
  let path = url.pathname;
  let token: string | null = null;
  const match = CODESPACE_PATH.exec(path);
  if (match) {
    try {
      token = decodeURIComponent(match[2]);
    } catch {
      return 'the token in the URL is not valid percent-encoding';
    }
    path = match[1];
  }
  const params = [...url.searchParams].filter(([name]) => !SDK_PARAMS.has(name));
  return { base: `${scheme}//${url.host}${path.replace(/\/+$/, '')}`, token, params };
}

/** The URL of one attempt: the codespace path and the query of PROTOCOL.md §1. */
export function codespaceUrl(server: ServerUrl, token: string, query: LinkQuery): string {
  const params = new URLSearchParams(server.params);
  if (query.version !== undefined) params.set('version', String(query.version));
  if (query.version !== undefined && query.epoch !== undefined) params.set('epoch', query.epoch);
  params.set('client', query.client);
  return `${server.base}/codespace/${encodeURIComponent(token)}/?${params}`;
}

/** Where a client connects: server URLs with a token, or transports. */
export type ServerTarget = string | readonly string[] | ClientTransport | readonly ClientTransport[];

/** The transports of a target, or what is wrong with it. */
export function transportsFor(target: ServerTarget, token: string | undefined, WebSocketOption: WebSocketConstructor | undefined, codec: Codec): ClientTransport[] | string {
  const targets: readonly (string | ClientTransport)[] = typeof target === 'string' || !Array.isArray(target) ? [target as string | ClientTransport] : target;
  if (targets.length === 0) return 'connect needs at least one server URL or transport';
  if (targets.every((each) => typeof each !== 'string')) return targets as ClientTransport[];
  if (!targets.every((each) => typeof each === 'string')) return 'give server URLs or transports, not both';
  const WebSocketClass = WebSocketOption ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (!WebSocketClass) throw new TypeError('no WebSocket implementation: pass options.WebSocket (e.g. from the ws package)');
  const transports: ClientTransport[] = [];
  let chosenToken: string | undefined;
  for (const url of targets as string[]) {
    const server = parseServerUrl(url);
    if (typeof server === 'string') return server;
    if (server.token !== null && token !== undefined && server.token !== token) return 'the URL names one token and the token argument another';
    const tokenOfUrl = server.token ?? token;
    if (tokenOfUrl === undefined || tokenOfUrl === '') return 'no token: pass one, or a URL of the form ws://host:port/codespace/<token>/';
    // One client edits one codespace, whichever server it reaches.
    if (transports.length > 0 && tokenOfUrl !== chosenToken) return 'the URLs name different tokens';
    chosenToken = tokenOfUrl;
    transports.push(webSocketTransport(server, tokenOfUrl, WebSocketClass, codec));
  }
  return transports;
}

/** Links over the WebSocket API to one server URL. */
export function webSocketTransport(server: ServerUrl, token: string, WebSocketClass: WebSocketConstructor, codec: Codec): ClientTransport {
  const protocol = codec === 'json' ? SUBPROTOCOL_JSON : SUBPROTOCOL_MSGPACK;
  return {
    open(query, events) {
      const socket = new WebSocketClass(codespaceUrl(server, token, query), [protocol]);
      socket.binaryType = 'arraybuffer';
      socket.onmessage = function socketOnMessage(event) {
        events.message(event.data);
      };
      socket.onclose = function socketOnClose(event) {
        events.close(event.code, event.reason);
      };
      socket.onerror = function socketOnError() {
        // Followed by close, which decides what comes next.
      };
      return {
        send(message) {
          if (socket.readyState === 1) socket.send(codec === 'json' ? JSON.stringify(message) : encodeMessage(message, 'msgpack'));
        },
        close(code, reason) {
          socket.close(code, reason);
        },
      };
    },
    decode(frame) {
      return decodeServerFrame(typeof frame === 'string' ? frame : new Uint8Array(frame as ArrayBuffer), codec);
    },
  };
}
