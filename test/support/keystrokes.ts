/**
 * Bookkeeping for typing tests: every keystroke types a character no other keystroke types, so
 * that at the end each one can be found, and checked to sit between the neighbours it was typed
 * between. Characters a user removed on purpose (backspace, typing over a selection, in its own
 * view) are not counted missing.
 */

/** CJK ideographs: one UTF-16 unit each, and thousands of them. */
const FIRST = 0x4e00;
const LAST = 0x9fff;

export interface KeystrokeFigures {
  keystrokes: number;
  missing: number;
  misplaced: number;
}

interface Typed {
  char: string;
  left: string | null;
  right: string | null;
}

export class Keystrokes {
  #next = FIRST;
  readonly #typed: Typed[] = [];
  readonly #deleted = new Set<string>();

  /** A character never typed before. */
  fresh(): string {
    if (this.#next > LAST) throw new RangeError('out of unique characters');
    return String.fromCharCode(this.#next++);
  }

  /** `char` was typed at `at` in `before` (the typist's text just before), replacing `to - at`. */
  typed(char: string, before: string, at: number, to = at): void {
    this.#typed.push({ char, left: at > 0 ? before[at - 1] : null, right: to < before.length ? before[to] : null });
    this.removed(before.slice(at, to));
  }

  /** The typist removed `text` from its own view on purpose. */
  removed(text: string): void {
    for (const char of text) this.#deleted.add(char);
  }

  /** Missing: typed, not removed on purpose, and not in `final`. Misplaced: not between its neighbours. */
  figures(final: string): KeystrokeFigures {
    const at = new Map<string, number>();
    for (let i = 0; i < final.length; i++) at.set(final[i], i);
    let missing = 0;
    let misplaced = 0;
    for (const { char, left, right } of this.#typed) {
      const position = at.get(char);
      if (position === undefined) {
        if (!this.#deleted.has(char)) missing++;
        continue;
      }
      const leftAt = left === null ? -1 : at.get(left);
      const rightAt = right === null ? final.length : at.get(right);
      if ((leftAt !== undefined && leftAt > position) || (rightAt !== undefined && rightAt < position)) misplaced++;
    }
    return { keystrokes: this.#typed.length, missing, misplaced };
  }
}
