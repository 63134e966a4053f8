/**
 * Every bad input gets its documented answer (PROTOCOL.md §2 errors, §5 close codes), and loses
 * nothing: a well-behaved client of the same codespace keeps working, and no version is used up.
 */
import { createServer, type Server } from 'node:http';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { encodeMessage } from '../src/protocol/codec.ts';
import { TestClient, type Message } from './support/ws_client.ts';
import { startTestServer, type TestServer } from './support/server.ts';

let server: TestServer;
let api: Server;
let apiUrl: string;
const open: TestClient[] = [];

/** A SharePython-style API: `view-*` tokens are view_only, `gone` is 404, `slow` never answers. */
beforeAll(async () => {
  api = createServer((request, response) => {
    const token = /codespace\/([^/]+)\//.exec(request.url ?? '')?.[1] ?? '';
    if (token === 'slow') return; // hangs past AUTH_TIMEOUT_MS
    if (token === 'gone') return void response.writeHead(404).end();
    if (token === 'badid') return void response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ uuid: 'bad id!', mode: 'edit' }));
    const mode = token.startsWith('view-') ? 'view_only' : 'edit';
    response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ uuid: `api-${token.replace(/^view-/, '')}`, mode }));
  });
  await new Promise<void>((resolve) => api.listen(0, '127.0.0.1', resolve));
  apiUrl = `http://127.0.0.1:${(api.address() as { port: number }).port}/`;
  // AUTH_TIMEOUT_MS generous enough for the stub API to answer on a busy machine (at 300 ms, a
  // load average of 8-13 made ordinary lookups time out and close with 1013): only `slow` waits it out.
  server = await startTestServer({ apiBaseUrl: apiUrl, authTimeoutMs: 3_000, maxMessageBytes: 4096, maxDocLength: 1000 });
});
afterEach(() => {
  for (const client of open.splice(0)) client.close();
});
afterAll(async () => {
  await server.close();
  await new Promise((resolve) => api.close(resolve));
});

async function join(token: string, codec: 'json' | 'msgpack' | 'none' = 'none'): Promise<{ client: TestClient; connected: Message }> {
  const joined = await TestClient.join(server.urlFor(token), codec);
  open.push(joined.client);
  return joined;
}

async function edit(client: TestClient, version: number, insert: string, ref: string): Promise<Message> {
  client.send({ operation: 'insert_value', changes: [{ from: 0, to: 0, insert }], version, ref });
  return client.next((m) => (m.operation === 'ack' || m.operation === 'error') && (m.ref === ref || m.data?.ref === ref));
}

/** The codespace still works and `version` is the next version: nothing was used up or lost. */
async function stillServes(token: string, client: TestClient, expectedVersion: number): Promise<void> {
  const reply = await edit(client, expectedVersion - 1, '.', `probe-${expectedVersion}-${Math.random()}`);
  expect(reply).toMatchObject({ operation: 'ack', version: expectedVersion });
  const { connected } = await join(token);
  expect(connected.data.version).toBe(expectedVersion);
}

async function errorFor(client: TestClient, message: unknown): Promise<Message> {
  client.send(message);
  return client.next((m) => m.operation === 'error');
}

