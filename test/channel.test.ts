/**
 * The Channel actor driven in-process, with no thread and no socket (STYLE.md: every actor has
 * a test of its own): its memory budget, resumes by epoch, and presence after a resync.
 */
import { describe, expect, it } from 'vitest';
import { Channel } from '../src/actors/channel.ts';
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
});

