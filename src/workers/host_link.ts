/**
 * This thread's end of one supervisor's thread link, shared by the channels it runs here: made
 * for the first of them (and offered on its port), closed when the last one ends. The thread
 * itself speaks on it as spawn 0 (HOST_SPAWN): it answers the supervisor's heartbeat once for
 * all its channels, with the stats of those that did something, and it ticks the channels that
 * have something to do from one timer. Per-channel heartbeats and timers cost every channel,
 * idle or not, a message or a wake-up several times a second (issue 15); these follow activity.
 */
import { threadId } from 'node:worker_threads';
import type { ChannelInbound, ChannelOutbound, ChannelStats } from '../actors/envelopes.ts';
import { HOST_SPAWN } from '../actors/envelopes.ts';
import { PortLink, ThreadLink } from '../actors/port_link.ts';

/** Where a channel's envelopes from its thread's link go: held until its own port says `switch`. */
export interface Route {
  switched: boolean;
  early: ChannelInbound[];
  receive: (envelope: ChannelInbound) => void;
  /** Set once the channel runs: its stats since the last heartbeat, null when it did nothing. */
  stats?: () => ChannelStats | null;
  /** Set once the channel runs: posts it a tick if it has something to do at `now`. */
  tick?: (now: number) => void;
}

export class HostLink {
  readonly link: ThreadLink<ChannelInbound, ChannelOutbound>;
  readonly routes = new Map<number, Route>();
  readonly #ticker: ReturnType<typeof setInterval>;
  readonly #lagS: () => number;

  constructor(offerOn: PortLink<ChannelInbound, ChannelOutbound>, tickMs: number, lagS: () => number) {
    const { port1, port2 } = new MessageChannel();
    this.#lagS = lagS;
    this.link = new ThreadLink<ChannelInbound, ChannelOutbound>(port1, (spawn, envelope) => {
      if (spawn === HOST_SPAWN) return this.#hostReceive(envelope);
      const route = this.routes.get(spawn);
      if (!route) return;
      if (route.switched) route.receive(envelope);
      else route.early.push(envelope);
    });
    offerOn.offer(port2);
    this.#ticker = setInterval(this.#tickOnInterval, tickMs);
    this.#ticker.unref?.();
  }

  close(): void {
    clearInterval(this.#ticker);
    this.link.close();
  }

  /** A heartbeat asks whether this thread is alive: answered here, whatever its channels are doing. */
  #hostReceive(envelope: ChannelInbound): void {
    if (envelope.type !== 'heartbeat') return;
    const channels: [number, ChannelStats][] = [];
    for (const [spawn, route] of this.routes) {
      const stats = route.stats?.();
      if (stats) channels.push([spawn, stats]);
    }
    this.link.send(HOST_SPAWN, { type: 'thread_beat', seq: envelope.seq, thread: threadId, lagS: this.#lagS(), channels });
  }

  readonly #tickOnInterval = (): void => {
    const now = Date.now();
    for (const route of this.routes.values()) route.tick?.(now);
  };
}

const hostLinks = new Map<string, HostLink>();

/** The link of `supervisor` on this thread, made (and offered on `offerOn`) for its first channel here. */
export function hostLinkFor(supervisor: string, offerOn: PortLink<ChannelInbound, ChannelOutbound>, tickMs: number, lagS: () => number): HostLink {
  let host = hostLinks.get(supervisor);
  if (!host || host.link.closed) {
    host = new HostLink(offerOn, tickMs, lagS);
    hostLinks.set(supervisor, host);
  }
  return host;
}

/** The channel of `spawn` ended: the link goes with the last one. */
export function leaveHostLink(supervisor: string, host: HostLink, spawn: number): void {
  host.routes.delete(spawn);
  // What the channel said leaves before its task settles (a snapshot before the next load).
  if (host.routes.size > 0) return host.link.flush();
  host.close();
  if (hostLinks.get(supervisor) === host) hostLinks.delete(supervisor);
}
