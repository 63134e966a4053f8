/** PROTOCOL.md §4: pings from one sweep, dead peers terminated and freed, idle clients closed. */
import { afterEach, describe, expect, it } from 'vitest';
import { TestClient, waitFor } from './support/ws_client.ts';
import { startTestServer, type TestServer } from './support/server.ts';

let server: TestServer | null = null;

afterEach(async () => {
  await server?.close();
  server = null;
});

describe('liveness', () => {
  it('terminates a peer that stops answering pings and frees its place in the channel', async () => {
    server = await startTestServer({ pingIntervalMs: 100 });
    const { client: alive } = await TestClient.join(server.urlFor('tmp-live-1'));
    const dead = new TestClient(server.urlFor('tmp-live-1'), 'none', { autoPong: false });
    const deadJoined = await dead.next((m) => m.operation === 'connected');
    await alive.next((m) => m.operation === 'peer_joined');
    expect(server.acceptor.connections).toBe(2);
    const closed = await dead.closedWith(3000);
    // Terminated without a closing handshake: the client sees an abnormal closure.
    expect(closed.code).toBe(1006);
    const left = await alive.next((m) => m.operation === 'peer_left');
    expect(left.data.id).toBe(deadJoined.data.id);
    await waitFor(() => server!.acceptor.connections === 1, 2000, 'connection freed');
    expect(server.hub.supervisor.channel('tmp-live-1')?.size).toBe(1);
    expect(server.logs.some((l) => l.event === 'peer_dead')).toBe(true);
    // The live client answered every ping and is still served.
    await new Promise((resolve) => setTimeout(resolve, 350));
    expect(alive.closed).toBeNull();
    alive.send({ operation: 'insert_value', changes: [{ from: 0, to: 0, insert: 'ok' }], version: 0, ref: 'x' });
    expect((await alive.next((m) => m.operation === 'ack')).version).toBe(1);
    alive.close();
  });

  it('closes a silent client with 4408 after IDLE_TIMEOUT_MS and keeps a talking one', async () => {
    server = await startTestServer({ idleTimeoutMs: 1000, pingIntervalMs: 10_000 });
    const { client: silent } = await TestClient.join(server.urlFor('tmp-idle-1'));
    const { client: talker } = await TestClient.join(server.urlFor('tmp-idle-1'));
    const chatter = setInterval(() => talker.send({ operation: 'create_selection', selections: [{ anchor: 0, head: 0 }] }), 60);
    try {
      const closed = await silent.closedWith(5000);
      expect(closed.code).toBe(4408);
      // Longer than the timeout: the talker would have been closed too, were it idle.
      await new Promise((resolve) => setTimeout(resolve, 1300));
      expect(talker.closed).toBeNull();
    } finally {
      clearInterval(chatter);
    }
    talker.close();
  });

  it('pings nobody twice per interval and never closes a healthy idle client when the timeout is off', async () => {
    server = await startTestServer({ pingIntervalMs: 100 });
    const { client } = await TestClient.join(server.urlFor('tmp-live-2'));
    let pings = 0;
    client.socket.on('ping', () => pings++);
    await new Promise((resolve) => setTimeout(resolve, 650));
    expect(pings).toBeGreaterThanOrEqual(4);
    expect(pings).toBeLessThanOrEqual(8);
    expect(client.closed).toBeNull();
    client.close();
  });
});
