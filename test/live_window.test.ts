import { describe, expect, it } from 'vitest';
import { LiveWindow } from '../src/observability/live_window.ts';

const stats = (commitS: number[], lagS = 0.002) => ({ out: {}, errors: {}, commitS, lagS });

describe('LiveWindow', () => {
  it('collects nothing while no status page is open', () => {
    const window = new LiveWindow();
    window.channelStats(3, stats([0.001]), 'tmp-a');
    window.fanOut(0.002);
    const taken = window.take(new Set([3]));
    expect(taken.commitS).toEqual([]);
    expect(taken.fanOutS).toEqual([]);
    expect(taken.codespaces.size).toBe(0);
    expect(taken.workerLagS.size).toBe(0);
  });

  it('gathers samples per codespace and lag per worker until taken, then starts over', () => {
    const window = new LiveWindow();
    window.enabled = true;
    window.channelStats(3, stats([0.001, 0.003]), 'tmp-a');
    window.channelStats(4, stats([0.002], 0.05), 'tmp-b');
    window.fanOut(0.004);
    const taken = window.take(new Set([3, 4]));
    expect(taken.commitS).toEqual([0.001, 0.003, 0.002]);
    expect(taken.fanOutS).toEqual([0.004]);
    expect(taken.codespaces.get('tmp-a')).toEqual({ commits: 2, commitS: [0.001, 0.003] });
    expect(taken.workerLagS.get(4)).toBe(0.05);
    const next = window.take(new Set([3]));
    expect(next.commitS).toEqual([]);
    expect(next.codespaces.size).toBe(0);
    // Worker 4 is gone: its lag is forgotten; worker 3's last report stays.
    expect([...next.workerLagS.keys()]).toEqual([3]);
  });

  it('keeps a bounded number of samples however many arrive', () => {
    const window = new LiveWindow();
    window.enabled = true;
    for (let i = 0; i < 100; i++) window.channelStats(3, stats(new Array(100).fill(0.001)), 'tmp-a');
    const taken = window.take(new Set([3]));
    expect(taken.commitS.length).toBeLessThanOrEqual(4000);
    expect(taken.codespaces.get('tmp-a')!.commits).toBe(10_000);
    expect(taken.codespaces.get('tmp-a')!.commitS.length).toBeLessThanOrEqual(500);
  });
});
