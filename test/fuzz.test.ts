/**
 * The fuzz suite of issue 11 (fast-check, seeded, bounded by a number of cases): arbitrary
 * request lines, paths, queries and headers at the upgrade and the HTTP routes; arbitrary JSON
 * and msgpack values (deep nesting, BigInt, huge arrays, wrong types, mutated messages) from an
 * edit client and a view_only one. After each run the server answers, a bystander codespace saw
 * no error, no resync and every one of its versions, and its document is intact.
 */
import { connect as connectTcp } from 'node:net';
import fc from 'fast-check';
import { SignJWT } from 'jose';
import { Packr } from 'msgpackr';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { linkFaults } from '../src/actors/port_link.ts';
import { TestClient, type Message } from './support/ws_client.ts';
import { startTestServer, type TestServer } from './support/server.ts';

const SECRET = 'fuzz-secret-fuzz-secret-fuzz-secret';
let server: TestServer;
let bystander: TestClient;
let bystanderWatcher: TestClient;
let bystanderText = '';
let bystanderVersion = 0;

beforeAll(async () => {
  server = await startTestServer({ jwtSecret: SECRET, rateLimitPerS: 0, maxMessageBytes: 256 * 1024 });
  bystander = (await TestClient.join(server.urlFor('tmp-fuzz-bystander'))).client;
  bystanderWatcher = (await TestClient.join(server.urlFor('tmp-fuzz-bystander'), 'msgpack')).client;
});
afterAll(async () => {
  bystander.close();
  bystanderWatcher.close();
  await server.close();
});

/** One edit in the bystander codespace, acked; the watcher must see it. */
async function bystanderEdits(): Promise<void> {
  const ref = `b${bystanderVersion}`;
  bystander.send({ operation: 'insert_value', changes: [{ from: bystanderText.length, to: bystanderText.length, insert: 'x' }], version: bystanderVersion, ref });
  const ack = await bystander.next((m) => m.ref === ref || m.data?.ref === ref);
  expect(ack).toMatchObject({ operation: 'ack', version: bystanderVersion + 1 });
  bystanderVersion++;
  bystanderText += 'x';
}

async function bystanderIntact(): Promise<void> {
  await bystanderEdits();
  const versions = bystanderWatcher.all((m) => m.operation === 'insert_value').map((m) => m.version);
  await bystanderWatcher.next((m) => m.operation === 'insert_value' && m.version === bystanderVersion);
  expect(bystanderWatcher.all((m) => m.operation === 'insert_value').map((m) => m.version)).toEqual(Array.from({ length: bystanderVersion }, (_, i) => i + 1));
  expect(versions.length).toBeGreaterThanOrEqual(bystanderVersion - 1);
  for (const client of [bystander, bystanderWatcher]) {
    expect(client.all((m) => m.operation === 'error' || m.operation === 'resync')).toEqual([]);
    expect(client.closed).toBeNull();
  }
  const { client, connected } = await TestClient.join(server.urlFor('tmp-fuzz-bystander'));
  client.close();
  expect(connected.data.code).toBe(bystanderText);
  expect(linkFaults.dropped).toBe(0);
}

/** Sends raw bytes on a fresh connection; resolves with what came back once it closed (or after a pause). */
function rawExchange(request: string | Buffer): Promise<string> {
  return new Promise((resolve) => {
    const socket = connectTcp(server.port, '127.0.0.1');
    let answer = '';
    const done = (): void => {
      socket.destroy();
      resolve(answer);
    };
    const timer = setTimeout(done, 1_000);
    socket.on('data', (chunk) => {
      answer += chunk.toString('latin1');
      // Enough to know how it was answered; a 101 stays open for a WebSocket.
      if (/\r\n\r\n/.test(answer)) {
        clearTimeout(timer);
        setTimeout(done, 20);
      }
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(answer);
    });
    socket.write(request);
  });
}

const targetChars = fc.constantFrom(...'/abc%[]?&=#:@!$\'()*+,;~-._0123456789 \u00e9\u0000\t\\{}|^`"<>'.split(''));
const target = fc.oneof(
  fc.string({ unit: targetChars, maxLength: 60 }),
  fc.tuple(fc.constantFrom('/codespace/', '//', 'http://', '/'), fc.string({ unit: targetChars, maxLength: 40 }), fc.constantFrom('', '?version=', '?client=', '?epoch=', '?version=1&version=2&client='), fc.string({ unit: targetChars, maxLength: 70 }))
    .map((parts) => parts.join('')),
);
const headerValue = fc.string({ unit: fc.constantFrom(...'abcXYZ019 ,;=.-_/:\t'.split('')), maxLength: 40 });

