/**
 * What the server did since the status page last looked: commit and fan-out latency samples,
 * commits per codespace, and each worker's event-loop lag. Fed by the metrics hooks only while
 * a status page is open (`enabled`), drained once a second by the status feed, and bounded
 * either way: a busy server with nobody watching pays one boolean check per report.
 */
import type { ChannelStats } from '../actors/envelopes.ts';

/** Samples kept between two drains; beyond, the newest replace random older ones. */
const MAX_SAMPLES = 4_000;
const MAX_SAMPLES_PER_CODESPACE = 500;

export interface CodespaceActivity {
  commits: number;
  commitS: number[];
}

export interface LiveTake {
  commitS: number[];
  fanOutS: number[];
  codespaces: Map<string, CodespaceActivity>;
  /** The latest lag each worker thread reported, in seconds. */
  workerLagS: Map<number, number>;
}

function keep(samples: number[], value: number, max: number): void {
  if (samples.length < max) samples.push(value);
  else samples[Math.floor(Math.random() * max)] = value;
}

export class LiveWindow {
  enabled = false;
  #commitS: number[] = [];
  #fanOutS: number[] = [];
  #codespaces = new Map<string, CodespaceActivity>();
  readonly #workerLagS = new Map<number, number>();

  channelStats(thread: number, stats: ChannelStats, codespace: string): void {
    if (!this.enabled) return;
    let activity = this.#codespaces.get(codespace);
    if (!activity) this.#codespaces.set(codespace, (activity = { commits: 0, commitS: [] }));
    activity.commits += stats.commitS.length;
    for (const seconds of stats.commitS) {
      keep(this.#commitS, seconds, MAX_SAMPLES);
      keep(activity.commitS, seconds, MAX_SAMPLES_PER_CODESPACE);
    }
    if (thread > 0) this.#workerLagS.set(thread, stats.lagS);
  }

  threadLag(thread: number, lagS: number): void {
    if (this.enabled) this.#workerLagS.set(thread, lagS);
  }

  fanOut(seconds: number): void {
    if (this.enabled) keep(this.#fanOutS, seconds, MAX_SAMPLES);
  }

  /** Everything since the last take; `liveThreads` prunes the lag of workers that are gone. */
  take(liveThreads: ReadonlySet<number>): LiveTake {
    for (const thread of this.#workerLagS.keys()) if (!liveThreads.has(thread)) this.#workerLagS.delete(thread);
    const taken: LiveTake = { commitS: this.#commitS, fanOutS: this.#fanOutS, codespaces: this.#codespaces, workerLagS: new Map(this.#workerLagS) };
    this.#commitS = [];
    this.#fanOutS = [];
    this.#codespaces = new Map();
    return taken;
  }
}
