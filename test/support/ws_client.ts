/**
 * A real `ws` client for tests: records every message, and waits for the ones a test expects.
 */
import { WebSocket } from 'ws';
import { decodeServerFrame, encodeMessage } from '../../src/protocol/codec.ts';
import { SUBPROTOCOL_JSON, SUBPROTOCOL_MSGPACK, type Codec } from '../../src/protocol/messages.ts';

export type Message = Record<string, any>;

export interface Closed {
  code: number;
  reason: string;
}

export class TestClient {
  readonly socket: WebSocket;
  readonly codec: Codec;
  readonly messages: Message[] = [];
  closed: Closed | null = null;
  #cursor = 0;
  #waiters: (() => void)[] = [];

  constructor(url: string, codec: Codec | 'none' = 'none', options: { autoPong?: boolean } = {}) {
    this.codec = codec === 'none' ? 'json' : codec;
    const protocols = codec === 'none' ? [] : [codec === 'json' ? SUBPROTOCOL_JSON : SUBPROTOCOL_MSGPACK];
    this.socket = new WebSocket(url, protocols, { autoPong: options.autoPong ?? true, perMessageDeflate: false });
    this.socket.on('message', (data: Buffer, isBinary: boolean) => {
      this.messages.push(decodeServerFrame(isBinary ? new Uint8Array(data) : data.toString('utf8'), this.codec) as Message);
      this.#wake();
    });
    this.socket.on('close', (code: number, reason: Buffer) => {
      this.closed = { code, reason: reason.toString() };
      this.#wake();
    });
    this.socket.on('error', () => this.#wake());
  }

  static async open(url: string, codec: Codec | 'none' = 'none'): Promise<TestClient> {
    const client = new TestClient(url, codec);
    await client.opened();
    return client;
  }

  /** Opens and waits for `connected`. */
  static async join(url: string, codec: Codec | 'none' = 'none'): Promise<{ client: TestClient; connected: Message }> {
    const client = await TestClient.open(url, codec);
    const connected = await client.next((m) => m.operation === 'connected');
    return { client, connected };
  }

  opened(): Promise<void> {
    if (this.socket.readyState === WebSocket.OPEN) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.socket.once('open', () => resolve());
      this.socket.once('error', reject);
      this.socket.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    });
  }

  send(message: unknown): void {
    if (this.codec === 'json') this.socket.send(JSON.stringify(message));
    else this.socket.send(encodeMessage(message, 'msgpack'));
  }

  sendRaw(data: string | Buffer, binary: boolean): void {
    this.socket.send(data, { binary });
  }

  /** The next message (after those already taken) that matches; earlier ones are skipped. */
  async next(match: (message: Message) => boolean = () => true, timeoutMs = 10_000): Promise<Message> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      while (this.#cursor < this.messages.length) {
        const message = this.messages[this.#cursor++];
        if (match(message)) return message;
      }
      if (this.closed) throw new Error(`closed (${this.closed.code} ${this.closed.reason}) while waiting; got ${JSON.stringify(this.messages.slice(-5))}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting; last messages ${JSON.stringify(this.messages.slice(-5))}`);
      await this.#wait(left);
    }
  }

  /** Resolves with the close once the server closes the socket. */
  async closedWith(timeoutMs = 5000): Promise<Closed> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('timed out waiting for close');
      await this.#wait(left);
    }
    return this.closed;
  }

  /** Messages received so far that match, without moving the cursor. */
  all(match: (message: Message) => boolean): Message[] {
    return this.messages.filter(match);
  }

  close(): void {
    if (this.socket.readyState === WebSocket.OPEN || this.socket.readyState === WebSocket.CONNECTING) this.socket.close();
  }

  #wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.#waiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  #wake(): void {
    for (const waiter of this.#waiters.splice(0)) waiter();
  }
}

export async function waitFor(condition: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
