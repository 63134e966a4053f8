/** The ports between actors and refs: batches in order, and a thread link offered on a channel's port. */
import { describe, expect, it } from 'vitest';
import { PortLink, ThreadLink } from '../src/actors/port_link.ts';
import { waitFor } from './support/ws_client.ts';

describe('PortLink and ThreadLink', () => {
  it('carries envelopes of many ids over one thread link, in the order sent, one post per turn', async () => {
    const { port1, port2 } = new MessageChannel();
    const got: [number, unknown][] = [];
    const receiver = new ThreadLink<{ n: number }, never>(port2, (id, envelope) => got.push([id, envelope]));
    const sender = new ThreadLink<never, { n: number }>(port1, () => {});
    let posts = 0;
    const post = port1.postMessage.bind(port1);
    port1.postMessage = ((...args: Parameters<typeof post>) => {
      posts++;
      post(...args);
    }) as typeof port1.postMessage;
    for (let n = 0; n < 300; n++) sender.send(n % 7, { n });
    await waitFor(() => got.length === 300, 2000, 'all envelopes');
    expect(got.map(([, envelope]) => (envelope as { n: number }).n)).toEqual(Array.from({ length: 300 }, (_, n) => n));
    expect(got.map(([id]) => id)).toEqual(Array.from({ length: 300 }, (_, n) => n % 7));
    expect(posts).toBe(1);
    sender.close();
    receiver.close();
  });

  it('a link offered on a port is taken even when the port is closed before it was read', async () => {
    const { port1, port2 } = new MessageChannel();
    const offered: MessagePort[] = [];
    const mainSide = new PortLink<never, never>(port1, () => {}, (port) => offered.push(port));
    const hostSide = new PortLink<never, never>(port2, () => {});
    const link = new MessageChannel();
    hostSide.offer(link.port2);
    // The offer has arrived, but the channel ends before main's turn comes to read it.
    mainSide.close();
    expect(offered).toHaveLength(1);
    const heard: unknown[] = [];
    const taken = new ThreadLink<unknown, never>(offered[0], (_id, envelope) => heard.push(envelope));
    const offering = new ThreadLink<never, unknown>(link.port1, () => {});
    offering.send(1, { still: 'works' });
    await waitFor(() => heard.length === 1, 2000, 'the offered link works');
    expect(heard).toEqual([{ still: 'works' }]);
    offering.close();
    taken.close();
    hostSide.close();
  });

  it('reports its end when the other side closes', async () => {
    const { port1, port2 } = new MessageChannel();
    let ended = false;
    const watching = new ThreadLink<never, never>(port1, () => {}, () => (ended = true));
    new ThreadLink<never, never>(port2, () => {}).close();
    await waitFor(() => ended, 2000, 'close seen');
    expect(watching.closed).toBe(false);
  });
});
