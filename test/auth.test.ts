/** Token resolution against a real local HTTP server standing in for the SharePython API. */
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { TokenResolver, type AuthOptions } from '../src/server/auth.ts';
import { ProtocolError } from '../src/protocol/close_codes.ts';

const SECRET = 'test-secret-of-some-length';
let api: Server;
let apiBase: string;
let requests: string[] = [];
const hanging: ServerResponse[] = [];

const ANSWERS: Record<string, [number, string]> = {
  editor: [200, JSON.stringify({ uuid: 'cs-1', mode: 'edit' })],
  viewer: [200, JSON.stringify({ uuid: 'cs-1', mode: 'view_only' })],
  missing: [404, '{"detail":"Not found."}'],
  forbidden: [403, '{"detail":"no"}'],
  broken: [500, 'oops'],
  garbled: [200, '{not json'],
  badid: [200, JSON.stringify({ uuid: 'no spaces allowed', mode: 'edit' })],
};

beforeAll(async () => {
  api = createServer((request, response) => {
    requests.push(request.url!);
    const token = decodeURIComponent(/^\/codespace\/([^/]+)\/\?fields=uuid,mode$/.exec(request.url!)?.[1] ?? '');
    if (token === 'hang') return void hanging.push(response);
    const [status, body] = ANSWERS[token] ?? [404, '{}'];
    // Answer a little later so simultaneous lookups really overlap.
    setTimeout(() => response.writeHead(status, { 'content-type': 'application/json' }).end(body), 20);
  });
  await new Promise<void>((resolve) => api.listen(0, '127.0.0.1', resolve));
  apiBase = `http://127.0.0.1:${(api.address() as AddressInfo).port}/`;
});

afterAll(async () => {
  for (const response of hanging) response.destroy();
  api.closeAllConnections();
  await new Promise((resolve) => api.close(resolve));
});

beforeEach(() => {
  requests = [];
});

function resolver(overrides: Partial<AuthOptions> = {}): TokenResolver {
  return new TokenResolver({ allowTmp: true, apiBaseUrl: apiBase, jwtSecret: SECRET, authTimeoutMs: 300, authCacheMs: 1000, ...overrides });
}

async function closeCodeOf(promise: Promise<unknown>): Promise<number> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(ProtocolError);
    return (error as ProtocolError).close.code;
  }
  throw new Error('resolved, expected a refusal');
}

async function waitUntil(condition: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** As SharePython makes them: Python's urlsafe_b64encode of random bytes, padding kept. */
function sharePythonToken(bytes: number, seed: number): string {
  const raw = Buffer.from(Array.from({ length: bytes }, (_, i) => (seed * (i + 7) + i * i) & 0xff));
  return raw.toString('base64').replaceAll('+', '-').replaceAll('/', '_');
}

function jwt(claims: Record<string, unknown>, secret = SECRET, expiresIn: string | number = '1h'): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setExpirationTime(expiresIn).sign(new TextEncoder().encode(secret));
}

