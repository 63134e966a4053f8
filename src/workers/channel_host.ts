/**
 * The piscina task entry: hosts one channel actor for its whole life. The task's promise settles
 * when the channel stops, so the pool's pending task is the supervisor's monitor; a crash is
 * reported over the port as a message, never thrown across threads (STYLE.md rule 9).
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { LAG_RESOLUTION_MS } from '../observability/loop_lag.ts';
import { isMainThread, threadId } from 'node:worker_threads';
import { Channel, type ChannelMessage } from '../actors/channel.ts';
import type { BackplaneSettings, ChannelInbound, ChannelOutbound, ChannelSettings, SpawnTask } from '../actors/envelopes.ts';
import { Mailbox } from '../actors/mailbox.ts';
import { PortLink } from '../actors/port_link.ts';
import { hostLinkFor, leaveHostLink, type Route } from './host_link.ts';
import type { Backplane, RemoteEvent } from '../backplane/backplane.ts';
import { fileBackplaneFor } from '../backplane/file_backplane.ts';
import { PortBackplane } from '../backplane/port_backplane.ts';
import { RedisBackplane } from '../backplane/redis_backplane.ts';
import { TextDoc } from '../doc/text_doc.ts';

import type { ChannelEnd } from '../actors/supervisor.ts';
import { describeError } from '../observability/describe_error.ts';
import { heapBudget } from './memory_budget.ts';

/** This thread's memory budget, shared by its channels. */
const overBudget = heapBudget();

/** One Redis backplane (two connections) per thread, shared by every channel it hosts. */
let sharedRedis: { key: string; backplane: RedisBackplane } | null = null;

function redisBackplaneFor(settings: Extract<BackplaneSettings, { kind: 'redis' }>, history: number): RedisBackplane {
  const key = JSON.stringify(settings);
  if (sharedRedis?.key !== key) {
    void sharedRedis?.backplane.close();
    sharedRedis = {
      key,
      backplane: new RedisBackplane({ url: settings.url, keyPrefix: settings.keyPrefix, ttlS: settings.ttlS, tmpTtlS: settings.tmpTtlS, history, timeoutMs: settings.timeoutMs }),
    };
  }
  return sharedRedis.backplane;
}

/** This worker thread's event-loop delay, shared by its channels; reset every 10 s. */
let loopDelay: IntervalHistogram | null = null;
/** The last percentile read, and when: every channel reports it with each heartbeat. */
let lastLag = { atMs: 0, seconds: 0 };

function threadLagS(): number {
  if (isMainThread) return 0; // in-process channels: main measures its own loop
  if (!loopDelay) {
    loopDelay = monitorEventLoopDelay({ resolution: LAG_RESOLUTION_MS });
    loopDelay.enable();
    const histogram = loopDelay;
    setInterval(() => histogram.reset(), 10_000).unref();
  }
  // Read once per heartbeat round, not once per channel (the percentile walk was 6.6 % of a
  // worker's CPU with 50 channels on it in the benchmark).
  const now = Date.now();
  if (now - lastLag.atMs >= 250) lastLag = { atMs: now, seconds: loopDelay.percentile(99) / 1e9 };
  return lastLag.seconds;
}

/**
 * The store a channel on this thread uses: main's memory over the link (`portBackplane`), this
 * thread's file environment, or this thread's Redis connections.
 */
function backplaneOf(settings: ChannelSettings, portBackplane: PortBackplane | null): Backplane {
  const backplane = settings.backplane;
  switch (backplane.kind) {
    case 'memory':
      return portBackplane!;
    case 'file':
      return fileBackplaneFor({ path: backplane.path, history: settings.history, ttlS: backplane.ttlS, tmpTtlS: backplane.tmpTtlS });
    case 'redis':
      return redisBackplaneFor(backplane, settings.history);
    default: {
      const unexpected: never = backplane;
      throw new TypeError(`unknown backplane ${JSON.stringify(unexpected)}`);
    }
  }
}

/** Milliseconds between expiry refreshes: a third of the TTL, so two may fail before it runs out. */
function touchEveryMs(settings: ChannelSettings, codespace: string): number {
  if (settings.backplane.kind === 'memory') return 60_000;
  const ttlS = codespace.startsWith('tmp-') ? settings.backplane.tmpTtlS : settings.backplane.ttlS;
  return ttlS > 0 ? Math.max(50, Math.floor((ttlS * 1000) / 3)) : 3_600_000;
}

