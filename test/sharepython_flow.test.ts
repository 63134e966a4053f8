/**
 * An unchanged SharePython browser client (sharepython-frontend, CodeSandbox.vue), message by
 * message: no subprotocol, `connected` read for its id, `insert_value` with CodeMirror's
 * `iterChanges`, `doc_length` and its own `sender`, no version; every received change applied
 * with `ChangeSet.of(change, data.doc_length)`; messages with its own `sender` ignored.
 */
import { ChangeSet, EditorState } from '@codemirror/state';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestClient, type Message } from './support/ws_client.ts';
import { startTestServer, type TestServer } from './support/server.ts';

/** The browser client's state and handlers, reduced to what touches the wire. */
class SharePythonClient {
  state = EditorState.create({ doc: '' });
  connectionId: string | null = null;
  readonly ws: TestClient;

  constructor(ws: TestClient) {
    this.ws = ws;
  }

  onMessage(data: Message): void {
    if (data.operation === 'connected') {
      this.connectionId = data.data.id;
      this.state = EditorState.create({ doc: data.data.code });
    } else if (data.operation === 'insert_value' && data.sender !== this.connectionId) {
      const changes: ChangeSet[] = data.changes.map((change: Message) => ChangeSet.of(change as never, data.doc_length));
      this.state = this.state.update({ changes }).state;
    }
  }

  /** What `onCodeChange` + `createChangesMessage` send for a local edit. */
  type(from: number, to: number, insert: string): void {
    const update = this.state.update({ changes: { from, to, insert } });
    const changes: { from: number; to: number; insert: string }[] = [];
    update.changes.iterChanges((fromA, toA, _fromB, _toB, inserted) => {
      changes.push({ from: fromA, to: toA, insert: inserted.toString() });
    }, false);
    this.ws.send({ operation: 'insert_value', sender: this.connectionId, doc_length: this.state.doc.length, changes });
    this.state = update.state;
  }

  get text(): string {
    return this.state.doc.toString();
  }
}

describe('SharePython client flow', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => {
    await server.close();
  });

  it('connects, types, sees the other client type, and both end with the same text', async () => {
    const wsA = await TestClient.open(server.urlFor('tmp-sharepython'));
    const a = new SharePythonClient(wsA);
    a.onMessage(await wsA.next());
    expect(a.connectionId).toEqual(expect.any(String));
    const wsB = await TestClient.open(server.urlFor('tmp-sharepython'));
    const b = new SharePythonClient(wsB);
    b.onMessage(await wsB.next());
    expect(wsB.socket.protocol).toBe('');

    a.type(0, 0, 'def f():\n    return 1\n');
    const seenByB = await wsB.next((m) => m.operation === 'insert_value');
    // The server stamps the author's id as sender; the client's own sender field is not trusted.
    expect(seenByB).toMatchObject({ sender: a.connectionId, version: 1, doc_length: 0 });
    b.onMessage(seenByB);
    expect(b.text).toBe(a.text);

    b.type(13, 21, 'return 42');
    b.type(0, 0, '# hi\n');
    for (let i = 0; i < 2; i++) a.onMessage(await wsA.next((m) => m.operation === 'insert_value'));
    expect(a.text).toBe('# hi\ndef f():\n    return 42\n');
    expect(b.text).toBe(a.text);

    // The author never gets its own change live (it gets `ack`, which the browser ignores).
    expect(wsA.all((m) => m.operation === 'insert_value' && m.sender === a.connectionId)).toEqual([]);
    expect(wsA.all((m) => m.operation === 'ack').map((m) => m.version)).toEqual([1]);

    const { connected } = await TestClient.join(server.urlFor('tmp-sharepython'));
    expect(connected.data.code).toBe(a.text);
    wsA.close();
    wsB.close();
  });

  it('relays create_selection with its scalar fields and the server-stamped sender; a nested field is refused', async () => {
    const { client: a, connected } = await TestClient.join(server.urlFor('tmp-sp-select'));
    const { client: b } = await TestClient.join(server.urlFor('tmp-sp-select'));
    a.send({ operation: 'create_selection', sender: 'forged', selections: [{ anchor: 0, head: 0 }], extra: { color: 'red' } });
    expect((await a.next((m) => m.operation === 'error')).data.code).toBe('malformed');
    a.send({ operation: 'create_selection', sender: 'forged', selections: [{ anchor: 0, head: 0 }], color: 'red', width: 2 });
    const seen = await b.next((m) => m.operation === 'create_selection');
    expect(seen).toEqual({ operation: 'create_selection', sender: connected.data.id, version: 0, selections: [{ anchor: 0, head: 0 }], color: 'red', width: 2 });
    a.close();
    b.close();
  });
});
