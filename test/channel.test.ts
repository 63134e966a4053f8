/**
 * The Channel actor driven in-process, with no thread and no socket (STYLE.md: every actor has
 * a test of its own): its memory budget, resumes by epoch, and presence after a resync.
 */
import { describe, expect, it } from 'vitest';
import { Channel, type ChannelMessage } from '../src/actors/channel.ts';
import { Mailbox } from '../src/actors/mailbox.ts';
import type { ChannelOutbound } from '../src/actors/envelopes.ts';
import { MemoryBackplane } from '../src/backplane/memory_backplane.ts';
import type { Backplane } from '../src/backplane/backplane.ts';
import { TextDoc } from '../src/doc/text_doc.ts';
import { decodeServerFrame } from '../src/protocol/codec.ts';

const SETTINGS = { history: 100, historyBytes: 0, maxDocLength: 10_000, snapshotIntervalMs: 250, backplane: { kind: 'memory' as const } };

function channelWith(overBudget: () => boolean = () => false) {
  const backplane = new MemoryBackplane({ history: 100 });
  const sent: ChannelOutbound[] = [];
  const doc = new TextDoc(backplane.loadNow('cs'), SETTINGS);
  const channel = new Channel({ codespace: 'cs', doc, backplane, send: (envelope) => sent.push(envelope), settings: SETTINGS, snapshotEvery: 50, touchEveryMs: 60_000, overBudget });
  const to = (session: string) => sent.filter((e): e is Extract<ChannelOutbound, { type: 'to' }> => e.type === 'to' && e.session === session).map((e) => decodeServerFrame(e.data, 'json') as any);
  return { channel, sent, to, epoch: doc.epoch };
}

const join = (session: string, extra: Record<string, unknown> = {}) => ({ type: 'join' as const, session, mode: 'edit' as const, codec: 'json' as const, author: `c:${session}`, ...extra });

