/** Server URLs taken apart, the query of PROTOCOL.md §1, client keys, and the final close codes. */
import { describe, expect, it } from 'vitest';
import { CLIENT_KEY_PATTERN, FINAL_CLOSE_CODES, codespaceUrl, parseServerUrl, randomClientKey, type ServerUrl } from '../src/client/transport.ts';
import { CloseCode } from '../src/protocol/close_codes.ts';

describe('parseServerUrl', () => {
  it('takes a base URL, with or without a path prefix', () => {
    expect(parseServerUrl('ws://127.0.0.1:8080')).toEqual({ base: 'ws://127.0.0.1:8080', token: null, params: [] });
    expect(parseServerUrl('wss://example.com/collab/')).toEqual({ base: 'wss://example.com/collab', token: null, params: [] });
    expect(parseServerUrl('https://example.com')).toMatchObject({ base: 'wss://example.com' });
  });

  it('takes the full URL the server prints, token and all, and keeps query parameters that are not its own', () => {
    expect(parseServerUrl('ws://127.0.0.1:8080/codespace/tmp-demo/')).toEqual({ base: 'ws://127.0.0.1:8080', token: 'tmp-demo', params: [] });
    expect(parseServerUrl('ws://h/p/codespace/a%3Db?version=3&client=x&route=eu')).toEqual({ base: 'ws://h/p', token: 'a=b', params: [['route', 'eu']] });
  });

  it('says what is wrong with a URL that cannot work', () => {
    expect(parseServerUrl('127.0.0.1:8080')).toMatch(/not a URL/);
    expect(parseServerUrl('localhost:8080')).toMatch(/ws:\/\/ or wss:\/\/, not localhost:/);
    expect(parseServerUrl('nonsense')).toMatch(/not a URL/);
    expect(parseServerUrl('ftp://h')).toMatch(/not ftp/);
    expect(parseServerUrl('ws://user:secret@h')).toMatch(/no user name/);
    expect(parseServerUrl('ws://h/codespace/%E0%A4%A/')).toMatch(/percent-encoding/);
  });
});

describe('codespaceUrl', () => {
  const server = parseServerUrl('ws://h:1/codespace/t/?route=eu') as ServerUrl;

  it('always names the client key; the version and epoch only on a resume', () => {
    expect(codespaceUrl(server, 'tmp-a b', { client: 'k'.repeat(16) })).toBe(`ws://h:1/codespace/tmp-a%20b/?route=eu&client=${'k'.repeat(16)}`);
    expect(codespaceUrl(server, 't', { client: 'k'.repeat(16), version: 7, epoch: 'e1' })).toBe(`ws://h:1/codespace/t/?route=eu&version=7&epoch=e1&client=${'k'.repeat(16)}`);
  });
});

describe('randomClientKey', () => {
  it('makes keys of PROTOCOL.md §1, a new one each time', () => {
    const keys = new Set(Array.from({ length: 200 }, randomClientKey));
    expect(keys.size).toBe(200);
    for (const key of keys) expect(key).toMatch(CLIENT_KEY_PATTERN);
  });
});

describe('FINAL_CLOSE_CODES', () => {
  it('are the codes the table marks reconnect: false, and each code has one answer', () => {
    expect([...FINAL_CLOSE_CODES].sort()).toEqual([1003, 1007, 1009, 4400, 4401, 4404]);
    const answers = new Map<number, Set<boolean>>();
    for (const entry of Object.values(CloseCode)) answers.set(entry.code, (answers.get(entry.code) ?? new Set()).add(entry.reconnect));
    for (const [code, seen] of answers) expect([code, seen.size]).toEqual([code, 1]);
    for (const code of [1001, 1011, 1013, 4408, 4429, 4500]) expect(FINAL_CLOSE_CODES.has(code)).toBe(false);
  });
});
