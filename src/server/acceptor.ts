/**
 * The acceptor: the HTTP server, the WebSocket upgrade, and one Session per socket. It parses
 * the path and subprotocol, counts connections, and sweeps every session from one timer for
 * pings (PROTOCOL.md §4) and the idle timeout.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { CloseCode } from '../protocol/close_codes.ts';
import { SUBPROTOCOL_JSON, SUBPROTOCOL_MSGPACK, type Codec } from '../protocol/messages.ts';
import { DescriptorGuard, openFileLimit } from './descriptors.ts';
import type { Hub } from './hub.ts';
import { routeHttp } from './http_routes.ts';
import { isCodeRoute, serveCode } from './http_routes_code.ts';
import { Session } from './session.ts';
import { parseUpgradeTarget, pathOf } from './upgrade_target.ts';

/**
 * How long to stop listening when accept fails (EMFILE, ENFILE). libuv keeps a spare descriptor
 * to accept and at once close a connection it has no descriptor for, so a full table normally
 * never reaches us (clients see a reset; measured in test/descriptors.test.ts). When the spare is
 * gone too (another thread took its slot), accept fails up to the server's 'error' event, and
 * libuv retries at once, in the same loop, for as long as the table stays full: a crash without a
 * listener, a spin with one. Closing the listening socket ends that loop; new clients are refused
 * for a moment and retry; open connections carry on.
 */
const ACCEPT_PAUSE_MS = 500;

/**
 * Descriptors kept free for the server's own needs: a Redis reconnect, a token lookup, a worker
 * replacing a dead one, the log, /healthz. Within this many of `ulimit -n` new WebSocket
 * connections are answered 503 (and retry) until closing ones free FD_SLACK more. Without it a
 * full table failed those from inside (EMFILE), and on Bun the accept loop spun on a core.
 */
const FD_RESERVE = 24;

/**
 * The part of a drain's time the listener stays open, answering 503 to /readyz and to new
 * upgrades: a load balancer needs a few failed probes to take the instance out, and a client
 * that joins meanwhile is told to go elsewhere instead of finding the port closed (issue 11).
 */
const DRAIN_LISTEN_FRACTION = 0.5;
const FD_SLACK = 4;

function chooseSubprotocol(protocols: Set<string>): string | false {
  if (protocols.has(SUBPROTOCOL_MSGPACK)) return SUBPROTOCOL_MSGPACK;
  if (protocols.has(SUBPROTOCOL_JSON)) return SUBPROTOCOL_JSON;
  return false;
}

