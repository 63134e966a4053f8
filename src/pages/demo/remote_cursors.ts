/**
 * Other people's cursors and selections in CodeMirror: a caret with the peer's name above it,
 * and a tint over what it selected, in the peer's palette colour. Positions come from the peer's
 * `create_selection`, clamped to this document, and move with every change applied here after.
 */
import { StateEffect, StateField, type EditorState, type Extension, type Range } from '@codemirror/state';
import { Decoration, EditorView, WidgetType, type DecorationSet } from '@codemirror/view';

export interface RemoteSelection {
  peer: string;
  name: string;
  colour: number;
  ranges: { anchor: number; head: number }[];
}

export const setRemoteSelection = StateEffect.define<RemoteSelection>();
export const removeRemoteSelection = StateEffect.define<string>();

class CaretWidget extends WidgetType {
  readonly name: string;
  readonly colour: number;

  constructor(name: string, colour: number) {
    super();
    this.name = name;
    this.colour = colour;
  }

  override eq(other: CaretWidget): boolean {
    return other.name === this.name && other.colour === this.colour;
  }

  toDOM(): HTMLElement {
    const caret = document.createElement('span');
    caret.className = `cm-remote-caret peer-${this.colour}`;
    caret.setAttribute('aria-hidden', 'true');
    const label = document.createElement('span');
    label.className = 'cm-remote-name';
    label.textContent = this.name;
    caret.append(label);
    return caret;
  }

  override ignoreEvent(): boolean {
    return true;
  }
}

function clamp(state: EditorState, position: number): number {
  return Math.max(0, Math.min(state.doc.length, position));
}

const selections = StateField.define<Map<string, RemoteSelection>>({
  create: () => new Map(),
  update(value, transaction) {
    let next = value;
    if (transaction.docChanged) {
      next = new Map();
      for (const [peer, selection] of value) {
        // Text inserted right at a peer's cursor goes after it, as the peer's own editor maps it
        // (assoc -1), until the peer's next selection says where it is.
        const ranges = selection.ranges.map((range) => ({
          anchor: transaction.changes.mapPos(clamp(transaction.startState, range.anchor), -1),
          head: transaction.changes.mapPos(clamp(transaction.startState, range.head), -1),
        }));
        next.set(peer, { ...selection, ranges });
      }
    }
    for (const effect of transaction.effects) {
      if (effect.is(setRemoteSelection)) {
        if (next === value) next = new Map(value);
        const ranges = effect.value.ranges.map((range) => ({ anchor: clamp(transaction.state, range.anchor), head: clamp(transaction.state, range.head) }));
        next.set(effect.value.peer, { ...effect.value, ranges });
      } else if (effect.is(removeRemoteSelection) && next.has(effect.value)) {
        if (next === value) next = new Map(value);
        next.delete(effect.value);
      }
    }
    return next;
  },
  provide: (field) => EditorView.decorations.from(field, decorationsOf),
});

function decorationsOf(value: Map<string, RemoteSelection>): DecorationSet {
  const ranges: Range<Decoration>[] = [];
  for (const selection of value.values()) {
    for (const range of selection.ranges) {
      const from = Math.min(range.anchor, range.head);
      const to = Math.max(range.anchor, range.head);
      if (from < to) ranges.push(Decoration.mark({ class: `cm-remote-selection peer-${selection.colour}` }).range(from, to));
      ranges.push(Decoration.widget({ widget: new CaretWidget(selection.name, selection.colour), side: 1 }).range(range.head));
    }
  }
  return Decoration.set(ranges, true);
}

export function remoteCursors(): Extension {
  return selections;
}
