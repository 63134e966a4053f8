/**
 * What changed between two samples, in words: channels that restarted, workers replaced,
 * channels that came and went, the backplane going down or up. Newest first, the last 30.
 */
import type { StatusChannel, StatusSample } from '../../server/status_types.ts';

const MAX_EVENTS = 30;

export type EventKind = 'restart' | 'worker' | 'channel' | 'backplane' | 'fault' | 'problem';

function channelsOf(sample: StatusSample): Map<string, StatusChannel> {
  const channels = new Map<string, StatusChannel>();
  for (const worker of sample.workers) for (const channel of worker.channels) channels.set(channel.id, channel);
  return channels;
}

export class EventLog {
  readonly #list: HTMLElement;

  constructor(list: HTMLElement) {
    this.#list = list;
  }

  add(kind: EventKind, text: string): void {
    const item = document.createElement('li');
    item.className = `event ev-${kind}`;
    item.dataset.kind = kind;
    const time = document.createElement('time');
    time.textContent = new Date().toLocaleTimeString([], { hour12: false });
    const words = document.createElement('span');
    words.textContent = text;
    item.append(time, words);
    this.#list.prepend(item);
    while (this.#list.children.length > MAX_EVENTS) this.#list.lastElementChild?.remove();
  }

  compare(before: StatusSample | null, after: StatusSample): void {
    if (!before) return;
    const old = channelsOf(before);
    const now = channelsOf(after);
    for (const [id, channel] of now) {
      const previous = old.get(id);
      if (!previous) this.add('channel', channel.thread < 0 ? `channel ${id} starting` : `channel ${id} started on ${threadName(channel.thread)}`);
      else if (channel.restarts > previous.restarts) this.add('restart', `channel ${id} restarted (${channel.restarts} so far), now on ${threadName(channel.thread)}; its ${plural(channel.members, 'client')} got resync`);
    }
    for (const id of old.keys()) if (!now.has(id)) this.add('channel', `channel ${id} stopped (no one left)`);
    if (after.workerReplacements > before.workerReplacements) {
      const gone = before.workers.filter((worker) => worker.thread > 0 && !after.workers.some((candidate) => candidate.thread === worker.thread));
      const names = gone.map((worker) => `${threadName(worker.thread)} (${plural(worker.channels.length, 'channel')})`).join(', ');
      this.add('worker', `worker replaced${names ? `: ${names}` : ''}; its channels restart on a fresh worker`);
    }
    if (after.backplane.state !== before.backplane.state) this.add('backplane', `backplane ${after.backplane.kind} ${after.backplane.state}`);
  }
}

export function threadName(thread: number): string {
  if (thread === 0) return 'the main thread';
  if (thread < 0) return 'no worker yet';
  return `worker ${thread}`;
}

export function plural(count: number, word: string): string {
  return `${count} ${word}${count === 1 ? '' : 's'}`;
}