describe('TokenResolver', () => {
  describe('tmp- tokens', () => {
    it('grants edit on the token itself, with no lookup', async () => {
      expect(await resolver().resolve('tmp-demo')).toEqual({ codespace: 'tmp-demo', mode: 'edit' });
      expect(requests).toEqual([]);
    });

    it('refuses them when switched off, and refuses bad characters', async () => {
      expect(await closeCodeOf(resolver({ allowTmp: false }).resolve('tmp-demo'))).toBe(4401);
      expect(await closeCodeOf(resolver().resolve('tmp-a b'))).toBe(4401);
      expect(await closeCodeOf(resolver().resolve(''))).toBe(4401);
      expect(await closeCodeOf(resolver().resolve('x'.repeat(600)))).toBe(4401);
      // Its Redis hash would be the log stream of codespace tmp-x (PROTOCOL.md §7).
      expect(await closeCodeOf(resolver().resolve('tmp-x:log'))).toBe(4401);
      expect(requests).toEqual([]);
    });
  });

  describe('HTTP lookup', () => {
    it('grants the uuid and mode the API answers', async () => {
      const auth = resolver();
      expect(await auth.resolve('viewer')).toEqual({ codespace: 'cs-1', mode: 'view_only' });
      expect(await auth.resolve('editor')).toEqual({ codespace: 'cs-1', mode: 'edit' });
      expect(requests).toEqual(['/codespace/viewer/?fields=uuid,mode', '/codespace/editor/?fields=uuid,mode']);
    });

    it('looks SharePython share and owner tokens (padded URL-safe base64) up as they are', async () => {
      const owner = sharePythonToken(80, 0x5a);
      const viewer = sharePythonToken(85, 0xc3);
      expect(owner).toMatch(/[^=]=$/);
      expect(viewer).toMatch(/==$/);
      ANSWERS[owner] = [200, JSON.stringify({ uuid: 'cs-sp', mode: 'edit' })];
      ANSWERS[viewer] = [200, JSON.stringify({ uuid: 'cs-sp', mode: 'view_only' })];
      const auth = resolver();
      expect(await auth.resolve(owner)).toEqual({ codespace: 'cs-sp', mode: 'edit' });
      expect(await auth.resolve(viewer)).toEqual({ codespace: 'cs-sp', mode: 'view_only' });
      expect(requests).toEqual([`/codespace/${owner}/?fields=uuid,mode`, `/codespace/${viewer}/?fields=uuid,mode`]);
    });

    it('refuses, with no lookup, tokens longer than 256 or with characters outside the pattern', async () => {
      const auth = resolver();
      expect(await closeCodeOf(auth.resolve('a'.repeat(257)))).toBe(4401);
      for (const token of ['a/b', 'a b', 'a%3D', 'a+b', 'a?b', 'a#b']) expect(await closeCodeOf(auth.resolve(token))).toBe(4401);
      expect(await closeCodeOf(auth.resolve('a'.repeat(256)))).toBe(4404);
      expect(requests).toEqual([`/codespace/${'a'.repeat(256)}/?fields=uuid,mode`]);
    });

    it('maps answers to close codes: 404 → 4404, 403 → 4401, 500 → 1013, bad body → 4401', async () => {
      const auth = resolver();
      expect(await closeCodeOf(auth.resolve('missing'))).toBe(4404);
      expect(await closeCodeOf(auth.resolve('forbidden'))).toBe(4401);
      expect(await closeCodeOf(auth.resolve('broken'))).toBe(1013);
      expect(await closeCodeOf(auth.resolve('garbled'))).toBe(4401);
      expect(await closeCodeOf(auth.resolve('badid'))).toBe(4401);
    });

    it('gives up on an API that hangs with 1013 after the timeout', async () => {
      const started = Date.now();
      expect(await closeCodeOf(resolver({ authTimeoutMs: 150 }).resolve('hang'))).toBe(1013);
      expect(Date.now() - started).toBeLessThan(2000);
    });

    it('gives 1013 when nothing listens', async () => {
      expect(await closeCodeOf(resolver({ apiBaseUrl: 'http://127.0.0.1:1/' }).resolve('editor'))).toBe(1013);
    });

    it('reuses an answer for authCacheMs, then asks again', async () => {
      let now = 1_000;
      const auth = resolver({ now: () => now });
      await auth.resolve('editor');
      await closeCodeOf(auth.resolve('missing'));
      await auth.resolve('editor');
      await closeCodeOf(auth.resolve('missing'));
      expect(requests).toHaveLength(2);
      now += 1001;
      await auth.resolve('editor');
      expect(requests).toHaveLength(3);
      expect(auth.lookupsSent).toBe(3);
    });

    it('does not cache an unavailable service', async () => {
      const auth = resolver();
      await closeCodeOf(auth.resolve('broken'));
      await closeCodeOf(auth.resolve('broken'));
      expect(requests).toHaveLength(2);
    });

    it('sends one request for many simultaneous joins with the same token', async () => {
      const auth = resolver();
      const grants = await Promise.all(Array.from({ length: 20 }, () => auth.resolve('viewer')));
      expect(new Set(grants.map((g) => g.mode))).toEqual(new Set(['view_only']));
      expect(requests).toHaveLength(1);
    });

    it('abandons a lookup once every join waiting for it has gone, and not before', async () => {
      const auth = resolver({ authTimeoutMs: 10_000 });
      const closedRequests = (): number => hanging.filter((response) => response.req.destroyed || response.req.socket.destroyed).length;
      const before = hanging.length;
      const first = new AbortController();
      const second = new AbortController();
      const codes = [auth.resolve('hang', { leftSignal: first.signal }), auth.resolve('hang', { leftSignal: second.signal })].map(closeCodeOf);
      await waitUntil(() => hanging.length === before + 1);
      const alreadyClosed = closedRequests();
      first.abort();
      await new Promise((resolve) => setTimeout(resolve, 100));
      // One join still waits: the request goes on.
      expect(closedRequests()).toBe(alreadyClosed);
      second.abort();
      await waitUntil(() => closedRequests() === alreadyClosed + 1);
      expect(await Promise.all(codes)).toEqual([1013, 1013]);
      // A join that comes after the abandonment gets a lookup of its own.
      const later = auth.resolve('editor', { leftSignal: new AbortController().signal });
      expect(await later).toEqual({ codespace: 'cs-1', mode: 'edit' });
    });

    it('refuses a token no method can resolve', async () => {
      expect(await closeCodeOf(resolver({ apiBaseUrl: '', jwtSecret: '' }).resolve('editor'))).toBe(4401);
    });
  });

  describe('JWT', () => {
    it('grants the codespace and mode of a valid HS256 token, with no lookup', async () => {
      const token = await jwt({ codespace: 'cs-jwt', mode: 'view_only' });
      expect(await resolver().resolve(token)).toEqual({ codespace: 'cs-jwt', mode: 'view_only' });
      expect(requests).toEqual([]);
    });

    it('refuses expired, wrongly signed, exp-less and badly claimed tokens', async () => {
      const auth = resolver();
      const bad = [
        await jwt({ codespace: 'cs', mode: 'edit' }, SECRET, Math.floor(Date.now() / 1000) - 10),
        await jwt({ codespace: 'cs', mode: 'edit' }, 'another-secret-entirely'),
        await new SignJWT({ codespace: 'cs', mode: 'edit' }).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(SECRET)),
        await jwt({ codespace: 'bad id!', mode: 'edit' }),
        await jwt({ codespace: 'cs', mode: 'admin' }),
        await new SignJWT({ codespace: 'cs', mode: 'edit' }).setProtectedHeader({ alg: 'HS512' }).setExpirationTime('1h').sign(new TextEncoder().encode(SECRET)),
      ];
      for (const token of bad) expect(await closeCodeOf(auth.resolve(token))).toBe(4401);
    });
  });
});
