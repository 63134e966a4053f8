/** ARCHITECTURE.md, Embedding: the hub and its channel actors with no socket at all. */
import { EditorState, type TransactionSpec } from '@codemirror/state';
import { afterEach, describe, expect, it } from 'vitest';
import { CloseCode, connect, connectInProcess, createHub, inProcessTransport, syncEditor, type ClientLink, type ClientTransport, type CodespaceClient, type Hub, type ServerMessage } from '../src/mod.ts';
import { waitFor } from './support/ws_client.ts';

let hub: Hub | null = null;

afterEach(async () => {
  await hub?.close();
  hub = null;
});

function collector() {
  const messages: ServerMessage[] = [];
  const waiters: (() => void)[] = [];
  return {
    messages,
    push(message: ServerMessage) {
      messages.push(message);
      for (const wake of waiters.splice(0)) wake();
    },
    async until(match: (m: ServerMessage) => boolean): Promise<ServerMessage> {
      const deadline = Date.now() + 5000;
      for (;;) {
        const found = messages.find(match);
        if (found) return found;
        if (Date.now() > deadline) throw new Error(`timed out; got ${JSON.stringify(messages)}`);
        await new Promise<void>((resolve) => {
          waiters.push(resolve);
          setTimeout(resolve, 50);
        });
      }
    },
  };
}

describe('embedding', () => {
  for (const workers of [0, 1]) {
    it(`two in-process connections edit one codespace (workers: ${workers})`, async () => {
      hub = createHub({ workers, channelGraceMs: 100 });
      const a = await connectInProcess(hub, 'tmp-desktop');
      const b = await connectInProcess(hub, 'tmp-desktop');
      const fromA = collector();
      const fromB = collector();
      a.onMessage(fromA.push);
      b.onMessage(fromB.push);
      const connectedB = await fromB.until((m) => m.operation === 'connected');
      expect(connectedB).toMatchObject({ operation: 'connected', data: { codespace: 'tmp-desktop', mode: 'edit' } });
      a.send({ operation: 'insert_value', changes: [{ from: 0, to: 0, insert: 'desk' }], version: 0, ref: 'a1' });
      expect(await fromA.until((m) => m.operation === 'ack')).toEqual({ operation: 'ack', version: 1, ref: 'a1' });
      expect(await fromB.until((m) => m.operation === 'insert_value')).toMatchObject({ version: 1, sender: a.id, changes: [{ from: 0, to: 0, insert: 'desk' }] });
      b.send({ operation: 'create_selection', selections: [{ anchor: 1, head: 2 }] });
      expect(await fromA.until((m) => m.operation === 'create_selection')).toMatchObject({ sender: b.id, version: 1, selections: [{ anchor: 1, head: 2 }] });
      b.send({ operation: 'nope' });
      expect(await fromB.until((m) => m.operation === 'error')).toMatchObject({ data: { code: 'unknown_operation' } });
      b.close();
      await fromA.until((m) => m.operation === 'peer_left');
      a.close();
    });
  }

  it('refuses a bad token with its close code', async () => {
    hub = createHub({ allowTmp: false });
    const closes: number[] = [];
    const conn = await connectInProcess(hub, 'tmp-x');
    conn.onClose((code) => closes.push(code));
    expect(closes).toEqual([4401]);
  });
});

