/**
 * The memory budget of a thread hosting channels (issue 11): one anonymous editor replacing a
 * megabyte per edit grew a worker to its heap limit in seconds, and the worker's death restarted
 * every unrelated channel on it. Past BUDGET_FRACTION of the heap limit, channels refuse new work
 * (an edit gets `unavailable`, a join 1013, both temporary) until collection brings it back.
 */
import { getHeapStatistics } from 'node:v8';

const BUDGET_FRACTION = 0.75;
/** The heap is read at most this often: a read costs a few microseconds, edits come by the thousand. */
const READ_EVERY_MS = 50;

export function heapBudget(fraction = BUDGET_FRACTION, readEveryMs = READ_EVERY_MS): () => boolean {
  let readAt = 0;
  let over = false;
  return function overBudget() {
    const now = Date.now();
    if (now - readAt < readEveryMs) return over;
    readAt = now;
    try {
      const heap = getHeapStatistics();
      over = heap.heap_size_limit > 0 && heap.used_heap_size > fraction * heap.heap_size_limit;
    } catch {
      over = false; // a runtime without heap statistics: no budget rather than no service
    }
    return over;
  };
}
