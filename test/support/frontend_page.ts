/**
 * The SharePython frontend's editor page as the wire sees it (sharepython-frontend,
 * src/components/codespace/CodeSandbox.vue), on a real CodeMirror `EditorState`, transport apart:
 *
 * - its text comes from the API (`GET codespace/<id>/`, field `code`) before it connects, and
 *   `connected.data.code` is ignored; `connected` gives it its id;
 * - its own edits are applied at once and sent as `insert_value` with the changes of
 *   `iterChanges`, `doc_length` (the length before) and `sender`, no `version`, no `ref`;
 * - an incoming `insert_value` from another sender is dispatched as
 *   `ChangeSet.of(changes, doc_length)` with the cursor put at the end of each insert; when the
 *   length differs that throws and the change is lost;
 * - an incoming `create_selection` from another sender becomes its own selection (typing then
 *   replaces it); one outside its text throws and is lost;
 * - a selection change of its own that is not empty is sent as `create_selection`;
 * - `ack`, `error`, `resync`, `peer_*` are ignored.
 *
 * The editor is set up as the page sets it up (the extensions it passes replace vue-codemirror's
 * basicSetup), so multiple selections are off: of the cursors an incoming change sets, the first
 * is kept.
 */
import { ChangeSet, EditorSelection, EditorState, type TransactionSpec } from '@codemirror/state';

export type WireMessage = Record<string, any>;

export class FrontendPage {
  #state: EditorState;
  id: string | null = null;
  /** Incoming insert_value messages that threw (length mismatch) and were lost. */
  lostChanges = 0;
  /** Incoming insert_value messages applied, and how many of those came from "server". */
  appliedChanges = 0;
  appliedRepairs = 0;
  readonly #send: (message: WireMessage) => void;

  constructor(text: string, send: (message: WireMessage) => void) {
    this.#state = EditorState.create({ doc: text });
    this.#send = send;
  }

  get text(): string {
    return this.#state.doc.toString();
  }

  get length(): number {
    return this.#state.doc.length;
  }

  get selection(): { anchor: number; head: number } {
    const { anchor, head } = this.#state.selection.main;
    return { anchor, head };
  }

  /** `updateCodeOnWebSocketMessage`. */
  receive(data: WireMessage): void {
    if (data.operation === 'connected') {
      this.id = data.data.id;
    } else if (data.operation === 'insert_value' && data.sender !== this.id) {
      let insertedBefore = 0;
      const cursors = (data.changes as { from: number; to: number; insert: string }[]).map((change) => {
        const cursor = EditorSelection.cursor(change.from + insertedBefore + change.insert.length);
        insertedBefore += change.from - change.to + change.insert.length;
        return cursor;
      });
      try {
        const changes = ChangeSet.of(data.changes, data.doc_length);
        this.#dispatch({ changes, selection: EditorSelection.create(cursors) }, 'remote');
        this.appliedChanges++;
        if (data.sender === 'server') this.appliedRepairs++;
      } catch {
        this.lostChanges++;
      }
    } else if (data.operation === 'create_selection' && data.sender !== this.id) {
      try {
        const ranges = (data.selections as { anchor: number; head: number }[]).map((range) => EditorSelection.range(range.anchor, range.head));
        const selection = EditorSelection.create(ranges);
        this.#dispatch({ selection }, 'remote', selection);
      } catch {
        // outside its text: the browser logs the RangeError and goes on
      }
    }
  }

  /** Typing `text` at the selection (replacing it when it is not empty). */
  type(text: string): void {
    const { from, to } = this.#state.selection.main;
    this.#dispatch({ changes: { from, to, insert: text }, selection: EditorSelection.cursor(from + text.length) }, 'user');
  }

  /** Backspace: the selection, or the character before the cursor. */
  backspace(): void {
    const { from, to } = this.#state.selection.main;
    if (from === to && from === 0) return;
    const start = from === to ? from - 1 : from;
    this.#dispatch({ changes: { from: start, to }, selection: EditorSelection.cursor(start) }, 'user');
  }

  /** A click: the cursor moves (an empty selection is never sent). */
  click(pos: number): void {
    this.#dispatch({ selection: EditorSelection.cursor(Math.min(pos, this.length)) }, 'user');
  }

  /** A drag: a selection, sent when not empty. */
  select(anchor: number, head: number): void {
    this.#dispatch({ selection: EditorSelection.range(Math.min(anchor, this.length), Math.min(head, this.length)) }, 'user');
  }

  /**
   * One view update: `onCodeChange` and `createSelection` as the page wires them. The page marks
   * the selection object a remote `create_selection` dispatched, and skips the updates that
   * start from it; the update that sets it is not skipped (the page sends that selection on).
   */
  #dispatch(spec: TransactionSpec, origin: 'user' | 'remote', marked?: EditorSelection): void {
    const start = this.#state;
    const transaction = start.update(spec);
    this.#state = transaction.state;
    if (transaction.docChanged && origin === 'user') {
      const changes: { from: number; to: number; insert: string }[] = [];
      transaction.changes.iterChanges((fromA, toA, _fromB, _toB, inserted) => {
        changes.push({ from: fromA, to: toA, insert: inserted.toString() });
      }, false);
      this.#send({ operation: 'insert_value', sender: this.id, doc_length: start.doc.length, changes });
    }
    const skip = start.selection === this.#marked;
    if (marked) this.#marked = marked;
    if (skip || this.#state.selection.eq(start.selection)) return;
    const selections = this.#state.selection.ranges.filter((range) => range.head !== range.anchor).map((range) => ({ anchor: range.anchor, head: range.head }));
    if (selections.length > 0) this.#send({ operation: 'create_selection', sender: this.id, selections });
  }

  #marked: EditorSelection | null = null;
}
