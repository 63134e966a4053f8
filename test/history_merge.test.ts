import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { bringBack } from '../src/doc/history_merge.ts';
import { changeSetOf, textOf } from '../src/doc/text_doc.ts';

function apply(text: string, changes: ReturnType<typeof bringBack>): string {
  const result = changeSetOf(changes, text.length).apply(textOf(text));
  return result.sliceString(0, result.length, '\n');
}

describe('bringBack', () => {
  it('puts what a lost history held back around what the new one committed, removing nothing', () => {
    expect(apply('B!', bringBack('B!', 'a0;a1;'))).toBe('B!a0;a1;');
    expect(bringBack('same', 'same')).toEqual([]);
  });

  it('keeps every character of both texts, in their own order', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 30 }), fc.string({ maxLength: 30 }), (stored, ours) => {
        const merged = apply(stored, bringBack(stored, ours));
        // Both are subsequences of the merge.
        for (const part of [stored, ours]) {
          let at = 0;
          for (const char of merged) if (at < part.length && char === part[at]) at++;
          expect(at).toBe(part.length);
        }
      }),
      { seed: 6, numRuns: 300 },
    );
  });
});
