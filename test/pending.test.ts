/**
 * Convergence of the rebase logic alone: a TextDoc as the server, PendingDoc clients, messages
 * delivered in random interleavings (random delays), every client ends with the server's text.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PendingDoc } from '../src/client/pending.ts';
import { TextDoc, type LogEntry } from '../src/doc/text_doc.ts';
import type { InsertValueRequest } from '../src/protocol/messages.ts';
import { applySpecs, crowdedEditShape, editShape, placeEdit } from './support/random_edits.ts';

type ToClient = { kind: 'remote'; entry: LogEntry } | { kind: 'ack'; version: number; ref?: string };

interface SimClient {
  id: string;
  doc: PendingDoc;
  up: InsertValueRequest[];
  down: ToClient[];
  versionsSeen: number[];
  /** A plain string kept the way an editor would keep it. */
  mirror: string;
}

const action = fc.oneof(
  fc.record({ kind: fc.constant('edit' as const), client: fc.nat(), shape: fc.oneof(editShape, crowdedEditShape) }),
  fc.record({ kind: fc.constant('deliverUp' as const), client: fc.nat() }),
  fc.record({ kind: fc.constant('deliverDown' as const), client: fc.nat() }),
);

function simulate(initial: string, clientCount: number, actions: Array<typeof action extends fc.Arbitrary<infer T> ? T : never>) {
  const server = new TextDoc({ text: initial, version: 0, log: [], epoch: 'e' }, { history: 10_000, maxDocLength: 1_000_000 });
  const clients: SimClient[] = Array.from({ length: clientCount }, (_, i) => ({
    id: `c${i}`, doc: new PendingDoc(initial, 0, `c${i}`), up: [], down: [], versionsSeen: [], mirror: initial,
  }));
  const serverReceive = (from: SimClient, request: InsertValueRequest): void => {
    const result = server.prepare({ changes: request.changes, docLength: request.doc_length, version: request.version, ref: request.ref }, from.id);
    if (result.kind !== 'ready') throw new Error(`server refused ${JSON.stringify(result)}`);
    server.install(result.entry, result.set);
    for (const client of clients) {
      client.down.push(client === from ? { kind: 'ack', version: result.entry.version, ref: request.ref } : { kind: 'remote', entry: result.entry });
    }
  };
  const clientReceive = (client: SimClient, message: ToClient): void => {
    if (message.kind === 'ack') client.doc.receiveAck(message.version, message.ref);
    else client.mirror = applySpecs(client.mirror, client.doc.receiveRemote(message.entry.version, message.entry.changes, message.entry.docLength));
    // An editor that applies only its own edits and the returned local changes shows the same text.
    if (client.mirror !== client.doc.text) throw new Error(`editor mirror ${JSON.stringify(client.mirror)} is not the text ${JSON.stringify(client.doc.text)}`);
    client.versionsSeen.push(client.doc.version);
    const next = client.doc.takeRequest();
    if (next) client.up.push(next);
  };
  for (const step of actions) {
    const client = clients[step.client % clientCount];
    if (step.kind === 'edit') {
      const edit = placeEdit(client.doc.text, step.shape);
      client.doc.applyLocal(edit);
      client.mirror = applySpecs(client.mirror, edit);
      const request = client.doc.takeRequest();
      if (request) client.up.push(request);
    } else if (step.kind === 'deliverUp' && client.up.length > 0) {
      serverReceive(client, client.up.shift()!);
    } else if (step.kind === 'deliverDown' && client.down.length > 0) {
      clientReceive(client, client.down.shift()!);
    }
  }
  // Drain: deliver everything still on the wire until quiet.
  for (let busy = true; busy;) {
    busy = false;
    for (const client of clients) {
      while (client.up.length > 0) { serverReceive(client, client.up.shift()!); busy = true; }
      while (client.down.length > 0) { clientReceive(client, client.down.shift()!); busy = true; }
    }
  }
  return { server, clients };
}

/** Both edits of `a` buffered before it sends; `b` commits first, then `a`. */
function simulateScript(initial: string, edits: [string, { from: number; to: number; insert: string }[]][]) {
  const server = new TextDoc({ text: initial, version: 0, log: [], epoch: 'e' }, { history: 100, maxDocLength: 1000 });
  const clients = ['a', 'b'].map((id) => ({ id, doc: new PendingDoc(initial, 0, id) }));
  for (const [id, changes] of edits) clients.find((c) => c.id === id)!.doc.applyLocal(changes);
  const requests = clients.map((c) => c.doc.takeRequest()!);
  for (const index of [1, 0]) {
    const request = requests[index];
    const result = server.prepare({ changes: request.changes, docLength: request.doc_length, version: request.version, ref: request.ref }, clients[index].id);
    if (result.kind !== 'ready') throw new Error(`server refused ${JSON.stringify(result)}`);
    server.install(result.entry, result.set);
    clients[index].doc.receiveAck(result.entry.version, request.ref);
    clients[1 - index].doc.receiveRemote(result.entry.version, result.entry.changes, result.entry.docLength);
  }
  return { server, clients };
}

describe('PendingDoc', () => {
  it('converges with the server for random concurrent edits delivered in random order', () => {
    fc.assert(
      fc.property(
        fc.string({ maxLength: 20 }).filter((s) => s.isWellFormed()),
        fc.integer({ min: 2, max: 4 }),
        fc.array(action, { maxLength: 120 }),
        (initial, clientCount, actions) => {
          const { server, clients } = simulate(initial, clientCount, actions);
          for (const client of clients) {
            expect(client.doc.hasPending).toBe(false);
            expect(client.doc.text).toBe(server.toString());
            expect(client.doc.version).toBe(server.version);
            // Gapless: every version from 1 to the last, once each, in order.
            expect(client.versionsSeen).toEqual(Array.from({ length: server.version }, (_, i) => i + 1));
          }
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('converges when a buffered deletion and insertion at one spot meet a remote insertion there', () => {
    // A composed local change keeps "delete 3..5" and "insert X at 3" apart; the server rebuilds
    // it from the wire as one replacement, and a rebase over the two structures differs.
    const { server, clients } = simulateScript('abcdefgh', [
      ['a', [{ from: 3, to: 5, insert: '' }]], ['a', [{ from: 3, to: 3, insert: 'X' }]], ['b', [{ from: 4, to: 4, insert: 'Y' }]],
    ]);
    for (const client of clients) expect(client.doc.text).toBe(server.toString());
  });

  it('refuses a remote change out of order', () => {
    const doc = new PendingDoc('', 0, 'x');
    expect(() => doc.receiveRemote(2, [], 0)).toThrow(RangeError);
  });
});
