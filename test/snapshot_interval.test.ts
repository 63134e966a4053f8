/**
 * SNAPSHOT_INTERVAL_MS (PROTOCOL.md §6): the stored text (`code`, which the SharePython API
 * serves) holds a commit at most that long after it, and is written only when the text changed.
 */
import { describe, expect, it } from 'vitest';
import { Channel } from '../src/actors/channel.ts';
import { MemoryBackplane } from '../src/backplane/memory_backplane.ts';
import { TextDoc } from '../src/doc/text_doc.ts';
import { defaultConfig } from '../src/config.ts';

class CountingBackplane extends MemoryBackplane {
  saves: { text: string; version: number }[] = [];
  override async saveSnapshot(codespace: string, text: string, version: number, epoch: string): Promise<void> {
    this.saves.push({ text, version });
    await super.saveSnapshot(codespace, text, version, epoch);
  }
}

describe('SNAPSHOT_INTERVAL_MS', () => {
  it('is 250 by default', () => {
    expect(defaultConfig().snapshotIntervalMs).toBe(250);
  });

  it('writes a commit within the interval, once, and nothing while the text stays as it is', async () => {
    const backplane = new CountingBackplane({ history: 100 });
    const channel = new Channel({
      codespace: 'snap',
      doc: new TextDoc(backplane.loadNow('snap'), { history: 100, maxDocLength: 1000 }),
      backplane,
      send: () => {},
      settings: { history: 100, maxDocLength: 1000, snapshotIntervalMs: 250, historyBytes: 0, backplane: { kind: 'memory' } },
      snapshotEvery: 1000,
      touchEveryMs: 1_000_000,
    });
    await channel.handle({ type: 'join', session: 's', mode: 'edit', codec: 'json', author: 'c:s' });
    for (let now = 0; now <= 1000; now += 100) await channel.handle({ type: 'tick', now });
    expect(backplane.saves).toEqual([]);
    await channel.handle({ type: 'client', session: 's', msg: { operation: 'insert_value', changes: [{ from: 0, to: 0, insert: 'x' }], version: 0 } });
    await channel.handle({ type: 'tick', now: 1100 });
    await channel.handle({ type: 'tick', now: 1200 });
    expect(backplane.saves).toEqual([]);
    await channel.handle({ type: 'tick', now: 1300 });
    expect(backplane.saves).toEqual([{ text: 'x', version: 1 }]);
    for (let now = 1400; now <= 3000; now += 100) await channel.handle({ type: 'tick', now });
    expect(backplane.saves).toHaveLength(1);
  });
});
