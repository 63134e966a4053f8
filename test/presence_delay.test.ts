/**
 * PRESENCE_DELAY_MS (issue 15): `peer_joined`/`peer_left` may wait to share a write with the next
 * ones to the same client, so a burst of joins costs each member a few writes, not one per join.
 * Nothing overtakes them: any other message to that client takes them along first.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { TestClient } from './support/ws_client.ts';
import { startTestServer, type TestServer } from './support/server.ts';

let server: TestServer | null = null;

afterEach(async () => {
  await server?.close();
  server = null;
});

describe('presence delay', () => {
  it('holds presence for up to PRESENCE_DELAY_MS, in order, and lets no other message wait behind it', async () => {
    server = await startTestServer({ presenceDelayMs: 3_000 });
    const { client: a } = await TestClient.join(server.urlFor('tmp-presence-1'));

    // Nothing else for `a`: the peer_joined waits its full delay (a lower bound, safe on a busy machine).
    const started = performance.now();
    const { client: c, connected: cJoined } = await TestClient.join(server.urlFor('tmp-presence-1'));
    const joined = await a.next((m) => m.operation === 'peer_joined');
    expect(joined.data.id).toBe(cJoined.data.id);
    expect(performance.now() - started).toBeGreaterThanOrEqual(2_000);

    // An edit from a newcomer takes the held peer_joined along, ahead of it, at once.
    const { client: b, connected: bJoined } = await TestClient.join(server.urlFor('tmp-presence-1'));
    const sent = performance.now();
    b.send({ operation: 'insert_value', changes: [{ from: 0, to: 0, insert: 'x' }], doc_length: 0, version: 0, ref: 'b1' });
    const edit = await a.next((m) => m.operation === 'insert_value');
    expect(performance.now() - sent).toBeLessThan(2_500);
    expect(edit.sender).toBe(bJoined.data.id);
    const operations = a.messages.map((m) => `${m.operation}:${m.data?.id ?? m.sender ?? ''}`);
    expect(operations.slice(1)).toEqual([`peer_joined:${cJoined.data.id}`, `peer_joined:${bJoined.data.id}`, `insert_value:${bJoined.data.id}`]);

    // Leaving is presence too: held, then written.
    c.close();
    const left = await a.next((m) => m.operation === 'peer_left');
    expect(left.data.id).toBe(cJoined.data.id);
    b.close();
    a.close();
  });

  it('writes presence at once with PRESENCE_DELAY_MS=0', async () => {
    server = await startTestServer({ presenceDelayMs: 0 });
    const { client: a } = await TestClient.join(server.urlFor('tmp-presence-2'));
    const started = performance.now();
    await TestClient.join(server.urlFor('tmp-presence-2'));
    await a.next((m) => m.operation === 'peer_joined', 2_000);
    expect(performance.now() - started).toBeLessThan(2_000);
  });
});
