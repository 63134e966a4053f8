/**
 * The two ends of the ports between actors and their refs, speaking in batches: everything sent
 * in one turn of the event loop leaves as one msgpack-encoded postMessage (batching 100 messages
 * a post moved ~15x more messages per second than one each: ARCHITECTURE.md, facts measured).
 *
 * - PortLink: one channel's own port. It carries the spawn handshake, and a thread's link.
 * - ThreadLink: one port per worker thread (per supervisor) carrying the envelopes of every
 *   channel on it, each tagged with its channel's spawn id. With a port per channel, each channel
 *   cost a postMessage, a wake-up and a batch of its own per turn (4,600 posts a second each way
 *   at 100 codespaces x 10 clients); a thread's channels now share one.
 */
import { setImmediate } from 'node:timers';
import { receiveMessageOnPort } from 'node:worker_threads';
import { packBatch, unpackBatch } from '../protocol/codec.ts';

/**
 * What went wrong on a link and was dropped instead of thrown: a throw in a port's message
 * listener is an uncaught exception that ends the whole thread (main: the process). Everything
 * crossing is rebuilt from validated fields first, so this should stay 0; tests read it.
 */
export const linkFaults = { dropped: 0, lastError: '' };

function noteFault(error: unknown): void {
  linkFaults.dropped++;
  linkFaults.lastError = error instanceof Error ? error.message : String(error);
}

const TRANSFER_ABOVE_BYTES = 16 * 1024;

/** What a host posts, outside the batches, on the port of the first channel it runs for a supervisor. */
export interface ThreadLinkOffer {
  threadLink: MessagePort;
}

function isThreadLinkOffer(data: unknown): data is ThreadLinkOffer {
  return typeof data === 'object' && data !== null && 'threadLink' in data;
}

/** What both kinds of link do alike: what is sent in one turn leaves in one post at its end. */
class Outbox {
  readonly port: MessagePort;
  #items: unknown[] = [];
  #flushScheduled = false;
  closed = false;

  constructor(port: MessagePort) {
    this.port = port;
  }

  add(item: unknown): void {
    if (this.closed) return;
    this.#items.push(item);
    this.#scheduleFlush();
  }

  /** A thread link's id and envelope, side by side in the batch. */
  addPair(id: number, envelope: unknown): void {
    if (this.closed) return;
    this.#items.push(id, envelope);
    this.#pairs = true;
    this.#scheduleFlush();
  }

  #pairs = false;

  /**
   * The batch encoded; should one item not encode, the batch without it (each item is tried on
   * its own only then), so one bad envelope costs itself and nothing else.
   */
  #pack(items: unknown[]): Uint8Array {
    try {
      return packBatch(items);
    } catch (error) {
      noteFault(error);
      const unit = this.#pairs ? 2 : 1;
      const kept: unknown[] = [];
      for (let i = 0; i < items.length; i += unit) {
        const group = items.slice(i, i + unit);
        try {
          packBatch(group);
          kept.push(...group);
        } catch (itemError) {
          noteFault(itemError);
        }
      }
      return packBatch(kept);
    }
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    setImmediate(this.#flushOnImmediate);
  }

  flush(): void {
    this.#flushScheduled = false;
    if (this.closed || this.#items.length === 0) return;
    const bytes = this.#pack(this.#items);
    this.#items = [];
    // A small batch is cheaper to copy than to transfer (detaching and re-wrapping the buffer cost
    // more than copying a few hundred bytes: ~10 µs less CPU per round trip between two threads
    // on the benchmark machine); a large one (a snapshot's text) is transferred.
    if (bytes.byteLength <= TRANSFER_ABOVE_BYTES) this.port.postMessage(bytes);
    else this.port.postMessage(bytes, [bytes.buffer]);
  }

  /** Sends what is queued and stops listening; the caller closes the port. */
  close(listener: (event: MessageEvent) => void): void {
    this.flush();
    this.closed = true;
    this.port.removeEventListener('message', listener);
  }

  readonly #flushOnImmediate = (): void => this.flush();
}

export class PortLink<Inbound, Outbound> {
  readonly #out: Outbox;
  readonly #receive: (envelope: Inbound) => void;
  readonly #offered: ((port: MessagePort) => void) | undefined;

  /** `offered`: takes a thread link posted on this port (the main thread's side). */
  constructor(port: MessagePort, receive: (envelope: Inbound) => void, offered?: (port: MessagePort) => void) {
    this.#out = new Outbox(port);
    this.#receive = receive;
    this.#offered = offered;
    port.addEventListener('message', this.#portOnMessage);
    port.start();
  }

  get closed(): boolean {
    return this.#out.closed;
  }

  /** Posts a thread link on this port, outside the batches (a port cannot be msgpack-encoded). */
  offer(threadLink: MessagePort): void {
    const offer: ThreadLinkOffer = { threadLink };
    this.#out.port.postMessage(offer, [threadLink]);
  }

  send(envelope: Outbound): void {
    this.#out.add(envelope);
  }

  flush(): void {
    this.#out.flush();
  }

  /**
   * Sends what is queued, then closes the port. A thread link already offered on it is still
   * taken: the other channels of that thread speak through it.
   */
  close(): void {
    if (this.#out.closed) return;
    this.#out.close(this.#portOnMessage);
    const port = this.#out.port;
    if (this.#offered) {
      const unread = port as unknown as Parameters<typeof receiveMessageOnPort>[0];
      for (let left = receiveMessageOnPort(unread); left; left = receiveMessageOnPort(unread)) {
        if (isThreadLinkOffer(left.message)) this.#offered(left.message.threadLink);
      }
    }
    port.close();
  }

  readonly #portOnMessage = (event: MessageEvent): void => {
    if (this.#out.closed) return;
    if (isThreadLinkOffer(event.data)) return this.#offered?.(event.data.threadLink);
    for (const envelope of unpackOrDrop(event.data)) {
      try {
        this.#receive(envelope as Inbound);
      } catch (error) {
        noteFault(error);
      }
    }
  };
}

/** One port for many channels: each batch is [id, envelope, id, envelope, ...]. */
export class ThreadLink<Inbound, Outbound> {
  readonly #out: Outbox;
  readonly #receive: (id: number, envelope: Inbound) => void;

  /** `ended`: the other side closed, or its thread died. */
  constructor(port: MessagePort, receive: (id: number, envelope: Inbound) => void, ended?: () => void) {
    this.#out = new Outbox(port);
    this.#receive = receive;
    port.addEventListener('message', this.#portOnMessage);
    if (ended) port.addEventListener('close', ended, { once: true });
    port.start();
  }

  get closed(): boolean {
    return this.#out.closed;
  }

  send(id: number, envelope: Outbound): void {
    this.#out.addPair(id, envelope);
  }

  flush(): void {
    this.#out.flush();
  }

  close(): void {
    if (this.#out.closed) return;
    this.#out.close(this.#portOnMessage);
    this.#out.port.close();
  }

  readonly #portOnMessage = (event: MessageEvent): void => {
    if (this.#out.closed) return;
    const batch = unpackOrDrop(event.data);
    for (let i = 0; i + 1 < batch.length; i += 2) {
      try {
        this.#receive(batch[i] as number, batch[i + 1] as Inbound);
      } catch (error) {
        noteFault(error);
      }
    }
  };
}

function unpackOrDrop(data: unknown): unknown[] {
  try {
    const batch = unpackBatch(data as Uint8Array);
    if (Array.isArray(batch)) return batch;
    throw new TypeError('a batch is not an array');
  } catch (error) {
    noteFault(error);
    return [];
  }
}
