/**
 * The one module that imports msgpackr (STYLE.md rule 10). Wire frames in both subprotocols, and
 * the batches actors exchange over MessagePorts.
 */
import { Packr } from 'msgpackr';
import type { Codec } from './messages.ts';
import { CloseCode, ProtocolError } from './close_codes.ts';

// Records (useRecords) only decode with a decoder that saw the structure: browsers, Redis and
// restarted actors would not have, so plain maps everywhere (ARCHITECTURE.md, facts measured).
const packr = new Packr({ useRecords: false, encodeUndefinedAsNil: false });
const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { fatal: true });

/**
 * msgpackr returns a view into its shared 8 KiB buffer; posting or keeping such a view copies or
 * corrupts the backing store, so every encoded value leaves here as an exact-size copy.
 */
function packExact(value: unknown): Uint8Array {
  return new Uint8Array(packr.pack(value));
}

export function encodeMessage(message: unknown, codec: Codec): Uint8Array {
  return codec === 'json' ? utf8Encoder.encode(JSON.stringify(message)) : packExact(message);
}

/** Decodes a client frame; anything that is not a message at all ends the connection with 4400. */
export function decodeFrame(data: Uint8Array, codec: Codec): unknown {
  try {
    return codec === 'json' ? JSON.parse(utf8Decoder.decode(data)) : packr.unpack(data);
  } catch {
    throw new ProtocolError(CloseCode.badMessage, codec === 'json' ? 'unparsable JSON' : 'unparsable msgpack');
  }
}

/** For consumers of server frames (SDK, tests, in-process connections). */
export function decodeServerFrame(data: Uint8Array | string, codec: Codec): unknown {
  if (typeof data === 'string') return JSON.parse(data);
  return codec === 'json' ? JSON.parse(utf8Decoder.decode(data)) : packr.unpack(data);
}

/** One batch of envelopes, for one postMessage. */
export function packBatch(envelopes: readonly unknown[]): Uint8Array {
  return packExact(envelopes);
}

export function unpackBatch(bytes: Uint8Array): unknown[] {
  return packr.unpack(bytes) as unknown[];
}
