/**
 * The CodeMirror binding against a real server: editors (EditorState with a view's dispatch
 * loop) typing concurrently all end with the server's text; a refused edit leaves the editor.
 */
import { EditorState, type Transaction, type TransactionSpec } from '@codemirror/state';
import { afterEach, describe, expect, it } from 'vitest';
import { remote, syncEditor, type EditorSync } from '../src/client/codemirror.ts';
import { openTracked, settle, type Tracked } from './support/sdk_storm.ts';
import { startTestServer, type TestServer } from './support/server.ts';
import { TestClient, waitFor } from './support/ws_client.ts';

/** What an EditorView does with dispatch, without the DOM: update the state, tell the listeners. */
class HeadlessEditor {
  state: EditorState;
  sync: EditorSync | null = null;
  readonly remoteTransactions: Transaction[] = [];

  constructor(text: string) {
    this.state = EditorState.create({ doc: text });
  }

  dispatch(...specs: TransactionSpec[]): void {
    const transaction = this.state.update(...specs);
    this.state = transaction.state;
    if (transaction.annotation(remote)) this.remoteTransactions.push(transaction);
    this.sync?.update([transaction]);
  }
}

let server: TestServer | null = null;
const opened: Tracked[] = [];

afterEach(async () => {
  for (const tracked of opened.splice(0)) tracked.client.close();
  await server?.close();
  server = null;
});

async function editorOn(token: string, codec: 'json' | 'msgpack'): Promise<{ tracked: Tracked; editor: HeadlessEditor }> {
  const tracked = await openTracked(server!.url, token, codec);
  opened.push(tracked);
  const editor = new HeadlessEditor(tracked.client.text);
  editor.sync = syncEditor(tracked.client, editor);
  return { tracked, editor };
}

describe('syncEditor', () => {
  it('keeps concurrent editors and the server on one text', async () => {
    server = await startTestServer();
    const token = 'tmp-codemirror';
    const editors = await Promise.all([editorOn(token, 'json'), editorOn(token, 'msgpack'), editorOn(token, 'json')]);
    await Promise.all(editors.map(async ({ editor }, index) => {
      for (let n = 0; n < 30; n++) {
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 10));
        const length = editor.state.doc.length;
        const from = Math.floor(Math.random() * (length + 1));
        const to = Math.min(length, from + (Math.random() < 0.3 ? 2 : 0));
        editor.dispatch({ changes: { from, to, insert: `e${index}.${n};` } });
      }
    }));
    await settle(editors.map(({ tracked }) => tracked));
    const { client: fresh, connected } = await TestClient.join(server.urlFor(token));
    fresh.close();
    for (const { editor, tracked } of editors) {
      expect(editor.state.doc.toString()).toBe(connected.data.code);
      expect(tracked.client.text).toBe(connected.data.code);
      // Remote changes arrived as marked transactions, kept out of the undo history.
      expect(editor.remoteTransactions.length).toBeGreaterThan(0);
      expect(editor.remoteTransactions.every((transaction) => transaction.annotation(remote) === true)).toBe(true);
    }
  });

  it('takes an edit the server refused back out of the editor', async () => {
    server = await startTestServer({ maxDocLength: 10 });
    const { tracked, editor } = await editorOn('tmp-codemirror-refused', 'json');
    editor.dispatch({ changes: { from: 0, insert: 'ok' } });
    await waitFor(() => tracked.client.synced, 5000, 'first ack');
    editor.dispatch({ changes: { from: 2, insert: 'x'.repeat(20) } });
    await waitFor(() => tracked.client.synced, 5000, 'refusal');
    expect(tracked.errors).toContain('too_large');
    expect(editor.state.doc.toString()).toBe('ok');
  });
});
