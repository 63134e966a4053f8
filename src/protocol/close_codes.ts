/**
 * Every close code of PROTOCOL.md §5, in one table. Reasons stay short: a close reason over
 * 123 bytes makes `ws.close` throw.
 */
export const CloseCode = {
  shuttingDown: { code: 1001, reason: 'server shutting down' },
  unsupportedData: { code: 1003, reason: 'wrong frame type for subprotocol' },
  invalidPayload: { code: 1007, reason: 'invalid UTF-8' },
  messageTooBig: { code: 1009, reason: 'message too big' },
  internalError: { code: 1011, reason: 'unexpected server error' },
  tryAgainLater: { code: 1013, reason: 'try again later' },
  authUnavailable: { code: 1013, reason: 'auth service unavailable' },
  slowConsumer: { code: 1013, reason: 'slow consumer' },
  storeUnavailable: { code: 1013, reason: 'store unavailable' },
  overloaded: { code: 1013, reason: 'server overloaded' },
  badMessage: { code: 4400, reason: 'unparsable message' },
  tokenRefused: { code: 4401, reason: 'token refused' },
  notFound: { code: 4404, reason: 'codespace does not exist' },
  idleTimeout: { code: 4408, reason: 'idle timeout' },
  rateLimited: { code: 4429, reason: 'message rate far above the limit' },
  channelFailed: { code: 4500, reason: 'codespace failed repeatedly' },
} as const;

export type CloseCodeEntry = { readonly code: number; readonly reason: string };

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
