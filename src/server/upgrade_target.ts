/**
 * The upgrade request line, parsed at the boundary (PROTOCOL.md §1): whatever a client puts in
 * it, the answer is a typed value, never a throw. `new URL()` threw on `GET //[ HTTP/1.1` out of
 * the upgrade handler and took the process down (issue 11), so the path and query are read here
 * by hand, with nothing but string operations that cannot fail.
 */

/** What the query of a join may carry; each is checked, a malformed one refuses the join (4400). */
export interface JoinParams {
  /** `?version=N`: resume after version N. */
  resume?: number;
  /** `?epoch=E`: the history `resume` belongs to. */
  epoch?: string;
  /** `?client=K`: the client key, a secret; hashed before it goes anywhere (connection.ts). */
  clientKey?: string;
}

export type UpgradeTarget =
  /** A join: `token` is decoded but not yet checked (auth does that, with 4401). */
  | { kind: 'join'; token: string; params: JoinParams }
  /** A join whose query is malformed: the upgrade completes and closes with 4400 (PROTOCOL.md §1). */
  | { kind: 'bad_params'; why: string }
  /** Any other path: HTTP 404. */
  | { kind: 'not_found' }
  /** Not a request target at all (no leading `/`, control characters): HTTP 400. */
  | { kind: 'bad_request' };

const CODESPACE_PATH = /^\/codespace\/([^/]+)\/?$/;
const VERSION_PATTERN = /^\d{1,15}$/;
const EPOCH_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
const CLIENT_KEY_PATTERN = /^[A-Za-z0-9_-]{16,64}$/;
/** Longest request target considered; Node's own header limit (16 KiB) is the outer bound. */
const MAX_TARGET_LENGTH = 4096;

/** `form`: a query part, where `+` stands for a space. */
function decodeComponent(value: string, form: boolean): string | null {
  try {
    return decodeURIComponent(form ? value.replace(/\+/g, ' ') : value);
  } catch {
    return null;
  }
}

/** The query as name → value; null when a name repeats or a part cannot be decoded. */
function parseQuery(query: string): Map<string, string> | null {
  const params = new Map<string, string>();
  if (query === '') return params;
  for (const part of query.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const name = decodeComponent(eq < 0 ? part : part.slice(0, eq), true);
    const value = decodeComponent(eq < 0 ? '' : part.slice(eq + 1), true);
    if (name === null || value === null || params.has(name)) return null;
    params.set(name, value);
  }
  return params;
}

function joinParamsOf(query: Map<string, string>): JoinParams | string {
  const params: JoinParams = {};
  const version = query.get('version');
  if (version !== undefined) {
    if (!VERSION_PATTERN.test(version)) return '`version` must be a non-negative integer';
    params.resume = Number(version);
  }
  const epoch = query.get('epoch');
  if (epoch !== undefined) {
    if (!EPOCH_PATTERN.test(epoch)) return '`epoch` must be 1 to 64 of [A-Za-z0-9_-]';
    params.epoch = epoch;
  }
  const clientKey = query.get('client');
  if (clientKey !== undefined) {
    if (!CLIENT_KEY_PATTERN.test(clientKey)) return '`client` must be 16 to 64 of [A-Za-z0-9_-]';
    params.clientKey = clientKey;
  }
  return params;
}

/** `/codespace/<token>/?version=N&epoch=E&client=K`, or what to answer instead. */
export function parseUpgradeTarget(target: string | undefined): UpgradeTarget {
  if (typeof target !== 'string' || target.length === 0 || target.length > MAX_TARGET_LENGTH) return { kind: 'bad_request' };
  // Absolute form (`GET http://host/path`) is allowed by HTTP/1.1; only its path matters here.
  let rest = target;
  const scheme = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*/.exec(rest);
  if (scheme) rest = rest.slice(scheme[0].length) || '/';
  if (rest[0] !== '/' || /[\u0000-\u0020\u007f]/.test(rest)) return { kind: 'bad_request' };
  const hash = rest.indexOf('#');
  if (hash >= 0) rest = rest.slice(0, hash);
  const question = rest.indexOf('?');
  const path = question < 0 ? rest : rest.slice(0, question);
  const match = CODESPACE_PATH.exec(path);
  if (!match) return { kind: 'not_found' };
  // An undecodable token is refused by auth (4401) like any other bad token.
  const token = decodeComponent(match[1], false) ?? '';
  const query = parseQuery(question < 0 ? '' : rest.slice(question + 1));
  if (query === null) return { kind: 'bad_params', why: 'unreadable query' };
  const params = joinParamsOf(query);
  if (typeof params === 'string') return { kind: 'bad_params', why: params };
  return { kind: 'join', token, params };
}

/** The path of an HTTP request target, for the plain routes; '' when it has none. */
export function pathOf(target: string | undefined): string {
  if (typeof target !== 'string' || target[0] !== '/') return '';
  const end = target.search(/[?#]/);
  return end < 0 ? target : target.slice(0, end);
}