describe('the SDK over an in-process transport', () => {
  const clients: CodespaceClient[] = [];
  afterEach(() => {
    for (const client of clients.splice(0)) client.close();
  });

  function open(token: string): CodespaceClient {
    const client = connect(inProcessTransport(hub!, token), { minReconnectDelayMs: 10, maxReconnectDelayMs: 50, resendDelayMs: 20 });
    clients.push(client);
    return client;
  }

  for (const workers of [0, 1]) {
    it(`rebases concurrent edits and converges, with no socket (workers: ${workers})`, async () => {
      hub = createHub({ workers, channelGraceMs: 100 });
      const [a, b] = [open('tmp-sdk-in-process'), open('tmp-sdk-in-process')];
      await waitFor(() => a.state === 'open' && b.state === 'open', 5000, 'both open');
      for (let n = 0; n < 20; n++) {
        a.applyLocal([{ from: 0, to: 0, insert: `a${n};` }]);
        b.applyLocal([{ from: b.text.length, to: b.text.length, insert: `b${n};` }]);
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
      await waitFor(() => a.synced && b.synced && a.version === b.version && a.text === b.text, 10_000, 'converged');
      for (let n = 0; n < 20; n++) {
        expect(a.text).toContain(`a${n};`);
        expect(a.text).toContain(`b${n};`);
      }
      const typed = Array.from({ length: 20 }, (_, n) => `a${n};b${n};`).join('');
      expect(a.text.length).toBe(typed.length);
    });
  }

  it('resumes after the hub drops it, resending what was not acked, and keeps every edit', async () => {
    hub = createHub({ channelGraceMs: 100 });
    const [a, b] = [open('tmp-sdk-resume'), open('tmp-sdk-resume')];
    await waitFor(() => a.state === 'open' && b.state === 'open', 5000, 'both open');
    a.applyLocal([{ from: 0, to: 0, insert: 'before;' }]);
    await waitFor(() => b.text === 'before;', 5000, 'first edit');
    const ref = hub.supervisor.channel('tmp-sdk-resume')!;
    for (const member of [...ref.members()]) if (member.id === a.id) member.closeWith(CloseCode.shuttingDown);
    a.applyLocal([{ from: a.text.length, to: a.text.length, insert: 'away;' }]);
    await waitFor(() => a.reconnects >= 1 && a.synced && b.text === 'before;away;', 5000, 'the edit made while away arrived');
    expect(a.text).toBe('before;away;');
  });

  it('sends its client key in-process too: a change resent after a lost ack is applied once', async () => {
    hub = createHub({ channelGraceMs: 100 });
    // The first ack never arrives: the link drops right after the commit, as a socket might.
    let dropped = false;
    const inner = inProcessTransport(hub, 'tmp-sdk-lost-ack');
    const losingFirstAck: ClientTransport = {
      decode: inner.decode,
      open(query, events) {
        const link: ClientLink = inner.open(query, {
          message(message) {
            if (!dropped && (message as { operation?: string }).operation === 'ack') {
              dropped = true;
              link.close(1000, 'lost');
              return events.close(1006, 'connection lost');
            }
            events.message(message);
          },
          close: events.close,
        });
        return link;
      },
    };
    const client = connect(losingFirstAck, { minReconnectDelayMs: 10, maxReconnectDelayMs: 50 });
    clients.push(client);
    await waitFor(() => client.state === 'open', 5000, 'open');
    client.applyLocal([{ from: 0, to: 0, insert: 'once;' }]);
    await waitFor(() => dropped && client.reconnects >= 1 && client.synced, 5000, 'acked after the reconnect');
    const observer = open('tmp-sdk-lost-ack');
    await waitFor(() => observer.state === 'open', 5000, 'observer open');
    expect(observer.text).toBe('once;');
    expect(observer.version).toBe(1);
    expect(client.text).toBe('once;');
  });

  it('ends with an error event and no more connections when the hub refuses the token', async () => {
    hub = createHub({ allowTmp: false });
    const client = open('tmp-refused');
    const error = await new Promise<{ code: string; message: string }>((resolve) => client.on('error', resolve));
    expect(error).toMatchObject({ code: 'closed', message: expect.stringContaining('4401') });
    expect(client.state).toBe('closed');
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(hub.connectionCount).toBe(0);
  });

  it('drives the CodeMirror binding with no socket', async () => {
    hub = createHub({ channelGraceMs: 100 });
    const client = open('tmp-sdk-editor');
    const other = open('tmp-sdk-editor');
    await waitFor(() => client.state === 'open' && other.state === 'open', 5000, 'both open');
    let state = EditorState.create({ doc: client.text });
    const view = {
      get state() {
        return state;
      },
      dispatch(...specs: TransactionSpec[]) {
        const transaction = state.update(...specs);
        state = transaction.state;
        sync.update([transaction]);
      },
    };
    const sync = syncEditor(client, view);
    view.dispatch({ changes: { from: 0, insert: 'typed' } });
    other.applyLocal([{ from: 0, to: 0, insert: '>' }]);
    await waitFor(() => client.synced && other.synced && other.text === client.text && state.doc.toString() === client.text, 5000, 'editor, client and other client agree');
    expect(state.doc.toString()).toMatch(/^(>typed|typed>)$/);
    sync.destroy();
  });
});
