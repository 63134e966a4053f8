/**
 * Per-channel isolation under normal load: 24 codespaces × 3 clients over 2 workers, editing and
 * moving selections at once. Nothing crosses between codespaces; each converges on its own.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTracked, settle, storm, totalAcks, sawEveryVersionOnce, type Tracked } from './support/sdk_storm.ts';
import { startTestServer, type TestServer } from './support/server.ts';
import { TestClient, waitFor } from './support/ws_client.ts';

const CODESPACES = 24;
const CLIENTS = 3;

let server: TestServer;
const rooms: { token: string; clients: Tracked[]; selections: Record<string, unknown>[] }[] = [];

beforeAll(async () => {
  server = await startTestServer({ workers: 2 });
  for (let r = 0; r < CODESPACES; r++) {
    const token = `tmp-iso-${r}`;
    const clients: Tracked[] = [];
    const selections: Record<string, unknown>[] = [];
    for (let c = 0; c < CLIENTS; c++) {
      const tracked = await openTracked(server.url, token, (r + c) % 2 ? 'msgpack' : 'json');
      tracked.client.on('selection', (message) => selections.push(message));
      clients.push(tracked);
    }
    rooms.push({ token, clients, selections });
  }
}, 60_000);
afterAll(async () => {
  for (const room of rooms) for (const tracked of room.clients) tracked.client.close();
  await server.close();
});

describe('isolation between codespaces', () => {
  it('keeps every codespace to itself while all edit and select at once', async () => {
    // Tokens name their codespace: `<c{client}e{n}>` is made unique per room by the room prefix.
    await Promise.all(rooms.map(async (room, r) => {
      const selecting = setInterval(() => {
        for (const tracked of room.clients) {
          const at = Math.floor(Math.random() * (tracked.client.text.length + 1));
          tracked.client.setSelection([{ anchor: at, head: at }]);
        }
      }, 20);
      try {
        await storm(room.clients, 12, 15, true);
      } finally {
        clearInterval(selecting);
      }
      return r;
    }));
    for (const room of rooms) await settle(room.clients);

    const ids = new Map<string, string>();
    for (const room of rooms) for (const tracked of room.clients) ids.set(tracked.client.id, room.token);
    for (const room of rooms) {
      const n = await settle(room.clients);
      expect(n).toBe(totalAcks(room.clients));
      const text = room.clients[0].client.text;
      for (const tracked of room.clients) {
        expect(tracked.client.text).toBe(text);
        expect(sawEveryVersionOnce(tracked, n)).toBe(true);
      }
      // Exactly this room's tokens: 3 clients × 12 edits, nothing from elsewhere.
      expect(text.match(/<c\de\d+>/g)?.length).toBe(CLIENTS * 12);
      // Selections came only from this room's clients, stamped by the server.
      expect(room.selections.length).toBeGreaterThan(0);
      for (const selection of room.selections) {
        expect(ids.get(selection.sender as string)).toBe(room.token);
        expect(typeof selection.version).toBe('number');
      }
    }
    // The channels were spread over both workers.
    const threads = new Set(rooms.map((room) => server.hub.supervisor.channel(room.token)?.thread));
    expect(threads.size).toBe(2);
  }, 60_000);

  it('stamps a relayed selection with the real sender, keeping the fields it was sent with', async () => {
    const raw = await TestClient.join(server.urlFor(rooms[0].token));
    const before = rooms[0].selections.length;
    raw.client.send({ operation: 'create_selection', sender: 'forged', selections: [{ anchor: 0, head: 1 }], color: '#f00' });
    await waitFor(() => rooms[0].selections.length >= before + CLIENTS, 3000, 'selection relayed to every client');
    for (const relayed of rooms[0].selections.slice(before)) {
      expect(relayed).toMatchObject({ sender: raw.connected.data.id, color: '#f00', selections: [{ anchor: 0, head: 1 }] });
    }
    for (const room of rooms.slice(1)) expect(room.selections.some((message) => message.sender === raw.connected.data.id)).toBe(false);
    raw.client.close();
  });
});