describe('Channel', () => {
  describe('memory budget', () => {
    it('refuses new joins (1013 by main) and edits (unavailable) while its thread is short of memory, and takes them again after', async () => {
      let short = false;
      const { channel, sent, to } = channelWith(() => short);
      await channel.handle(join('a'));
      short = true;
      await channel.handle(join('b'));
      expect(sent.at(-1)).toEqual({ type: 'refuse_join', session: 'b' });
      await channel.handle({ type: 'client', session: 'a', msg: { operation: 'insert_value', changes: [{ from: 0, to: 0, insert: 'x' }], ref: 'r1' } });
      expect(to('a').at(-1)).toMatchObject({ operation: 'error', data: { code: 'unavailable', ref: 'r1' } });
      expect(channel.version).toBe(0);
      short = false;
      await channel.handle({ type: 'client', session: 'a', msg: { operation: 'insert_value', changes: [{ from: 0, to: 0, insert: 'x' }], ref: 'r1' } });
      expect(to('a').at(-1)).toMatchObject({ operation: 'ack', version: 1, ref: 'r1' });
    });
  });

  describe('join', () => {
    it('serves a resume from its history only when the epoch is its own', async () => {
      const { channel, to, epoch } = channelWith();
      await channel.handle(join('a'));
      await channel.handle({ type: 'client', session: 'a', msg: { operation: 'insert_value', changes: [{ from: 0, to: 0, insert: 'x' }], version: 0 } });
      await channel.handle(join('b', { resume: 0, epoch }));
      expect(to('b')[0].data).toMatchObject({ resumed: true, version: 1, epoch });
      await channel.handle(join('c', { resume: 0, epoch: 'another-history' }));
      expect(to('c')[0].data).toMatchObject({ code: 'x', version: 1, epoch });
      expect(to('c')[0].data.resumed).toBeUndefined();
    });

    it('after a restart, tells nobody that members who come back with resync joined', async () => {
      const { channel, sent, to } = channelWith();
      await channel.handle(join('a', { resync: true }));
      await channel.handle(join('b', { resync: true }));
      expect(sent.filter((e) => e.type === 'broadcast')).toEqual([]);
      expect(to('b')[0]).toMatchObject({ operation: 'resync', data: { peers: [{ id: 'a', mode: 'edit' }] } });
      await channel.handle(join('c'));
      expect(sent.filter((e) => e.type === 'broadcast')).toHaveLength(1);
    });
  });

  describe('reconcile', () => {
    /** A store that can restart empty, and fail its next loads (its command connection not back yet). */
    function restartableStore() {
      const state = { store: new MemoryBackplane({ history: 100 }), failLoads: 0 };
      const backplane: Backplane = {
        load: async (codespace) => {
          if (state.failLoads > 0) {
            state.failLoads--;
            throw new Error('connection is not ready');
          }
          return state.store.load(codespace);
        },
        commit: (codespace, entry, epoch) => state.store.commit(codespace, entry, epoch),
        saveSnapshot: (codespace, text, version, epoch) => state.store.saveSnapshot(codespace, text, version, epoch),
        readLog: (codespace, version) => state.store.readLog(codespace, version),
        restore: (codespace, doc) => state.store.restore(codespace, doc),
        subscribe: async () => {},
        unsubscribe: () => {},
        publishSelection: () => {},
        touch: async () => {},
      };
      return { state, backplane };
    }

    it('writes its history back into a store that came back empty, trying again at the ticks while the store cannot be read', async () => {
      const { state, backplane } = restartableStore();
      const doc = new TextDoc(state.store.loadNow('cs'), SETTINGS);
      const channel = new Channel({ codespace: 'cs', doc, backplane, send: () => {}, settings: SETTINGS, snapshotEvery: 50, touchEveryMs: 60_000 });
      await channel.handle(join('a'));
      for (const [version, insert] of [[0, 'x'], [1, 'y']] as const) {
        await channel.handle({ type: 'client', session: 'a', msg: { operation: 'insert_value', changes: [{ from: 0, to: 0, insert }], version } });
      }
      state.store = new MemoryBackplane({ history: 100 }); // restarted empty
      state.failLoads = 2;
      await channel.handle({ type: 'remote', event: { kind: 'reconnected' } });
      expect(state.store.size).toBe(0);
      expect(channel.advanceClock(1_000)).toBe(true);
      await channel.handle({ type: 'tick', now: 1_000 }); // still failing
      await channel.handle({ type: 'tick', now: 2_000 });
      expect(state.store.loadNow('cs')).toMatchObject({ version: 2, text: 'yx', epoch: doc.epoch });
    });
  });

  describe('edits queued behind one another (issue 15)', () => {
    /** A memory store that also commits many at once, counting how many each time; `failNext`: the next one is unavailable. */
    function storeCommittingMany() {
      const store = new MemoryBackplane({ history: 100 });
      const state = { together: [] as number[], failNext: false };
      const backplane: Backplane = {
        load: (codespace) => store.load(codespace),
        commit: (codespace, entry, epoch) => store.commit(codespace, entry, epoch),
        commitMany: async (codespace, entries, epoch) => {
          state.together.push(entries.length);
          if (state.failNext) {
            state.failNext = false;
            return { ok: false, reason: 'unavailable', message: 'the store is away' };
          }
          for (const entry of entries) {
            const result = store.commitNow(codespace, entry, epoch);
            if (!result.ok) return result;
          }
          return { ok: true };
        },
        saveSnapshot: (codespace, text, version, epoch) => store.saveSnapshot(codespace, text, version, epoch),
        readLog: (codespace, version) => store.readLog(codespace, version),
        restore: (codespace, doc) => store.restore(codespace, doc),
        subscribe: async () => {},
        unsubscribe: () => {},
        publishSelection: () => {},
        touch: async () => {},
      };
      return { store, backplane, state };
    }

    const edit = (session: string, ref: string, version: number, insert: string, extra: Record<string, unknown> = {}): ChannelMessage => ({
      type: 'client',
      session,
      msg: { operation: 'insert_value', changes: [{ from: 0, to: 0, insert }], version, ref, ...extra },
    });

    /** Everything the channel said, decoded (epochs left out: each store makes its own), when `messages` were all queued at once. */
    async function runQueued(messages: ChannelMessage[], together: boolean, failFirst = false) {
      const { store, backplane, state } = storeCommittingMany();
      state.failNext = failFirst;
      const sent: ChannelOutbound[] = [];
      const doc = new TextDoc(await store.load('cs'), SETTINGS);
      let mailbox: Mailbox<ChannelMessage> | null = null;
      const channel = new Channel({
        codespace: 'cs', doc, backplane, send: (envelope) => sent.push(envelope), settings: SETTINGS, snapshotEvery: 50, touchEveryMs: 60_000,
        takeQueued: together ? (match, max) => mailbox!.takeWhile(match, max) : undefined,
      });
      mailbox = new Mailbox<ChannelMessage>((message) => channel.handle(message), (error) => {
        throw error;
      });
      for (const message of messages) mailbox.post(message);
      for (let seen = -1; seen !== sent.length; ) {
        seen = sent.length;
        await new Promise((resolve) => setTimeout(resolve, 30));
      }
      type Said = { to?: string; except?: string | null; message: any };
      const said = sent.flatMap((envelope): Said[] => {
        if (envelope.type === 'to') {
          const message = decodeServerFrame(envelope.data, 'json') as any;
          if (message.data?.epoch) delete message.data.epoch;
          return [{ to: envelope.session, message }];
        }
        if (envelope.type === 'broadcast') return [{ except: envelope.except, message: decodeServerFrame(envelope.json!, 'json') }];
        return [];
      });
      return { said, text: channel.text, together: state.together, stored: store.loadNow('cs') };
    }

    const messages: ChannelMessage[] = [
      join('a'),
      join('b'),
      { ...join('v'), mode: 'view_only' },
      edit('a', 'r1', 0, 'a'),
      edit('a', 'r2', 0, 'b'),
      edit('b', 'r3', 0, 'c'),
      edit('a', 'r2', 0, 'b'), // a resend: acked with its first version, not applied twice
      edit('v', 'r5', 0, 'x'), // view_only: forbidden
      edit('a', 'r6', 0, 'y', { doc_length: 7 }), // not the length at version 0: invalid_change
      edit('b', 'r7', 1, 'd'),
      { type: 'client', session: 'b', msg: { operation: 'create_selection', selections: [{ anchor: 0, head: 1 }] } },
      edit('a', 'r8', 0, 'e'),
    ];

    it('are committed together in one commitMany, and every client hears what it would have heard one by one', async () => {
      const oneByOne = await runQueued(messages, false);
      const together = await runQueued(messages, true);
      expect(oneByOne.together).toEqual([]);
      // r1 starts at once, alone (nothing is queued yet); r2, r3 and r7 wait behind it and go in one
      // write with the resend and the refusals answered in their places; the selection ends the
      // run, so r8 goes on its own.
      expect(together.together).toEqual([3]);
      expect(together.said).toEqual(oneByOne.said);
      expect(together.text).toBe(oneByOne.text);
      expect(together.stored.text).toBe(together.text);
      expect(together.stored.version).toBe(5);
      const acks = together.said.filter((each) => each.message.operation === 'ack').map((each) => [each.to, each.message.ref, each.message.version]);
      expect(acks).toEqual([['a', 'r1', 1], ['a', 'r2', 2], ['b', 'r3', 3], ['a', 'r2', 2], ['b', 'r7', 4], ['a', 'r8', 5]]);
    });

    it('when the store does not take them together, each edit goes the one-by-one way, and nothing is lost', async () => {
      const oneByOne = await runQueued(messages, false);
      const retried = await runQueued(messages, true, true);
      expect(retried.together).toEqual([3]);
      expect(retried.said).toEqual(oneByOne.said);
      expect(retried.stored).toMatchObject({ version: 5, text: oneByOne.text });
    });
  });
});
