import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.ts';
import { isLoopbackHost, mayReadStatus, readCookie, statusAccessFor, statusCookieFor, tokenMatches, STATUS_COOKIE } from '../src/server/status_access.ts';

const TOKEN = 'a-status-token-of-32-characters!';

describe('statusAccessFor', () => {
  it('is open on a loopback HOST, off elsewhere, and needs the token wherever STATUS_TOKEN is set', () => {
    for (const host of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', 'localhost', '::ffff:127.0.0.1']) expect(statusAccessFor(host, '')).toEqual({ kind: 'open' });
    for (const host of ['0.0.0.0', '::', '10.0.0.5', 'example.com', '128.0.0.1', '']) expect(statusAccessFor(host, '')).toEqual({ kind: 'off' });
    expect(statusAccessFor('0.0.0.0', TOKEN)).toEqual({ kind: 'token', token: TOKEN });
    expect(statusAccessFor('127.0.0.1', TOKEN)).toEqual({ kind: 'token', token: TOKEN });
  });

  it('tells loopback names and addresses from others', () => {
    expect(isLoopbackHost('127.0.0.1')).toBe(true);
    expect(isLoopbackHost('127.0.0.1.evil.example')).toBe(false);
    expect(isLoopbackHost('localhost.evil.example')).toBe(false);
    expect(isLoopbackHost('[::2]')).toBe(false);
  });
});

describe('the status cookie', () => {
  const access = statusAccessFor('0.0.0.0', TOKEN) as { kind: 'token'; token: string };

  it('is HttpOnly, SameSite=Strict, scoped to /status, and does not hold the token itself', () => {
    const cookie = statusCookieFor(access);
    expect(cookie).toMatch(new RegExp(`^${STATUS_COOKIE}=[A-Za-z0-9_-]{43}; `));
    expect(cookie).toContain('; HttpOnly');
    expect(cookie).toContain('; SameSite=Strict');
    expect(cookie).toContain('; Path=/status');
    expect(cookie).not.toContain(TOKEN);
  });

  it('opens the status data only with the right value', () => {
    const value = statusCookieFor(access).split(';')[0];
    expect(mayReadStatus(access, `other=1; ${value}`)).toBe(true);
    expect(mayReadStatus(access, undefined)).toBe(false);
    expect(mayReadStatus(access, `${STATUS_COOKIE}=${TOKEN}`)).toBe(false);
    expect(mayReadStatus(access, `${value}x`)).toBe(false);
    expect(mayReadStatus({ kind: 'off' }, value)).toBe(false);
    expect(mayReadStatus({ kind: 'open' }, undefined)).toBe(true);
  });

  it('reads cookies from any header without throwing', () => {
    expect(readCookie('a=1; b = 2 ;c', 'b')).toBe('2');
    expect(readCookie(['a=1', 'b=%E0%A4%A'], 'b')).toBe('%E0%A4%A');
    expect(readCookie('==;;;=', 'a')).toBeNull();
    expect(readCookie('a='.repeat(5000), 'a')).toBeNull();
    expect(readCookie(undefined, 'a')).toBeNull();
  });

  it('compares a presented token in full', () => {
    expect(tokenMatches(access, TOKEN)).toBe(true);
    expect(tokenMatches(access, TOKEN.slice(0, -1))).toBe(false);
    expect(tokenMatches(access, null)).toBe(false);
    expect(tokenMatches(access, TOKEN + 'x'.repeat(500))).toBe(false);
    expect(tokenMatches({ kind: 'open' }, TOKEN)).toBe(false);
  });
});

describe('STATUS_TOKEN', () => {
  it('defaults to empty and refuses a short secret', () => {
    expect(loadConfig({}).statusToken).toBe('');
    expect(loadConfig({ STATUS_TOKEN: TOKEN }).statusToken).toBe(TOKEN);
    expect(() => loadConfig({ STATUS_TOKEN: 'short' })).toThrow(/STATUS_TOKEN.*at least 16/);
  });
});