function refuseUpgrade(socket: Duplex, status: number, text: string): void {
  if (socket.writable) socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${text.length}\r\n\r\n${text}`);
  else socket.destroy();
}

export class Acceptor {
  readonly #hub: Hub;
  readonly #http: Server;
  readonly #wss: WebSocketServer;
  readonly #sessions = new Set<Session>();
  #sweepTimer: ReturnType<typeof setInterval> | null = null;
  #lastPingSweep = Date.now();
  #draining = false;
  /** The port listened on (the one chosen, for PORT=0), to listen again after a pause. */
  #port = 0;
  #relistenTimer: ReturnType<typeof setTimeout> | null = null;
  /** Null where the limit is unknown (not Linux) or too small to keep a reserve in. */
  readonly #descriptors: DescriptorGuard | null;

  constructor(hub: Hub) {
    this.#hub = hub;
    this.#http = createServer(this.#httpOnRequest);
    this.#wss = new WebSocketServer({
      noServer: true,
      maxPayload: hub.config.maxMessageBytes,
      // Compression would rule out framing each broadcast once, and costs CPU per recipient.
      perMessageDeflate: false,
      clientTracking: false,
      handleProtocols: chooseSubprotocol,
    });
    this.#http.on('upgrade', this.#httpOnUpgrade);
    const limit = openFileLimit();
    this.#descriptors = limit !== null && limit > 4 * FD_RESERVE ? new DescriptorGuard(limit, { reserve: FD_RESERVE, slack: FD_SLACK, minIntervalMs: 20 }) : null;
  }

  get connections(): number {
    return this.#sessions.size;
  }

  get sessions(): ReadonlySet<Session> {
    return this.#sessions;
  }

  async listen(): Promise<{ host: string; port: number }> {
    const { host, port } = this.#hub.config;
    await new Promise<void>((resolve, reject) => {
      this.#http.once('error', reject);
      this.#http.listen(port, host, () => {
        this.#http.off('error', reject);
        resolve();
      });
    });
    this.#http.on('error', this.#httpOnError);
    this.#startSweeps();
    const address = this.#http.address();
    this.#port = typeof address === 'object' && address ? address.port : port;
    return { host, port: this.#port };
  }

  /** Stops at once: every connection closed with 1001, then the hub (channels flush). */
  async close(): Promise<void> {
    await this.drain(0);
  }

  /**
   * The graceful stop of SIGTERM: refuse new connections, close the open ones with 1001 spread
   * over a part of `timeoutMs` (so thousands of clients do not all reconnect in the same
   * millisecond), then stop every channel, each flushing its snapshot.
   */
  async drain(timeoutMs: number): Promise<void> {
    if (this.#draining) return;
    this.#draining = true;
    const lingerUntil = Date.now() + timeoutMs * DRAIN_LISTEN_FRACTION;
    if (this.#sweepTimer) clearInterval(this.#sweepTimer);
    if (this.#relistenTimer) clearTimeout(this.#relistenTimer);
    // Listening goes on until the drain is over: a load balancer probing /readyz, and a client
    // trying to join, get a 503 (and go elsewhere) rather than a refused connection (issue 11).
    const sessions = [...this.#sessions];
    const batches = Math.min(20, Math.max(1, Math.ceil(sessions.length / 100)));
    const pauseMs = batches > 1 ? Math.min(100, timeoutMs / 4 / batches) : 0;
    const perBatch = Math.ceil(sessions.length / batches);
    for (let start = 0; start < sessions.length; start += perBatch) {
      if (start > 0 && pauseMs > 0) await new Promise((resolve) => setTimeout(resolve, pauseMs));
      for (const session of sessions.slice(start, start + perBatch)) session.connection.closeWith(CloseCode.shuttingDown);
    }
    await this.#hub.close();
    const linger = lingerUntil - Date.now();
    if (linger > 0) await new Promise((resolve) => setTimeout(resolve, linger));
    const listening = new Promise<void>((resolve) => this.#http.close(() => resolve()));
    this.#http.closeAllConnections?.();
    await listening;
  }

  #startSweeps(): void {
    const { pingIntervalMs, idleTimeoutMs } = this.#hub.config;
    const tickMs = idleTimeoutMs > 0 ? Math.max(10, Math.min(pingIntervalMs, Math.floor(idleTimeoutMs / 4))) : pingIntervalMs;
    this.#sweepTimer = setInterval(this.#sweepOnTick, tickMs);
    this.#sweepTimer.unref?.();
  }

  readonly #sweepOnTick = (): void => {
    const now = Date.now();
    const { pingIntervalMs } = this.#hub.config;
    const pingDue = now - this.#lastPingSweep >= pingIntervalMs - 5;
    if (pingDue) this.#lastPingSweep = now;
    for (const session of this.#sessions) {
      try {
        this.#sweepSession(session, now, pingDue);
      } catch (error) {
        // One session in an odd state (a socket closing under us) costs itself, not the sweep.
        this.#hub.log('sweep_failed', { error: String(error) });
        session.terminate();
      }
    }
  };

  #sweepSession(session: Session, now: number, pingDue: boolean): void {
    const { idleTimeoutMs } = this.#hub.config;
    if (idleTimeoutMs > 0 && session.connection.welcomed && now - session.connection.lastActivity >= idleTimeoutMs) {
      session.connection.closeWith(CloseCode.idleTimeout);
      return;
    }
    if (!pingDue) return;
    // No pong since the last ping: the peer is dead; drop it without a closing handshake.
    if (!session.isAlive) {
      this.#hub.log('peer_dead', { codespace: session.connection.codespace, id: session.connection.id });
      session.terminate();
      return;
    }
    session.isAlive = false;
    session.ping();
  }

  /** After listen: accept failed (see ACCEPT_PAUSE_MS), or listening again after a pause did. */
  readonly #httpOnError = (error: NodeJS.ErrnoException): void => {
    this.#hub.log('accept_paused', { code: error.code, syscall: error.syscall, pauseMs: ACCEPT_PAUSE_MS, connections: this.#sessions.size });
    if (this.#http.listening) this.#http.close();
    if (this.#draining || this.#relistenTimer) return;
    this.#relistenTimer = setTimeout(this.#relistenOnTimer, ACCEPT_PAUSE_MS);
  };

  readonly #relistenOnTimer = (): void => {
    this.#relistenTimer = null;
    if (!this.#draining) this.#http.listen(this.#port, this.#hub.config.host);
  };

  /** Within FD_RESERVE of the descriptor limit: true, and the connection is to be refused. */
  #outOfDescriptors(): boolean {
    if (!this.#descriptors) return false;
    const wasRefusing = this.#descriptors.refusing;
    const refuse = this.#descriptors.arrived(Date.now());
    if (refuse !== wasRefusing) {
      const fields = { fds: this.#descriptors.lastCount, limit: this.#descriptors.limit, reserve: FD_RESERVE, connections: this.#sessions.size };
      this.#hub.log(refuse ? 'descriptors_low' : 'descriptors_recovered', fields);
    }
    return refuse;
  }

  readonly #httpOnRequest = (request: IncomingMessage, response: ServerResponse): void => {
    try {
      this.#route(request, response);
    } catch (error) {
      this.#hub.log('request_failed', { error: String(error) });
      if (!response.headersSent) response.writeHead(500, { 'content-type': 'text/plain' });
      response.end();
    }
  };

  #route(request: IncomingMessage, response: ServerResponse): void {
    if (routeHttp(this.#hub, request, response)) return;
    const path = pathOf(request.url);
    if (path === '/metrics') {
      this.#hub.renderMetrics().then(
        ({ contentType, body }) => response.writeHead(200, { 'content-type': contentType }).end(body),
        (error: unknown) => response.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics failed: ${String(error)}\n`),
      );
    } else if (path === '/healthz') {
      response.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    } else if (path === '/readyz') {
      const ready = this.#hub.ready && !this.#draining;
      const backplane = this.#hub.redisHealth ? `redis ${this.#hub.redisHealth.state}` : 'memory';
      response.writeHead(ready ? 200 : 503, { 'content-type': 'application/json' })
        .end(JSON.stringify({ ready, connections: this.#sessions.size, channels: this.#hub.supervisor.channelCount, backplane }) + '\n');
    } else if (isCodeRoute(path)) {
      void serveCode(this.#hub, path, request, response);
    } else {
      response.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    }
  }

  readonly #httpOnUpgrade = (request: IncomingMessage, socket: Duplex, head: Buffer): void => {
    socket.on('error', socketOnError);
    try {
      this.#upgrade(request, socket, head);
    } catch (error) {
      // Nothing a request holds may stop the process (PROTOCOL.md §1): whatever slipped past the
      // parsing costs this socket only.
      this.#hub.log('upgrade_failed', { error: String(error) });
      socket.destroy();
    }
  };

  #upgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    const target = parseUpgradeTarget(request.url);
    if (target.kind === 'bad_request' || target.kind === 'not_found') {
      const [status, text] = target.kind === 'bad_request' ? [400, 'Bad Request'] : [404, 'Not Found'];
      this.#hub.refusalLog('upgrade_refused', { status, why: target.kind });
      return refuseUpgrade(socket, status, text);
    }
    if (this.#draining) return refuseUpgrade(socket, 503, 'Service Unavailable');
    const { maxConnections } = this.#hub.config;
    if ((maxConnections > 0 && this.#sessions.size >= maxConnections) || this.#outOfDescriptors()) {
      return refuseUpgrade(socket, 503, 'Service Unavailable');
    }
    // Without verifyClient, ws completes the handshake synchronously, so the count above holds.
    this.#wss.handleUpgrade(request, socket, head, (ws: WebSocket) => {
      const session = this.#accept(ws);
      if (target.kind === 'bad_params') {
        this.#hub.refusalLog('join_refused', { code: CloseCode.badMessage.code, why: target.why });
        return session.connection.closeWith(CloseCode.badMessage);
      }
      void this.#hub.open(session.connection, target.token, target.params);
    });
  }

  #accept(ws: WebSocket): Session {
    const codec: Codec = ws.protocol === SUBPROTOCOL_MSGPACK ? 'msgpack' : 'json';
    return new Session(ws, codec, this.#hub, this.#sessions);
  }
}

function socketOnError(this: Duplex): void {
  this.destroy();
}
