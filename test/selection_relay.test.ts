/**
 * Selections relayed by main where the store is local (issue 15): they never cross to the
 * actor's thread, and still keep PROTOCOL.md §3's order: a sender's selection never overtakes
 * its own edit sent before it, and carries the version known at that moment.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { TestClient, waitFor } from './support/ws_client.ts';
import { startTestServer, type TestServer } from './support/server.ts';

let server: TestServer | null = null;
const dataDir = mkdtempSync(join(tmpdir(), 'codespace-selection-relay-'));

afterEach(async () => {
  await server?.close();
  server = null;
});
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

describe.each([
  ['memory store', {}],
  ['file store (every edit waits for its sync)', { dataDir }],
])('selections relayed by main, %s', (_name, overrides) => {
  it('never overtake the edit their sender sent before them, and carry the version after it', async () => {
    server = await startTestServer({ ...overrides, rateLimitPerS: 0 });
    const codespace = `tmp-selection-${Object.keys(overrides).length}`;
    const { client: watcher } = await TestClient.join(server.urlFor(codespace));
    const { client: typist, connected } = await TestClient.join(server.urlFor(codespace));
    const rounds = 30;
    for (let i = 0; i < rounds; i++) {
      // In one turn: an edit, then the cursor after it (as an editor sends them).
      typist.send({ operation: 'insert_value', changes: [{ from: i, to: i, insert: 'x' }], version: i, doc_length: i, ref: `e${i}` });
      typist.send({ operation: 'create_selection', selections: [{ anchor: i + 1, head: i + 1 }] });
      await typist.next((m) => m.operation === 'ack' && m.ref === `e${i}`);
    }
    await waitFor(() => watcher.messages.filter((m) => m.operation === 'create_selection').length === rounds, 10_000, 'every selection');
    const seen = watcher.messages.filter((m) => m.operation === 'insert_value' || m.operation === 'create_selection');
    expect(seen).toHaveLength(2 * rounds);
    for (let i = 0; i < rounds; i++) {
      expect(seen[2 * i]).toMatchObject({ operation: 'insert_value', version: i + 1, ref: `e${i}` });
      expect(seen[2 * i + 1]).toMatchObject({ operation: 'create_selection', sender: connected.data.id, version: i + 1, selections: [{ anchor: i + 1, head: i + 1 }] });
    }
    // A selection with no edit before it goes out at once, with the current version.
    watcher.send({ operation: 'create_selection', selections: [{ anchor: 0, head: 3 }], name: 'w' });
    const relayed = await typist.next((m) => m.operation === 'create_selection');
    expect(relayed).toMatchObject({ version: rounds, name: 'w', selections: [{ anchor: 0, head: 3 }] });
    expect(relayed.sender).not.toBe(connected.data.id);
  });
});
