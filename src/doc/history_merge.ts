/**
 * What a channel does when the store's history is no longer its own (issue 11, PROTOCOL.md §7):
 * the store restarted empty and someone committed to a new history before this channel noticed.
 * The store's history wins, and whatever this channel holds that the store lacks comes back on
 * top of it as one change. With no common version to rebase from, the change is found by a
 * character diff (fast-diff) and keeps only its insertions: nothing the new history holds is
 * removed, nothing this channel acknowledged is left out.
 */
import diff from 'fast-diff';
import type { ChangeSpec } from '../protocol/messages.ts';

/** One change on `stored` that inserts what `ours` has and `stored` lacks; [] when nothing is missing. */
export function bringBack(stored: string, ours: string): ChangeSpec[] {
  const changes: ChangeSpec[] = [];
  let at = 0;
  for (const [op, text] of diff(stored, ours)) {
    if (op === diff.INSERT) {
      const last = changes[changes.length - 1];
      if (last && last.from === at) last.insert += text;
      else changes.push({ from: at, to: at, insert: text });
    } else {
      at += text.length; // EQUAL, or DELETE: text only the store has, which stays
    }
  }
  return changes;
}
