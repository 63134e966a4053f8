/**
 * A CodeMirror 6 binding for the SDK, in the spirit of `@codemirror/collab`: the editor's own
 * transactions go to the client as local edits; remote changes (already rebased over the pending
 * ones by the client) and whole-text replacements come back as transactions marked `remote`.
 *
 * It needs only `@codemirror/state`, so it runs wherever the SDK does. With an `EditorView`:
 *
 *     const view = new EditorView({ doc: client.text, parent,
 *       dispatchTransactions: (trs, view) => { view.update(trs); sync.update(trs); } });
 *     const sync = syncEditor(client, view);
 *
 * or hand it the transactions from `EditorView.updateListener.of((u) => sync.update(u.transactions))`.
 */
import { Annotation, Transaction, type EditorState, type TransactionSpec } from '@codemirror/state';
import { specsOf } from '../doc/text_doc.ts';
import type { ChangeSpec } from '../protocol/messages.ts';
import type { CodespaceClient } from './client.ts';

/** Marks the transactions the binding makes from what the server sent. */
export const remote = Annotation.define<boolean>();

/** What the binding needs of an editor: an `EditorView` has both. */
export interface EditorLike {
  readonly state: EditorState;
  dispatch(...specs: TransactionSpec[]): void;
}

export interface EditorSync {
  /** Every transaction the editor applied, in order; those marked `remote` are skipped. */
  update(transactions: readonly Transaction[]): void;
  /** Stops listening to the client. */
  destroy(): void;
}

export function syncEditor(client: CodespaceClient, editor: EditorLike): EditorSync {
  const apply = (changes: ChangeSpec[] | { from: number; to: number; insert: string }): void => {
    // Remote edits are not the user's to undo.
    editor.dispatch({ changes, annotations: [remote.of(true), Transaction.addToHistory.of(false)] });
  };
  const replaceAll = (text: string): void => {
    if (editor.state.doc.toString() !== text) apply({ from: 0, to: editor.state.doc.length, insert: text });
  };
  const offs = [
    client.on('change', function syncOnChange(change) {
      apply(change.localChanges);
    }),
    client.on('replaced', function syncOnReplaced({ text }) {
      replaceAll(text);
    }),
    client.on('connected', function syncOnConnected() {
      replaceAll(client.text);
    }),
  ];
  if (client.state === 'open') replaceAll(client.text);
  return {
    update(transactions) {
      for (const transaction of transactions) {
        if (!transaction.docChanged || transaction.annotation(remote)) continue;
        client.applyLocal(specsOf(transaction.changes));
      }
    },
    destroy() {
      for (const off of offs) off();
    },
  };
}
