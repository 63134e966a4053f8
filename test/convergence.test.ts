/**
 * Convergence through a real server (fast-check): clients with mixed codecs make random
 * concurrent edits with random delays; all end with the server's text and saw every version
 * exactly once, in order.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTracked, settle, totalAcks, sawEveryVersionOnce, type Tracked } from './support/sdk_storm.ts';
import { editShape, placeEdit } from './support/random_edits.ts';
import { startTestServer, type TestServer } from './support/server.ts';
import { TestClient } from './support/ws_client.ts';

let server: TestServer;
let run = 0;

beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server.close();
});

const step = fc.record({ client: fc.nat(3), edit: editShape, delayMs: fc.integer({ min: 0, max: 8 }) });

describe('convergence through the server', () => {
  it('every client ends with the same text as the server, having seen 1..N once each in order', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 2, max: 4 }), fc.array(step, { minLength: 5, maxLength: 40 }), async (clientCount, steps) => {
        const token = `tmp-converge-${run++}`;
        const clients: Tracked[] = [];
        try {
          for (let i = 0; i < clientCount; i++) clients.push(await openTracked(server.url, token, i % 2 ? 'msgpack' : 'json'));
          // Each client works through its own steps concurrently with the others.
          await Promise.all(clients.map(async (tracked, index) => {
            for (const { client, edit, delayMs } of steps) {
              if (client % clientCount !== index) continue;
              await new Promise((resolve) => setTimeout(resolve, delayMs));
              tracked.client.applyLocal(placeEdit(tracked.client.text, edit));
            }
          }));
          const n = await settle(clients, 15_000);
          expect(n).toBe(totalAcks(clients));
          const { client: fresh, connected } = await TestClient.join(server.urlFor(token));
          fresh.close();
          expect(connected.data.version).toBe(n);
          for (const tracked of clients) {
            expect(tracked.client.text).toBe(connected.data.code);
            expect(sawEveryVersionOnce(tracked, n)).toBe(true);
            // In arrival order too, not only as a set.
            expect(tracked.versions).toEqual([...tracked.versions].sort((a, b) => a - b));
            expect(tracked.errors).toEqual([]);
          }
        } finally {
          for (const tracked of clients) tracked.client.close();
        }
      }),
      { numRuns: 40 },
    );
  }, 60_000);
});