describe('fuzz', () => {
  it('request lines, paths, queries and headers: every one answered, the process serving', async () => {
    let cases = 0;
    await fc.assert(
      fc.asyncProperty(target, fc.boolean(), headerValue, headerValue, async (path, upgrade, protocol, extra) => {
        cases++;
        const headers = upgrade
          ? `Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: ${protocol}\r\n`
          : 'Connection: close\r\n';
        const answer = await rawExchange(`GET ${path} HTTP/1.1\r\nHost: x\r\nX-Fuzz: ${extra}\r\n${headers}\r\n`);
        expect(answer === '' || /^HTTP\/1\.1 \d{3}/.test(answer)).toBe(true);
      }),
      { seed: 11, numRuns: 400 },
    );
    const health = await fetch(`http://127.0.0.1:${server.port}/healthz`);
    expect(health.status).toBe(200);
    await bystanderIntact();
    console.log(`fuzz: ${cases} request lines`);
  });

  const deepValue = fc.integer({ min: 1, max: 3000 }).map((levels) => {
    let value: unknown = 'x';
    for (let i = 0; i < levels; i++) value = i % 2 ? [value] : { a: value };
    return value;
  });
  const leaf = fc.oneof(fc.integer(), fc.double(), fc.string({ maxLength: 20 }), fc.boolean(), fc.constant(null), fc.bigInt({ min: -(2n ** 64n), max: 2n ** 64n }), deepValue);
  const anyValue = fc.oneof(leaf, fc.array(leaf, { maxLength: 5 }), fc.dictionary(fc.string({ maxLength: 8 }), leaf, { maxKeys: 20 }));
  const change = fc.record({ from: anyValue, to: anyValue, insert: fc.oneof(fc.string({ maxLength: 10 }), anyValue) }, { requiredKeys: [] });
  const message = fc.oneof(
    fc.record({
      operation: fc.constantFrom('insert_value', 'create_selection', '__fault', 'nope', ''),
      changes: fc.oneof(fc.array(change, { maxLength: 4 }), anyValue),
      selections: fc.oneof(fc.array(fc.record({ anchor: anyValue, head: anyValue }), { maxLength: 4 }), anyValue),
      version: anyValue,
      doc_length: anyValue,
      ref: anyValue,
      name: anyValue,
    }, { requiredKeys: ['operation'] }),
    anyValue,
    fc.array(fc.integer(), { minLength: 1000, maxLength: 5000 }),
  );
  const packr = new Packr({ useRecords: false, largeBigIntToFloat: false });

  function encodeFor(value: unknown, codec: 'json' | 'msgpack'): string | Buffer | null {
    try {
      return codec === 'json' ? JSON.stringify(value, (_key, v) => (typeof v === 'bigint' ? Number(v) : v)) : Buffer.from(packr.pack(value));
    } catch {
      return null; // nesting too deep for the encoder here: not a message anyone can send
    }
  }

  for (const codec of ['json', 'msgpack'] as const) {
    it(`${codec} messages from an edit and a view_only client: each answered or closed, nobody else touched`, async () => {
      const viewToken = await new SignJWT({ codespace: `fuzz-${codec}`, mode: 'view_only' }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('1h').sign(new TextEncoder().encode(SECRET));
      const editToken = `tmp-fuzz-${codec}`;
      let cases = 0;
      const clients: Record<string, TestClient> = {};
      const clientFor = async (key: string, token: string): Promise<TestClient> => {
        const current = clients[key];
        if (current && !current.closed) return current;
        const fresh = (await TestClient.join(server.urlFor(token), codec)).client;
        clients[key] = fresh;
        return fresh;
      };
      await fc.assert(
        fc.asyncProperty(message, fc.boolean(), async (value, viewOnly) => {
          const frame = encodeFor(value, codec);
          if (frame === null) return;
          cases++;
          const client = await clientFor(viewOnly ? 'view' : 'edit', viewOnly ? viewToken : editToken);
          const before = client.messages.length;
          client.sendRaw(frame, codec === 'msgpack');
          // A probe right behind it: answered (ack, or forbidden for view_only) unless the
          // fuzzed message closed the connection, with a documented code.
          const ref = `probe-${cases}`;
          if (client.closed === null) client.send({ operation: 'insert_value', changes: [], version: 0, ref });
          const answer = await client.next((m: Message) => m.ref === ref || m.data?.ref === ref, 10_000).catch(() => null);
          if (answer === null) {
            expect(client.closed, `no answer to ${ref} and not closed`).not.toBeNull();
            expect([1003, 1007, 1009, 4400]).toContain(client.closed!.code);
          } else {
            expect(answer.operation === 'ack' || answer.data.code === 'forbidden').toBe(true);
          }
          expect(client.messages.length).toBeGreaterThan(before - 1);
        }),
        { seed: codec === 'json' ? 12 : 13, numRuns: 250 },
      );
      for (const client of Object.values(clients)) client.close();
      await bystanderIntact();
      console.log(`fuzz: ${cases} ${codec} messages`);
    });
  }
});
