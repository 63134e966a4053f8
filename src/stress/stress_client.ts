/**
 * One SDK client of the run: it types tokens and moves its caret at a steady rate, through a
 * tapped WebSocket that reports every frame to its ClientLedger.
 */
import { connect, type CodespaceClient } from '../client/client.ts';
import type { Codec } from '../protocol/messages.ts';
import type { ClientLedger } from './ledger.ts';
import { tappedWebSocket } from './tapped_socket.ts';

const CONNECT_TIMEOUT_MS = 10_000;
const CONNECT_ATTEMPTS = 3;

export class StressClient {
  readonly ledger: ClientLedger;
  readonly sdk: CodespaceClient;
  #timer: ReturnType<typeof setTimeout> | null = null;
  #ticks = 0;
  #caret = 0;

  constructor(url: string, ledger: ClientLedger) {
    this.ledger = ledger;
    this.sdk = connect(url, ledger.codespace.token, {
      WebSocket: tappedWebSocket(ledger.tap()),
      codec: ledger.codec,
      clientId: `s${ledger.index}`,
      minReconnectDelayMs: 50,
      maxReconnectDelayMs: 1000,
      resendDelayMs: 100,
    });
    this.sdk.on('error', (error) => {
      // Server refusals are recorded by the tap; these are the SDK's own conclusions.
      if (error.code === 'closed' || error.code === 'local_edits_lost') ledger.errors.push(error.code);
    });
  }

  /** Resolves on the first `connected`; rejects if the client gives up or takes too long. */
  opened(): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        stop();
        reject(new Error(`no connected within ${CONNECT_TIMEOUT_MS / 1000} s (is the server running?)`));
      }, CONNECT_TIMEOUT_MS);
      const offConnected = this.sdk.on('connected', () => {
        stop();
        resolve();
      });
      let attempts = 0;
      const offClosed = this.sdk.on('closed', ({ code, reason }) => {
        // A refused connection is not worth the whole timeout: the server is not there.
        if (this.sdk.state !== 'closed' && ++attempts < CONNECT_ATTEMPTS) return;
        stop();
        reject(new Error(this.sdk.state === 'closed' ? `closed with ${code} ${reason}` : `could not connect in ${attempts} attempts (last close ${code}; is the server running?)`));
      });
      // Closed by the run (another client failed) or by a final close code: stop waiting now.
      const offState = this.sdk.on('state', (state) => {
        if (state !== 'closed') return;
        stop();
        reject(new Error('closed before connected'));
      });
      const stop = (): void => {
        clearTimeout(timer);
        offConnected();
        offClosed();
        offState();
      };
    });
  }

  /** Sends `rate` messages per second until `stop`: edits and selection moves in turn. */
  start(rate: number, startedAt: number): void {
    const intervalMs = 1000 / rate;
    // A random phase per client, so that codespaces are not hit in lockstep.
    const phase = Math.random() * intervalMs;
    const schedule = (): void => {
      const due = startedAt + phase + this.#ticks * intervalMs;
      this.#timer = setTimeout(tick, Math.max(0, due - performance.now()));
    };
    const tick = (): void => {
      if (this.sdk.state !== 'closed') this.#act(this.#ticks % 2 === 0);
      this.#ticks++;
      schedule();
    };
    schedule();
  }

  stop(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
  }

  close(): void {
    this.stop();
    this.sdk.close();
  }

  #act(edit: boolean): void {
    const text = this.sdk.text;
    if (!edit) {
      const head = Math.min(this.#caret, text.length);
      this.sdk.setSelection([{ anchor: Math.max(0, head - Math.floor(Math.random() * 4)), head }]);
      return;
    }
    const at = tokenBoundary(text, Math.floor(Math.random() * (text.length + 1)));
    const token = this.ledger.nextToken(performance.now());
    this.sdk.applyLocal([{ from: at, to: at, insert: token }]);
    this.#caret = at + token.length;
  }
}

/** The nearest position at or before `pos` that is not inside a token: 0 or just after a `>`. */
export function tokenBoundary(text: string, pos: number): number {
  if (pos <= 0) return 0;
  return text.lastIndexOf('>', pos - 1) + 1;
}

export function codecOf(codec: Codec | 'mixed', clientIndex: number): Codec {
  if (codec !== 'mixed') return codec;
  return clientIndex % 2 === 0 ? 'json' : 'msgpack';
}
