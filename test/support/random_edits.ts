/** fast-check generators of random edits (inserts, deletes, replacements, unicode). */
import fc from 'fast-check';
import type { ChangeSpec } from '../../src/protocol/messages.ts';

/** Text with ASCII, newlines (never \r: PROTOCOL.md §2 refuses it), BMP and astral characters (surrogate pairs). */
export const insertText = fc.array(
  fc.constantFrom('a', 'b', 'Z', ' ', '\n', '\n\n', 'é', 'ж', '中', '😀', '🎉', '\t'),
  { maxLength: 6 },
).map((parts) => parts.join(''));

/** A random edit as fractions of the length, so it can be placed on any document. */
export const editShape = fc.record({
  at: fc.double({ min: 0, max: 1, noNaN: true }),
  span: fc.double({ min: 0, max: 0.3, noNaN: true }),
  insert: insertText,
});

/**
 * Edits crowded on a few positions, so that insertions tie with each other and with the ends of
 * deletions: where a rebase that maps over the wrong change structure diverges.
 */
export const crowdedEditShape = fc.record({
  at: fc.constantFrom(0, 0, 0.1, 0.25, 0.5, 1),
  span: fc.constantFrom(0, 0, 0.2, 0.5),
  insert: fc.constantFrom('', 'X', 'yz', '\n', '😀'),
});

export type EditShape = { at: number; span: number; insert: string };

function snapOffSurrogate(text: string, pos: number): number {
  const code = text.charCodeAt(pos);
  return pos > 0 && pos < text.length && code >= 0xdc00 && code <= 0xdfff ? pos - 1 : pos;
}

/** Places `shape` on `text`, never splitting a surrogate pair. */
export function placeEdit(text: string, shape: EditShape): ChangeSpec[] {
  const from = snapOffSurrogate(text, Math.floor(shape.at * text.length));
  const to = snapOffSurrogate(text, Math.min(text.length, from + Math.floor(shape.span * text.length)));
  return [{ from, to: Math.max(from, to), insert: shape.insert }];
}

/** Applies sorted, non-overlapping specs (in one document's coordinates) to a plain string. */
export function applySpecs(text: string, specs: readonly ChangeSpec[]): string {
  let result = '';
  let at = 0;
  for (const { from, to, insert } of specs) {
    result += text.slice(at, from) + insert;
    at = to;
  }
  return result + text.slice(at);
}
