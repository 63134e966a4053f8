/**
 * Who may see `/status`. On a loopback HOST anyone who can reach the port already sits on the
 * machine; elsewhere the page is off unless STATUS_TOKEN is set. A browser presents the token
 * once (`/status?token=…`) and gets an HttpOnly, SameSite=Strict cookie, which the page's
 * live updates then carry (EventSource cannot send an Authorization header).
 *
 * Everything here takes raw header and query values and never throws.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';

export type StatusAccess = { kind: 'open' } | { kind: 'token'; token: string } | { kind: 'off' };

export const STATUS_COOKIE = 'codespace_status';
/** A day: long enough for a working session, short enough that a forgotten browser loses it. */
const COOKIE_MAX_AGE_S = 86_400;
/** Longer presented tokens are refused without comparing. */
const MAX_TOKEN_LENGTH = 256;

export function isLoopbackHost(host: string): boolean {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  if (bare === 'localhost') return true;
  if (isIP(bare) === 4) return bare.startsWith('127.');
  if (isIP(bare) === 6) return bare === '::1' || /^::ffff:127\./i.test(bare);
  return false;
}

/** A STATUS_TOKEN, when set, is required on every HOST; without one only a loopback HOST is open. */
export function statusAccessFor(host: string, statusToken: string): StatusAccess {
  if (statusToken !== '') return { kind: 'token', token: statusToken };
  return isLoopbackHost(host) ? { kind: 'open' } : { kind: 'off' };
}

/** The cookie's value: derived from the token, so that the token itself is not stored in the browser. */
function cookieValueOf(token: string): string {
  return createHmac('sha256', token).update('codespace status cookie v1').digest('base64url');
}

function sameSecret(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

export function tokenMatches(access: StatusAccess, presented: string | null): boolean {
  if (access.kind !== 'token' || presented === null || presented.length > MAX_TOKEN_LENGTH) return false;
  return sameSecret(presented, access.token);
}

/** The value of cookie `name` in a Cookie header, or null; malformed pairs are skipped. */
export function readCookie(header: string | string[] | undefined, name: string): string | null {
  const text = Array.isArray(header) ? header.join('; ') : header ?? '';
  if (text.length > 8192) return null;
  for (const pair of text.split(';')) {
    const at = pair.indexOf('=');
    if (at < 0) continue;
    if (pair.slice(0, at).trim() === name) return pair.slice(at + 1).trim();
  }
  return null;
}

/** Whether a request may read the status data: open, or carrying the token's cookie. */
export function mayReadStatus(access: StatusAccess, cookieHeader: string | string[] | undefined): boolean {
  if (access.kind === 'open') return true;
  if (access.kind === 'off') return false;
  const cookie = readCookie(cookieHeader, STATUS_COOKIE);
  return cookie !== null && sameSecret(cookie, cookieValueOf(access.token));
}

/** The Set-Cookie header for a browser that presented the right token. */
export function statusCookieFor(access: { kind: 'token'; token: string }): string {
  return `${STATUS_COOKIE}=${cookieValueOf(access.token)}; Path=/status; HttpOnly; SameSite=Strict; Max-Age=${COOKIE_MAX_AGE_S}`;
}
