import { describe, expect, it } from 'vitest';
import { ProtocolError } from '../src/protocol/close_codes.ts';
import { parseClientMessage } from '../src/protocol/validate.ts';

describe('parseClientMessage', () => {
  it('closes with 4400 for a value that is not a message', () => {
    for (const value of [null, 3, 'x', [], { op: 'insert_value' }, { operation: 5 }]) {
      try {
        parseClientMessage(value);
        expect.unreachable();
      } catch (error) {
        expect(error).toBeInstanceOf(ProtocolError);
        expect((error as ProtocolError).close.code).toBe(4400);
      }
    }
  });

  it('refuses an unknown operation, echoing a proper ref', () => {
    expect(parseClientMessage({ operation: 'dance', ref: 'r' })).toMatchObject({ refused: true, code: 'unknown_operation', ref: 'r' });
  });

  it('refuses wrong field types as malformed', () => {
    const bad = [
      { changes: 'x' },
      { changes: [1] },
      { changes: [{ from: -1, to: 0, insert: '' }] },
      { changes: [{ from: 0.5, to: 1, insert: '' }] },
      { changes: [{ from: 0, insert: '' }] },
      { changes: [{ from: 0, to: 0 }] },
      { changes: [{ from: 0, to: 0, insert: 3 }] },
      { changes: [], version: '1' },
      { changes: [], doc_length: -2 },
      { changes: [], ref: 5 },
      { changes: [], ref: 'x'.repeat(65) },
    ];
    for (const fields of bad) {
      expect(parseClientMessage({ operation: 'insert_value', ...fields })).toMatchObject({ refused: true, code: 'malformed' });
    }
    expect(parseClientMessage({ operation: 'create_selection', selections: [{ anchor: 1 }] })).toMatchObject({ code: 'malformed' });
  });

  it('keeps what the protocol defines and drops a client-made sender', () => {
    const parsed = parseClientMessage({ operation: 'insert_value', changes: [{ from: 0, to: 0, insert: '' }], sender: 'me', doc_length: 0, version: 0, ref: 'r' });
    expect(parsed).toEqual({ operation: 'insert_value', changes: [{ from: 0, to: 0, insert: '' }], doc_length: 0, version: 0, ref: 'r' });
    const selection = { operation: 'create_selection', selections: [{ anchor: 1, head: 4 }], color: 'red' };
    expect(parseClientMessage(selection)).toEqual(selection);
  });
});
