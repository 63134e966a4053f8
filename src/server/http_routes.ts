/**
 * The public pages over HTTP: the demo editor at `/`, its assets, and the live status page
 * (`/status`, its event stream `/status/events`, and with FAULT_INJECTION its fault buttons'
 * `POST /status/fault`). The acceptor asks `routeHttp` first and serves its own routes
 * (`/metrics`, `/healthz`, `/readyz`) when this answers false.
 *
 * The request line, query, cookies and headers are parsed here into typed values; whatever they
 * hold, a request gets an answer and nothing throws out of this module.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Hub } from './hub.ts';
import { findPagesDir, loadPages, type PageFile } from './static_pages.ts';
import { isLoopbackHost, mayReadStatus, statusAccessFor, statusCookieFor, tokenMatches, type StatusAccess } from './status_access.ts';
import { StatusFeed } from './status_feed.ts';
import type { FaultButtonKind } from './status_types.ts';

/**
 * Scripts and styles from this origin only (built ahead of time, no CDN); sockets and events to
 * it. `nonce`: the one <style> element a page may create itself (CodeMirror's, EditorView.cspNonce).
 */
export function contentSecurityPolicy(nonce: string | null): string {
  return [
    "default-src 'none'",
    "script-src 'self'",
    nonce ? `style-src 'self' 'nonce-${nonce}'` : "style-src 'self'",
    "img-src 'self' data:",
    "font-src 'self'",
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

/** Where an HTML page wants its response's style nonce. */
const NONCE_SLOT = '%csp-nonce%';

const MAX_FAULT_BODY_BYTES = 1024;
const STATUS_ID = /^[0-9a-f]{8}$/;

interface RequestTarget {
  method: string;
  path: string;
  query: URLSearchParams;
}

/** Never throws: a target that is not a path (`*`, `http://…`, junk) becomes one that matches no route. */
export function parseRequestTarget(method: string | undefined, url: string | undefined): RequestTarget {
  const raw = typeof url === 'string' && url.startsWith('/') && url.length <= 8192 ? url : '/\0';
  const at = raw.indexOf('?');
  return { method: method ?? 'GET', path: at < 0 ? raw : raw.slice(0, at), query: new URLSearchParams(at < 0 ? '' : raw.slice(at + 1)) };
}

/** What the server keeps per hub for its pages: the status feed, and the files once read. */
interface PagesState {
  feed: StatusFeed;
  access: StatusAccess;
  files: Map<string, PageFile> | null;
}

const states = new WeakMap<Hub, PagesState>();

function stateOf(hub: Hub): PagesState {
  let state = states.get(hub);
  if (!state) {
    state = { feed: new StatusFeed(hub), access: statusAccessFor(hub.config.host, hub.config.statusToken), files: null };
    states.set(hub, state);
  }
  return state;
}

/** The live status feed of `hub` (tests and embedding). */
export function statusFeedOf(hub: Hub): StatusFeed {
  return stateOf(hub).feed;
}

/** Handles the request when it is one of the pages' routes; false leaves it to the caller. */
export function routeHttp(hub: Hub, request: IncomingMessage, response: ServerResponse): boolean {
  const target = parseRequestTarget(request.method, request.url);
  const path = target.path;
  if (path !== '/' && path !== '/status' && !path.startsWith('/status/') && !path.startsWith('/assets/')) return false;
  try {
    serve(hub, stateOf(hub), target, request, response);
  } catch (error) {
    hub.log('http_route_failed', { path: path.slice(0, 64), error: String(error) });
    if (!response.headersSent) plain(response, 500, 'internal error');
    else response.destroy();
  }
  return true;
}

function serve(hub: Hub, state: PagesState, target: RequestTarget, request: IncomingMessage, response: ServerResponse): void {
  const { path } = target;
  if (path === '/') return sendFile(state, '/index.html', target, request, response);
  if (path.startsWith('/assets/')) return sendFile(state, path, target, request, response);
  // Everything under /status: off (404) on a non-loopback HOST without STATUS_TOKEN.
  if (state.access.kind === 'off') return plain(response, 404, 'not found');
  if (state.access.kind === 'open' && !isLoopbackHost(hostnameOf(request.headers.host))) {
    // On a loopback HOST, a Host header that is not loopback is a page of another site that
    // renamed itself to 127.0.0.1 (DNS rebinding): it must not read what the server does.
    return plain(response, 403, 'status page: use a loopback address');
  }
  if (path === '/status') return statusPage(state, target, request, response);
  if (path === '/status/events') {
    if (target.method !== 'GET') return methodNotAllowed(response, 'GET');
    if (!mayReadStatus(state.access, request.headers.cookie)) return plain(response, 403, 'status page: present the token first (/status?token=...)');
    return state.feed.subscribe(response);
  }
  if (path === '/status/fault') return faultRoute(hub, state, target, request, response);
  return plain(response, 404, 'not found');
}

function statusPage(state: PagesState, target: RequestTarget, request: IncomingMessage, response: ServerResponse): void {
  const presented = target.query.get('token');
  if (presented === null || state.access.kind !== 'token') return sendFile(state, '/status.html', target, request, response);
  if (!tokenMatches(state.access, presented)) return plain(response, 403, 'status page: wrong token');
  // The token leaves the address bar (and the history) at once; the cookie carries it from here.
  response.writeHead(303, { location: '/status', 'set-cookie': statusCookieFor(state.access), 'cache-control': 'no-store', 'referrer-policy': 'no-referrer' }).end();
}

function faultRoute(hub: Hub, state: PagesState, target: RequestTarget, request: IncomingMessage, response: ServerResponse): void {
  if (!hub.config.faultInjection) return plain(response, 404, 'not found: fault injection is off (FAULT_INJECTION=1)');
  if (target.method !== 'POST') return methodNotAllowed(response, 'POST');
  if (!mayReadStatus(state.access, request.headers.cookie)) return plain(response, 403, 'status page: present the token first');
  if (!sameOrigin(request)) return plain(response, 403, 'cross-origin request refused');
  // A JSON body cannot be sent cross-origin without a preflight, which this server never grants.
  if (!String(request.headers['content-type'] ?? '').toLowerCase().startsWith('application/json')) return plain(response, 415, 'send application/json');
  readSmallBody(request, MAX_FAULT_BODY_BYTES, (body) => {
    if (body === null) return plain(response, 413, 'body too large');
    const fault = parseFaultBody(body);
    if (!fault) return plain(response, 400, 'expected {"channel":"<8 hex digits>","kind":"throw"|"hang"}');
    if (!state.feed.injectFault(fault.channel, fault.kind)) return plain(response, 404, 'no such channel');
    response.writeHead(202, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify({ ok: true }) + '\n');
  });
}

export function parseFaultBody(body: string): { channel: string; kind: FaultButtonKind } | null {
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null) return null;
  const { channel, kind } = value as { channel?: unknown; kind?: unknown };
  if (typeof channel !== 'string' || !STATUS_ID.test(channel)) return null;
  if (kind !== 'throw' && kind !== 'hang') return null;
  return { channel, kind };
}

function readSmallBody(request: IncomingMessage, maxBytes: number, done: (body: string | null) => void): void {
  const chunks: Buffer[] = [];
  let size = 0;
  let finished = false;
  request.on('data', (chunk: Buffer) => {
    if (finished) return;
    size += chunk.length;
    if (size > maxBytes) {
      finished = true;
      done(null);
      request.resume();
      return;
    }
    chunks.push(chunk);
  });
  request.on('end', () => {
    if (finished) return;
    finished = true;
    done(Buffer.concat(chunks).toString('utf8'));
  });
  request.on('error', () => {
    finished = true;
  });
}

function hostnameOf(host: string | undefined): string {
  if (typeof host !== 'string') return '';
  if (host.startsWith('[')) return host.slice(0, host.indexOf(']') + 1);
  const colon = host.lastIndexOf(':');
  return colon < 0 ? host : host.slice(0, colon);
}

/** Browsers send Origin (and Sec-Fetch-Site) with a POST: both must say this very origin. */
function sameOrigin(request: IncomingMessage): boolean {
  const site = request.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin') return false;
  const origin = request.headers.origin;
  if (origin === undefined) return true;
  const host = request.headers.host ?? '';
  return origin === `http://${host}` || origin === `https://${host}`;
}

function sendFile(state: PagesState, name: string, target: RequestTarget, request: IncomingMessage, response: ServerResponse): void {
  if (target.method !== 'GET' && target.method !== 'HEAD') return methodNotAllowed(response, 'GET, HEAD');
  if (!state.files) {
    const dir = findPagesDir();
    if (!dir) return plain(response, 503, 'pages not built: run `make pages` (node scripts/build_pages.mjs)');
    state.files = loadPages(dir);
  }
  const file = state.files.get(name);
  if (!file) return plain(response, 404, 'not found');
  const headers: Record<string, string> = {
    'content-type': file.contentType,
    etag: file.etag,
    'cache-control': file.immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
    'x-content-type-options': 'nosniff',
  };
  let body = file.body;
  if (file.contentType.startsWith('text/html')) {
    headers['referrer-policy'] = 'no-referrer';
    headers['x-frame-options'] = 'DENY';
    if (file.body.includes(NONCE_SLOT)) {
      // A fresh nonce per response: this page is never the same twice, so it is not cached.
      const nonce = randomBytes(18).toString('base64');
      headers['content-security-policy'] = contentSecurityPolicy(nonce);
      headers['cache-control'] = 'no-store';
      delete headers.etag;
      body = Buffer.from(file.body.toString('utf8').replaceAll(NONCE_SLOT, nonce));
      return sendBody(response, target, headers, body);
    }
    headers['content-security-policy'] = contentSecurityPolicy(null);
  }
  if (request.headers['if-none-match'] === file.etag) {
    response.writeHead(304, headers).end();
    return;
  }
  if (file.gzipped) {
    headers.vary = 'accept-encoding';
    if (acceptsGzip(request.headers['accept-encoding'])) {
      body = file.gzipped;
      headers['content-encoding'] = 'gzip';
    }
  }
  sendBody(response, target, headers, body);
}

function sendBody(response: ServerResponse, target: RequestTarget, headers: Record<string, string>, body: Buffer): void {
  headers['content-length'] = String(body.length);
  response.writeHead(200, headers);
  response.end(target.method === 'HEAD' ? undefined : body);
}

/** Whether an Accept-Encoding header takes gzip (`gzip`, or `*`, without `q=0`). */
export function acceptsGzip(header: string | undefined): boolean {
  if (typeof header !== 'string' || header.length > 1024) return false;
  return header.split(',').some((part) => {
    const [name, ...params] = part.split(';').map((piece) => piece.trim().toLowerCase());
    if (name !== 'gzip' && name !== '*') return false;
    const quality = params.find((param) => param.startsWith('q='));
    return quality === undefined || Number(quality.slice(2)) > 0;
  });
}

function methodNotAllowed(response: ServerResponse, allow: string): void {
  response.writeHead(405, { 'content-type': 'text/plain; charset=utf-8', allow }).end('method not allowed\n');
}

function plain(response: ServerResponse, status: number, text: string): void {
  response.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' }).end(text + '\n');
}