describe('bad input', () => {
  describe('closes with 4400', () => {
    for (const [name, frame] of [['unparsable JSON', '{"operation":'], ['a JSON array', '[1]'], ['a JSON number', '42'], ['an object without operation', '{"changes":[]}'], ['a non-string operation', '{"operation":7}']] as const) {
      it(`on ${name}, and the codespace's other client notices nothing`, async () => {
        const token = `tmp-4400-${name.replaceAll(' ', '-')}`;
        const { client: bad } = await join(token);
        const { client: good } = await join(token);
        bad.sendRaw(frame, false);
        expect((await bad.closedWith()).code).toBe(4400);
        await stillServes(token, good, 1);
        expect(good.all((m) => m.operation === 'error')).toEqual([]);
      });
    }

    it('on garbage msgpack in a binary frame', async () => {
      const { client: bad } = await join('tmp-4400-msgpack', 'msgpack');
      bad.sendRaw(Buffer.from([0xc1, 0xff, 0x00]), true);
      expect((await bad.closedWith()).code).toBe(4400);
    });
  });

  describe('answers error and keeps the connection', () => {
    it('after connected, for bad messages sent before it arrived (connected stays the first message)', async () => {
      // Sent at once on open: main refuses them while the channel's connected is still on its way.
      for (const token of ['tmp-early-bad', 'api-early-bad-token']) {
        const client = await TestClient.open(server.urlFor(token));
        open.push(client);
        client.send({ operation: 'insert_value', ref: 'early' });
        client.send({ operation: 'nope' });
        await client.next((m) => m.operation === 'error' && m.data.code === 'unknown_operation');
        expect(client.messages.map((m) => m.operation)).toEqual(['connected', 'error', 'error']);
        expect(client.messages[1].data).toMatchObject({ code: 'malformed', ref: 'early' });
      }
    });

    it('unknown_operation, with the ref echoed', async () => {
      const { client } = await join('tmp-unknown-op');
      expect(await errorFor(client, { operation: 'delete_everything', ref: 'u1' })).toMatchObject({ data: { code: 'unknown_operation', ref: 'u1' } });
      await stillServes('tmp-unknown-op', client, 1);
    });

    const malformedCases: [string, Record<string, unknown>][] = [
      ['changes not an array', { changes: 'x' }],
      ['a change that is not an object', { changes: [3] }],
      ['from missing', { changes: [{ to: 0, insert: 'a' }] }],
      ['to negative', { changes: [{ from: 0, to: -1, insert: 'a' }] }],
      ['from not an integer', { changes: [{ from: 0.5, to: 1, insert: 'a' }] }],
      ['insert missing', { changes: [{ from: 0, to: 0 }] }],
      ['insert not a string', { changes: [{ from: 0, to: 0, insert: 5 }] }],
      ['version negative', { changes: [], version: -1 }],
      ['doc_length not an integer', { changes: [], doc_length: '3' }],
    ];
    for (const [name, fields] of malformedCases) {
      it(`malformed: ${name}`, async () => {
        const { client } = await join('tmp-malformed');
        const version = (await join('tmp-malformed')).connected.data.version as number;
        const error = await errorFor(client, { operation: 'insert_value', ref: `m-${name}`, ...fields });
        expect(error.data).toMatchObject({ code: 'malformed', ref: `m-${name}` });
        await stillServes('tmp-malformed', client, version + 1);
      });
    }

    it('malformed: a ref that is not a string or longer than 64 characters (not echoed)', async () => {
      const { client } = await join('tmp-bad-ref');
      for (const ref of [17, 'r'.repeat(65)]) {
        const error = await errorFor(client, { operation: 'insert_value', changes: [], ref });
        expect(error.data.code).toBe('malformed');
        expect(error.data.ref).toBeUndefined();
      }
      await stillServes('tmp-bad-ref', client, 1);
    });

    const invalidCases: [string, Record<string, unknown>][] = [
      ['out of range', { changes: [{ from: 0, to: 9, insert: '' }], version: 1 }],
      ['reversed', { changes: [{ from: 2, to: 1, insert: '' }], version: 1 }],
      ['overlapping', { changes: [{ from: 0, to: 2, insert: '' }, { from: 1, to: 3, insert: '' }], version: 1 }],
      ['unsorted', { changes: [{ from: 3, to: 3, insert: 'a' }, { from: 0, to: 0, insert: 'b' }], version: 1 }],
      ['a doc_length that is not the length at the base', { changes: [{ from: 0, to: 0, insert: 'a' }], version: 1, doc_length: 99 }],
      ['a version ahead of the server', { changes: [{ from: 0, to: 0, insert: 'a' }], version: 50 }],
      ['splitting a surrogate pair', { changes: [{ from: 1, to: 1, insert: 'x' }], version: 1 }],
      ['inserting a lone surrogate', { changes: [{ from: 0, to: 0, insert: '\ud83d' }], version: 1 }],
    ];
    for (const [name, fields] of invalidCases) {
      it(`invalid_change: ${name}`, async () => {
        const token = `tmp-invalid-${name.replaceAll(' ', '-')}`;
        const { client } = await join(token);
        expect(await edit(client, 0, '😀ab', 'seed')).toMatchObject({ operation: 'ack', version: 1 });
        const error = await errorFor(client, { operation: 'insert_value', ref: 'bad', ...fields });
        expect(error.data).toMatchObject({ code: 'invalid_change', ref: 'bad' });
        await stillServes(token, client, 2);
        expect((await join(token)).connected.data.code).toBe('.😀ab');
      });
    }

    it('too_large: an edit past MAX_DOC_LENGTH leaves the document as it was', async () => {
      const { client } = await join('tmp-too-large');
      expect(await edit(client, 0, 'x'.repeat(900), 'fits')).toMatchObject({ operation: 'ack', version: 1 });
      expect((await edit(client, 1, 'y'.repeat(200), 'too-much')).data).toMatchObject({ code: 'too_large', ref: 'too-much' });
      await stillServes('tmp-too-large', client, 2);
      expect(((await join('tmp-too-large')).connected.data.code as string).length).toBe(901);
    });

    it('forbidden: a view_only client cannot edit, but its selections are relayed', async () => {
      const { client: viewer, connected } = await join('view-doc');
      expect(connected.data).toMatchObject({ mode: 'view_only', codespace: 'api-doc' });
      const { client: editor } = await join('doc');
      expect((await edit(viewer, 0, 'nope', 'v1')).data).toMatchObject({ code: 'forbidden', ref: 'v1' });
      viewer.send({ operation: 'create_selection', selections: [{ anchor: 0, head: 0 }] });
      expect(await editor.next((m) => m.operation === 'create_selection')).toMatchObject({ sender: connected.data.id });
      await stillServes('doc', editor, 1);
    });
  });

  it('stale: an edit based on a version older than HISTORY must reload', async () => {
    const small = await startTestServer({ history: 5 });
    try {
      const { client } = await TestClient.join(small.urlFor('tmp-stale'));
      for (let v = 1; v <= 8; v++) expect(await edit(client, v - 1, `${v}`, `s${v}`)).toMatchObject({ version: v });
      expect((await edit(client, 1, 'old', 'stale')).data).toMatchObject({ code: 'stale', ref: 'stale' });
      expect(await edit(client, 8, '!', 'fresh')).toMatchObject({ operation: 'ack', version: 9 });
      client.close();
    } finally {
      await small.close();
    }
  });

  describe('closes with the transport codes', () => {
    it('1009 for a frame larger than MAX_MESSAGE_BYTES', async () => {
      const { client: bad } = await join('tmp-1009');
      const { client: good } = await join('tmp-1009');
      bad.send({ operation: 'insert_value', changes: [{ from: 0, to: 0, insert: 'z'.repeat(5000) }], version: 0 });
      expect((await bad.closedWith()).code).toBe(1009);
      await stillServes('tmp-1009', good, 1);
    });

    it('1007 for a text frame that is not UTF-8', async () => {
      const { client: bad } = await join('tmp-1007');
      bad.sendRaw(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), false);
      expect((await bad.closedWith()).code).toBe(1007);
    });

    it('1003 for a binary frame on JSON, and a text frame on msgpack', async () => {
      const { client: json } = await join('tmp-1003');
      json.sendRaw(Buffer.from(encodeMessage({ operation: 'create_selection', selections: [] }, 'msgpack')), true);
      expect((await json.closedWith()).code).toBe(1003);
      const { client: msgpack } = await join('tmp-1003', 'msgpack');
      msgpack.sendRaw('{"operation":"create_selection","selections":[]}', false);
      expect((await msgpack.closedWith()).code).toBe(1003);
    });
  });

  describe('refuses the token', () => {
    async function closeOf(token: string): Promise<number> {
      const client = await TestClient.open(server.urlFor(token));
      open.push(client);
      return (await client.closedWith(15_000)).code;
    }

    it('4401 for an unknown kind of token and for a codespace id with bad characters', async () => {
      expect(await closeOf('tmp-bad%20id')).toBe(4401);
      expect(await closeOf('badid')).toBe(4401);
    });

    it('4404 when the API says the codespace does not exist', async () => {
      expect(await closeOf('gone')).toBe(4404);
    });

    it('1013 when the API does not answer within AUTH_TIMEOUT_MS', async () => {
      expect(await closeOf('slow')).toBe(1013);
    });
  });
});