/** Subscribes, then loads (so nothing published in between is missed), retrying while the store is away. */
async function openDocument(backplane: Backplane, task: SpawnTask, onRemote: (event: RemoteEvent) => void): Promise<TextDoc | null> {
  const patienceMs = task.settings.backplane.kind === 'redis' ? Math.max(5_000, 3 * task.settings.backplane.timeoutMs) : 0;
  const deadline = Date.now() + patienceMs;
  for (let delayMs = 100; ; delayMs = Math.min(delayMs * 2, 1_000)) {
    try {
      await backplane.subscribe(task.codespace, onRemote);
      return new TextDoc(await backplane.load(task.codespace), task.settings);
    } catch (error) {
      if (task.settings.backplane.kind !== 'redis' || Date.now() + delayMs > deadline) {
        if (task.settings.backplane.kind === 'redis') return null;
        throw error;
      }
      await new Promise((resolve) => setTimeout(resolve, delayMs));
    }
  }
}

export async function hostChannel(task: SpawnTask): Promise<ChannelEnd> {
  let settle!: (end: ChannelEnd) => void;
  const ended = new Promise<ChannelEnd>((resolve) => (settle = resolve));
  const early: ChannelMessage[] = [];
  let mailbox: Mailbox<ChannelMessage> | null = null;
  let channel: Channel | null = null;

  function deliver(message: ChannelMessage): void {
    if (mailbox) mailbox.post(message);
    else early.push(message);
  }

  function receive(envelope: ChannelInbound): void {
    if (envelope.type === 'switch') return;
    if (envelope.type === 'store_reply') return portBackplane?.receiveReply(envelope.id, envelope.doc, envelope.error);
    if (envelope.type === 'heartbeat') return; // the thread answers those (host_link.ts)
    deliver(envelope);
  }
  const route: Route = { switched: false, early: [], receive };
  const own = new PortLink<ChannelInbound, ChannelOutbound>(task.port, function hostOnOwnPort(envelope) {
    if (envelope.type !== 'switch') return receive(envelope);
    route.switched = true;
    for (const early of route.early.splice(0)) receive(early);
  });
  const tickMs = Math.max(10, Math.min(1_000, Math.floor(task.settings.snapshotIntervalMs / 2)));
  const host = hostLinkFor(task.supervisor, own, tickMs, threadLagS);
  host.routes.set(task.spawn, route);
  const send = (envelope: ChannelOutbound): void => host.link.send(task.spawn, envelope);
  const portBackplane = task.settings.backplane.kind === 'memory' ? new PortBackplane(send) : null;
  const backplane = backplaneOf(task.settings, portBackplane);

  function end(how: ChannelEnd): void {
    backplane.unsubscribe(task.codespace);
    leaveHostLink(task.supervisor, host, task.spawn);
    own.close();
    settle(how);
  }

  try {
    const doc = await openDocument(backplane, task, function channelOnRemote(event) {
      deliver({ type: 'remote', event });
    });
    if (!doc) {
      end('unavailable');
      return ended;
    }
    channel = new Channel({
      codespace: task.codespace,
      doc,
      backplane,
      settings: task.settings,
      send: function channelSend(envelope) {
        send(envelope);
        if (envelope.type === 'stopped') end('stopped');
      },
      snapshotEvery: Math.max(100, Math.floor(task.settings.history / 2)),
      touchEveryMs: touchEveryMs(task.settings, task.codespace),
      threadLagS,
      overBudget,
      takeQueued: (match, max) => mailbox?.takeWhile(match, max) ?? [],
    });
    const actor = channel;
    const busy = task.busy ? new Int32Array(task.busy) : null;
    mailbox = new Mailbox<ChannelMessage>(
      busy
        ? (message) => {
            Atomics.store(busy, 0, 1);
            try {
              return actor.handle(message);
            } finally {
              Atomics.store(busy, 0, 0);
            }
          }
        : (message) => actor.handle(message),
      (error) => end({ crashed: describeError(error) }),
    );
    mailbox.post({ type: 'tick', now: Date.now() });
    const running = mailbox;
    route.stats = () => actor.takeStats();
    route.tick = (now) => {
      if (actor.advanceClock(now)) running.post({ type: 'tick', now });
    };
    send({ type: 'ready', version: doc.version, thread: threadId });
    for (const message of early.splice(0)) mailbox.post(message);
  } catch (error) {
    end({ crashed: describeError(error) });
  }
  return ended;
}

export default hostChannel;
