/** Latency statistics for the stress report. Pure functions over numbers (milliseconds). */

export interface LatencySummary {
  count: number;
  p50: number | null;
  p99: number | null;
  max: number | null;
}

export interface SeriesPoint {
  /** Bucket start, milliseconds since the editing began. */
  t: number;
  p99: number;
  count: number;
}

/**
 * Nearest-rank percentile of values sorted ascending: the smallest value with at least p% of
 * the values at or below it. `null` for no values.
 */
export function percentile(sorted: readonly number[], p: number): number | null {
  if (sorted.length === 0) return null;
  if (p <= 0) return sorted[0];
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, rank) - 1];
}

export function summarize(values: readonly number[]): LatencySummary {
  const sorted = Float64Array.from(values).sort();
  const list = Array.from(sorted);
  return { count: list.length, p50: percentile(list, 50), p99: percentile(list, 99), max: list.length ? list[list.length - 1] : null };
}

/** p99 per bucket of `bucketMs`, by the time each sample was taken; empty buckets are left out. */
export function bucketSeries(times: readonly number[], values: readonly number[], bucketMs: number): SeriesPoint[] {
  const buckets = new Map<number, number[]>();
  for (let i = 0; i < times.length; i++) {
    const key = Math.floor(times[i] / bucketMs);
    let bucket = buckets.get(key);
    if (!bucket) buckets.set(key, (bucket = []));
    bucket.push(values[i]);
  }
  return [...buckets.entries()]
    .sort(([a], [b]) => a - b)
    .map(([key, bucket]) => ({ t: key * bucketMs, p99: summarize(bucket).p99!, count: bucket.length }));
}

/** The largest value per bucket of `bucketMs`: one stall is what delays everything around it. */
export function bucketMax(times: readonly number[], values: readonly number[], bucketMs: number): { t: number; max: number }[] {
  const worst = new Map<number, number>();
  for (let i = 0; i < times.length; i++) {
    const key = Math.floor(times[i] / bucketMs);
    worst.set(key, Math.max(worst.get(key) ?? -Infinity, values[i]));
  }
  return [...worst.entries()].sort(([a], [b]) => a - b).map(([key, max]) => ({ t: key * bucketMs, max }));
}

/** The samples taken in [fromMs, toMs). */
export function samplesBetween(times: readonly number[], values: readonly number[], fromMs: number, toMs: number): number[] {
  const picked: number[] = [];
  for (let i = 0; i < times.length; i++) if (times[i] >= fromMs && times[i] < toMs) picked.push(values[i]);
  return picked;
}

/** The isolation bound: a p99 after a fault may be at most max(factor × before, before + slack). */
export function latencyBound(beforeP99: number, factor: number, slackMs: number): number {
  return Math.max(beforeP99 * factor, beforeP99 + slackMs);
}

/** Milliseconds rounded for display and JSON: one decimal below 10, whole above. */
export function roundMs(value: number | null): number | null {
  if (value === null) return null;
  return value < 10 ? Math.round(value * 10) / 10 : Math.round(value);
}
