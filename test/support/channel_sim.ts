/**
 * A Channel actor in-process with SharePython pages (FrontendPage) around it, and a network the
 * test schedules by hand: each page has a FIFO queue towards the channel and one from it, and
 * the test decides which message moves next. No sockets, no timers: every interleaving a real
 * network could produce can be replayed exactly.
 */
import { Channel } from '../../src/actors/channel.ts';
import { MemoryBackplane } from '../../src/backplane/memory_backplane.ts';
import { TextDoc } from '../../src/doc/text_doc.ts';
import type { ChannelOutbound } from '../../src/actors/envelopes.ts';
import type { ClientMessage } from '../../src/protocol/messages.ts';
import { FrontendPage, type WireMessage } from './frontend_page.ts';

export interface SimPage {
  session: string;
  page: FrontendPage;
  /** Channel → page, not yet received. */
  inbox: WireMessage[];
  /** Page → channel, not yet received. */
  outbox: WireMessage[];
  /** Everything the channel sent it. */
  received: WireMessage[];
}

const decoder = new TextDecoder();

export class ChannelSim {
  readonly channel: Channel;
  readonly pages = new Map<string, SimPage>();
  /** The server's text at each version so far (what the stored `code` may have served). */
  readonly versions: string[];

  constructor(text = '', history = 1000) {
    this.versions = [text];
    const backplane = new MemoryBackplane({ history });
    this.channel = new Channel({
      codespace: 'sim',
      // The store's epoch: commits name it (a channel and its store share one history).
      doc: new TextDoc({ text, version: 0, log: [], epoch: backplane.loadNow('sim').epoch }, { history, maxDocLength: 1_000_000 }),
      backplane,
      send: (envelope) => this.#deliver(envelope),
      settings: { history, maxDocLength: 1_000_000, snapshotIntervalMs: 250, historyBytes: 0, backplane: { kind: 'memory' } },
      snapshotEvery: 1_000_000,
      touchEveryMs: 1_000_000,
    });
  }

  get text(): string {
    return this.channel.text;
  }

  /** A page that loaded `text` (by default the server's text now) and then joined. */
  async join(session: string, text = this.text, mode: 'edit' | 'view_only' = 'edit'): Promise<SimPage> {
    const sim: SimPage = { session, page: new FrontendPage(text, (message) => sim.outbox.push(message)), inbox: [], outbox: [], received: [] };
    this.pages.set(session, sim);
    await this.channel.handle({ type: 'join', session, mode, codec: 'json', author: `c:${session}` });
    return sim;
  }

  /** The oldest message from `session` reaches the channel; false if there was none. */
  async toServer(session: string): Promise<boolean> {
    const sim = this.pages.get(session)!;
    const message = sim.outbox.shift();
    if (!message) return false;
    // Main rebuilds the message from known fields; the page's `sender` is dropped there.
    const { sender: _sender, ...msg } = message;
    await this.channel.handle({ type: 'client', session, msg: msg as ClientMessage });
    while (this.versions.length <= this.channel.version) this.versions.push(this.channel.text);
    return true;
  }

  /** The oldest message to `session` reaches the page; false if there was none. */
  toPage(session: string): boolean {
    const sim = this.pages.get(session)!;
    const message = sim.inbox.shift();
    if (!message) return false;
    sim.page.receive(message);
    return true;
  }

  /** Delivers everything in flight, both ways, until nothing moves. */
  async settle(): Promise<void> {
    for (let moved = true; moved; ) {
      moved = false;
      for (const session of this.pages.keys()) {
        while (await this.toServer(session)) moved = true;
        while (this.toPage(session)) moved = true;
      }
    }
  }

  #deliver(envelope: ChannelOutbound): void {
    if (envelope.type === 'to') {
      this.#push(envelope.session, envelope.data);
    } else if (envelope.type === 'broadcast' && envelope.json) {
      for (const session of this.pages.keys()) if (session !== envelope.except) this.#push(session, envelope.json);
    }
  }

  #push(session: string, data: Uint8Array): void {
    const sim = this.pages.get(session);
    if (!sim) return;
    const message = JSON.parse(decoder.decode(data)) as WireMessage;
    sim.inbox.push(message);
    sim.received.push(message);
  }
}
