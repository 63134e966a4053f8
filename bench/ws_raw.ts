/**
 * A minimal RFC 6455 client over a `net` socket, for the load generator only. It must stay far
 * cheaper than the servers it measures: no per-message events, no UTF-8 decoding, no masking
 * work (a client frame needs a mask key; an all-zero key leaves the payload as it is, which the
 * RFC allows), one pass over each read to cut it into frames.
 */
import { connect, type Socket } from 'node:net';

const HEADER_END = Buffer.from('\r\n\r\n');

export interface FrameSink {
  /** One text or binary frame: `data[start, end)`. The bytes are only valid during the call. */
  frame(data: Buffer, start: number, end: number): void;
  opened(): void;
  closed(code: number): void;
}

export class RawClient {
  readonly socket: Socket;
  /** performance.now() at the connect call, the 101, and the close. */
  readonly startedAt = performance.now();
  upgradedAt = 0;
  open = false;
  #sink: FrameSink;
  #upgraded = false;
  #pending: Buffer | null = null;

  constructor(host: string, port: number, path: string, sink: FrameSink, protocol?: string) {
    this.#sink = sink;
    this.socket = connect({ host, port, noDelay: true });
    this.socket.on('connect', () => {
      this.socket.write(
        `GET ${path} HTTP/1.1\r\nHost: ${host}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n` +
          (protocol ? `Sec-WebSocket-Protocol: ${protocol}\r\n` : '') +
          '\r\n',
      );
    });
    this.socket.on('data', this.#onData);
    this.socket.on('error', () => {});
    this.socket.on('close', () => {
      const wasOpen = this.open;
      this.open = false;
      if (wasOpen || !this.#upgraded) this.#sink.closed(this.#upgraded ? 1006 : 0);
    });
  }

  /** Sends one text frame of an ASCII string. */
  sendText(text: string): void {
    if (!this.open) return;
    const length = text.length;
    const header = length < 126 ? 6 : 8;
    const frame = Buffer.allocUnsafe(header + length);
    frame[0] = 0x81;
    if (length < 126) {
      frame[1] = 0x80 | length;
    } else {
      frame[1] = 0x80 | 126;
      frame.writeUInt16BE(length, 2);
    }
    frame.writeUInt32BE(0, header - 4); // the zero mask key
    frame.write(text, header, 'latin1');
    this.socket.write(frame);
  }

  /** Ends without a closing handshake or TIME_WAIT (RST): thousands of ports are reused soon. */
  destroy(): void {
    this.open = false;
    if (typeof this.socket.resetAndDestroy === 'function' && this.socket.readyState === 'open') this.socket.resetAndDestroy();
    else this.socket.destroy();
  }

  readonly #onData = (chunk: Buffer): void => {
    let data = chunk;
    if (this.#pending) {
      data = Buffer.concat([this.#pending, chunk]);
      this.#pending = null;
    }
    let offset = 0;
    if (!this.#upgraded) {
      const end = data.indexOf(HEADER_END);
      if (end < 0) {
        this.#pending = data;
        return;
      }
      if (data.toString('latin1', 0, 12) !== 'HTTP/1.1 101') {
        this.socket.destroy();
        return;
      }
      this.#upgraded = true;
      this.open = true;
      this.upgradedAt = performance.now();
      this.#sink.opened();
      offset = end + 4;
    }
    const length = data.length;
    while (offset + 2 <= length) {
      const opcode = data[offset] & 0x0f;
      let size = data[offset + 1] & 0x7f;
      let header = 2;
      if (size === 126) {
        if (offset + 4 > length) break;
        size = data.readUInt16BE(offset + 2);
        header = 4;
      } else if (size === 127) {
        if (offset + 10 > length) break;
        size = Number(data.readBigUInt64BE(offset + 2));
        header = 10;
      }
      const end = offset + header + size;
      if (end > length) break;
      const start = offset + header;
      if (opcode === 1 || opcode === 2) this.#sink.frame(data, start, end);
      else if (opcode === 9) this.#pong(data.subarray(start, end));
      else if (opcode === 8) {
        const code = size >= 2 ? data.readUInt16BE(start) : 1005;
        this.open = false;
        this.#sink.closed(code);
        this.socket.end();
        return;
      }
      offset = end;
    }
    if (offset < length) this.#pending = Buffer.from(data.subarray(offset));
  };

  #pong(payload: Buffer): void {
    const frame = Buffer.alloc(6 + payload.length);
    frame[0] = 0x8a;
    frame[1] = 0x80 | payload.length;
    payload.copy(frame, 6);
    this.socket.write(frame);
  }
}
