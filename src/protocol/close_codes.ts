/**
 * Every close code of PROTOCOL.md §5, in one table. Reasons stay short: a close reason over
 * 123 bytes makes `ws.close` throw. `reconnect`: whether a client should come back (as
 * centrifuge marks its disconnects); false where coming back would meet the same refusal or
 * resend the same fault (a bad token, a missing codespace, a message the server cannot take).
 * The SDK's final close codes are derived from it; one code means one answer.
 */
export const CloseCode = {
  shuttingDown: { code: 1001, reason: 'server shutting down', reconnect: true },
  unsupportedData: { code: 1003, reason: 'wrong frame type for subprotocol', reconnect: false },
  invalidPayload: { code: 1007, reason: 'invalid UTF-8', reconnect: false },
  messageTooBig: { code: 1009, reason: 'message too big', reconnect: false },
  internalError: { code: 1011, reason: 'unexpected server error', reconnect: true },
  tryAgainLater: { code: 1013, reason: 'try again later', reconnect: true },
  authUnavailable: { code: 1013, reason: 'auth service unavailable', reconnect: true },
  slowConsumer: { code: 1013, reason: 'slow consumer', reconnect: true },
  storeUnavailable: { code: 1013, reason: 'store unavailable', reconnect: true },
  overloaded: { code: 1013, reason: 'server overloaded', reconnect: true },
  badMessage: { code: 4400, reason: 'unparsable message', reconnect: false },
  tokenRefused: { code: 4401, reason: 'token refused', reconnect: false },
  notFound: { code: 4404, reason: 'codespace does not exist', reconnect: false },
  idleTimeout: { code: 4408, reason: 'idle timeout', reconnect: true },
  rateLimited: { code: 4429, reason: 'message rate far above the limit', reconnect: true },
  channelFailed: { code: 4500, reason: 'codespace failed repeatedly', reconnect: true },
} as const;

export type CloseCodeEntry = { readonly code: number; readonly reason: string; readonly reconnect: boolean };

/**
 * An error that carries the close code it should end its connection with. Handlers throw it;
 * only the session turns it into a close (STYLE.md rule 8).
 */
export class ProtocolError extends Error {
  readonly close: CloseCodeEntry;

  constructor(close: CloseCodeEntry, detail?: string) {
    super(detail ?? close.reason);
    this.name = 'ProtocolError';
    this.close = close;
  }
}

/**
 * The one place an error becomes a close code: a ProtocolError carries its own, anything else is
 * a server fault (1011) that costs only the connection it happened on.
 */
export function closeFor(error: unknown): CloseCodeEntry {
  return error instanceof ProtocolError ? error.close : CloseCode.internalError;
}
