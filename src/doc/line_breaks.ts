/**
 * Line breaks (PROTOCOL.md §2): the document's only line break is "\n". CodeMirror, which every
 * known client uses, counts "\r\n" as one position, so a "\r" kept in the text would put every
 * client's positions out of step with ours (issue 12). Inserts holding "\r" are refused; texts
 * that come from a store or an API are normalised as they are loaded.
 */

const LINE_BREAK = /\r\n?/g;

/** "\r\n" and a lone "\r" become "\n". */
export function normalizeLineBreaks(text: string): string {
  return text.includes('\r') ? text.replace(LINE_BREAK, '\n') : text;
}

export function hasCarriageReturn(text: string): boolean {
  return text.includes('\r');
}
