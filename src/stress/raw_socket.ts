/**
 * Plain JSON connections beside the SDK clients: one to send a `__fault`, one to read what a
 * fresh joiner is given at the end. Both bounded in time.
 */
import { WebSocket } from 'ws';
import { randomClientKey } from '../client/transport.ts';
import { SUBPROTOCOL_JSON, type FaultKind } from '../protocol/messages.ts';

const JOIN_TIMEOUT_MS = 5000;
/** A refusal (`unknown_operation` when FAULT_INJECTION is off) comes back within this. */
const FAULT_ANSWER_MS = 500;

/** A one-off connection's URL, with a client key of its own (PROTOCOL.md §1: every tool sends one). */
export function codespaceUrl(base: string, token: string, clientKey: string = randomClientKey()): string {
  return `${base.replace(/\/+$/, '')}/codespace/${encodeURIComponent(token)}/?client=${clientKey}`;
}

/** Opens, waits for `connected`, and hands over the socket and its data. */
function join(base: string, token: string): Promise<{ socket: WebSocket; data: Record<string, any> }> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(codespaceUrl(base, token), [SUBPROTOCOL_JSON], { perMessageDeflate: false });
    const timer = setTimeout(() => fail(new Error(`no connected within ${JOIN_TIMEOUT_MS} ms`)), JOIN_TIMEOUT_MS);
    const fail = (error: Error): void => {
      clearTimeout(timer);
      socket.terminate();
      reject(error);
    };
    socket.on('error', (error) => fail(error));
    socket.on('close', (code, reason) => fail(new Error(`closed with ${code} ${reason.toString()}`)));
    socket.on('message', function socketOnFirstMessage(raw) {
      const message = JSON.parse(raw.toString()) as Record<string, any>;
      if (message.operation !== 'connected') return;
      clearTimeout(timer);
      socket.off('message', socketOnFirstMessage);
      socket.removeAllListeners('close');
      socket.removeAllListeners('error');
      socket.on('error', () => {});
      resolve({ socket, data: message.data ?? {} });
    });
  });
}

/** Sends `__fault`; resolves with the refusal's code if the server answered one, else null. */
export async function injectFault(base: string, token: string, kind: FaultKind): Promise<string | null> {
  const { socket } = await join(base, token);
  try {
    return await new Promise<string | null>((resolve) => {
      const timer = setTimeout(() => resolve(null), FAULT_ANSWER_MS);
      socket.on('message', function socketOnFaultAnswer(raw) {
        const message = JSON.parse(raw.toString()) as Record<string, any>;
        if (message.operation !== 'error') return;
        clearTimeout(timer);
        resolve(String(message.data?.code ?? 'error'));
      });
      socket.on('close', () => {
        // The fault may take the connection down with its channel: that is the fault working.
        clearTimeout(timer);
        resolve(null);
      });
      socket.send(JSON.stringify({ operation: '__fault', kind }));
    });
  } finally {
    socket.terminate();
  }
}

/** The text and version a new joiner of `token` is given. */
export async function freshJoin(base: string, token: string): Promise<{ code: string; version: number }> {
  const { socket, data } = await join(base, token);
  socket.close(1000, 'stress check done');
  return { code: String(data.code ?? ''), version: Number(data.version ?? 0) };
}
