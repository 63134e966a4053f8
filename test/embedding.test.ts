/** ARCHITECTURE.md, Embedding: the hub and its channel actors with no socket at all. */
import { afterEach, describe, expect, it } from 'vitest';
import { connectInProcess, createHub, type Hub, type ServerMessage } from '../src/mod.ts';

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
