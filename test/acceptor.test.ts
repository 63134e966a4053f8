import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestClient, waitFor } from './support/ws_client.ts';
import { startTestServer, type TestServer } from './support/server.ts';

describe('Acceptor', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => {
    await server.close();
  });

  describe('join', () => {
    it('sends connected with id, mode, codespace, version, code and peers', async () => {
      const { client: a, connected } = await TestClient.join(server.urlFor('tmp-join-1'));
      expect(connected.data).toMatchObject({ mode: 'edit', codespace: 'tmp-join-1', version: 0, code: '', peers: [] });
      const { client: b, connected: second } = await TestClient.join(server.urlFor('tmp-join-1'), 'msgpack');
      expect(second.data.peers).toEqual([{ id: connected.data.id, mode: 'edit' }]);
      const joined = await a.next((m) => m.operation === 'peer_joined');
      expect(joined.data).toEqual({ id: second.data.id, mode: 'edit' });
      b.close();
      const left = await a.next((m) => m.operation === 'peer_left');
      expect(left.data.id).toBe(second.data.id);
      a.close();
    });

    it('answers HTTP 404 to a path that is not /codespace/<token>/', async () => {
      const client = new TestClient(`${server.url}/elsewhere/x`);
      await expect(client.opened()).rejects.toThrow(/404/);
    });

    it('serves /healthz and /readyz', async () => {
      const base = server.url.replace('ws:', 'http:');
      expect((await fetch(`${base}/healthz`)).status).toBe(200);
      const ready = await (await fetch(`${base}/readyz`)).json();
      expect(ready.ready).toBe(true);
    });
  });

  describe('edits', () => {
    it('acks the author and broadcasts to the others, json and msgpack alike', async () => {
      const { client: a } = await TestClient.join(server.urlFor('tmp-edit-1'));
      const { client: b } = await TestClient.join(server.urlFor('tmp-edit-1'), 'msgpack');
      a.send({ operation: 'insert_value', changes: [{ from: 0, to: 0, insert: 'hi' }], doc_length: 0, version: 0, ref: 'a-1' });
      expect(await a.next((m) => m.operation === 'ack')).toEqual({ operation: 'ack', version: 1, ref: 'a-1' });
      const seen = await b.next((m) => m.operation === 'insert_value');
      expect(seen).toMatchObject({ version: 1, changes: [{ from: 0, to: 0, insert: 'hi' }], doc_length: 0, ref: 'a-1' });
      b.send({ operation: 'insert_value', changes: [{ from: 2, to: 2, insert: '!' }], version: 1, ref: 'b-1' });
      await b.next((m) => m.operation === 'ack');
      const back = await a.next((m) => m.operation === 'insert_value');
      expect(back).toMatchObject({ version: 2, sender: seen.sender === back.sender ? 'never' : back.sender });
      const { connected } = await TestClient.join(server.urlFor('tmp-edit-1'));
      expect(connected.data).toMatchObject({ version: 2, code: 'hi!' });
      a.close();
      b.close();
    });

    it('never applies a resent ref twice', async () => {
      const { client: a } = await TestClient.join(server.urlFor('tmp-dedup'));
      const edit = { operation: 'insert_value', changes: [{ from: 0, to: 0, insert: 'x' }], version: 0, ref: 'once' };
      a.send(edit);
      a.send(edit);
      expect((await a.next((m) => m.operation === 'ack')).version).toBe(1);
      expect((await a.next((m) => m.operation === 'ack')).version).toBe(1);
      const { connected } = await TestClient.join(server.urlFor('tmp-dedup'));
      expect(connected.data).toMatchObject({ version: 1, code: 'x' });
      a.close();
    });

    it('resumes with ?version=N from the history', async () => {
      const { client: a } = await TestClient.join(server.urlFor('tmp-resume'));
      for (let i = 0; i < 3; i++) {
        a.send({ operation: 'insert_value', changes: [{ from: i, to: i, insert: String(i) }], version: i, ref: `r${i}` });
        await a.next((m) => m.operation === 'ack');
      }
      const { client: b, connected } = await TestClient.join(server.urlFor('tmp-resume', 'version=1'));
      expect(connected.data).toMatchObject({ resumed: true, version: 3 });
      expect(connected.data.code).toBeUndefined();
      const missed = [await b.next(), await b.next()];
      expect(missed.map((m) => [m.operation, m.version, m.ref])).toEqual([['insert_value', 2, 'r1'], ['insert_value', 3, 'r2']]);
      const { connected: full } = await TestClient.join(server.urlFor('tmp-resume', 'version=99'));
      expect(full.data).toMatchObject({ version: 3, code: '012' });
      a.close();
      b.close();
    });
  });

  it('stops a channel after its last client left and the grace period', async () => {
    const { client } = await TestClient.join(server.urlFor('tmp-grace'));
    expect(server.hub.supervisor.channel('tmp-grace')).toBeDefined();
    client.close();
    await waitFor(() => server.hub.supervisor.channel('tmp-grace') === undefined, 5000, 'channel stop');
  });
});
