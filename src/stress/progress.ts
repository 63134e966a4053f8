/**
 * Live progress: one line redrawn in place on a terminal; when the output is a file or a pipe, a
 * plain line every few seconds and at each change of phase (CI logs stay readable).
 */
export interface ProgressSnapshot {
  phase: 'opening' | 'editing' | 'settling' | 'checking';
  /** Clients connected so far, of `clients`. */
  opened: number;
  clients: number;
  elapsedMs: number;
  durationMs: number;
  sent: number;
  acked: number;
  deliveries: number;
  /** p99 latency over the last second, ms; null with no samples. */
  recentP99Ms: number | null;
  resyncs: number;
  reconnects: number;
  /** Faults sent so far (whether the server took them shows in the report). */
  faultsFired: number;
  faultsPlanned: number;
}

export interface ProgressSink {
  update(snapshot: ProgressSnapshot): void;
  done(): void;
}

const BAR_WIDTH = 24;
const PLAIN_EVERY_MS = 2000;

export function progressText(snapshot: ProgressSnapshot, withBar: boolean): string {
  if (snapshot.phase === 'opening') return `opening clients ${snapshot.opened}/${snapshot.clients}`;
  const share = Math.min(1, snapshot.elapsedMs / snapshot.durationMs);
  const filled = Math.round(share * BAR_WIDTH);
  const bar = withBar ? `[${'#'.repeat(filled)}${'.'.repeat(BAR_WIDTH - filled)}] ` : '';
  const time = `${(Math.min(snapshot.elapsedMs, snapshot.durationMs) / 1000).toFixed(1)}/${(snapshot.durationMs / 1000).toFixed(0)}s`;
  const phase = snapshot.phase === 'editing' ? '' : ` ${snapshot.phase}`;
  const p99 = snapshot.recentP99Ms === null ? '-' : `${Math.round(snapshot.recentP99Ms)}ms`;
  const faults = snapshot.faultsPlanned > 0 ? `  faults ${snapshot.faultsFired}/${snapshot.faultsPlanned}` : '';
  return `${bar}${time}${phase}  sent ${snapshot.sent}  acked ${snapshot.acked}  delivered ${snapshot.deliveries}  p99(1s) ${p99}  resyncs ${snapshot.resyncs}  reconnects ${snapshot.reconnects}${faults}`;
}

/** Writes to `stream` (stderr by default, so the table on stdout can be piped on its own). */
export function terminalProgress(stream: NodeJS.WriteStream = process.stderr): ProgressSink {
  let lastPlainAt = -Infinity;
  let lastPhase = '';
  let drawn = false;
  return {
    update(snapshot) {
      if (stream.isTTY) {
        const columns = stream.columns || 120;
        stream.write(`\r\x1b[2K${progressText(snapshot, columns >= 100).slice(0, columns - 1)}`);
        drawn = true;
      } else if (snapshot.phase !== lastPhase || snapshot.elapsedMs - lastPlainAt >= PLAIN_EVERY_MS) {
        lastPlainAt = snapshot.elapsedMs;
        lastPhase = snapshot.phase;
        stream.write(`${progressText(snapshot, false)}\n`);
      }
    },
    done() {
      if (drawn) stream.write('\r\x1b[2K');
    },
  };
}
