/** The report as text for a terminal: one row per codespace, totals, the faults, the verdict. */
import type { CodespaceReport, StressReport } from './report.ts';

function ms(value: number | null | undefined): string {
  return value === null || value === undefined ? '-' : String(value);
}

function rowOf(cs: CodespaceReport, withFault: boolean): string[] {
  const row = [
    String(cs.index),
    cs.role,
    String(cs.sent),
    String(cs.acked),
    `${cs.delivered}/${cs.expectedDeliveries}`,
    String(cs.lost),
    String(cs.duplicated),
    String(cs.crossTalk),
    ms(cs.latency.p50),
    ms(cs.latency.p99),
    ms(cs.latency.max),
  ];
  if (withFault) row.push(ms(cs.latencyBeforeFault?.p99), ms(cs.latencyAfterFault?.p99));
  row.push(String(cs.resyncs), String(cs.reconnects), cs.converged ? 'yes' : 'NO');
  return row;
}

/** Right-aligns numbers, left-aligns the rest, two spaces between columns. */
function layout(rows: string[][]): string {
  const widths = rows[0].map((_, column) => Math.max(...rows.map((row) => row[column].length)));
  return rows
    .map((row) => row.map((cell, column) => (column === 1 ? cell.padEnd(widths[column]) : cell.padStart(widths[column]))).join('  ').trimEnd())
    .join('\n');
}

export function renderTable(report: StressReport): string {
  const withFault = report.faults.some((fault) => fault.injected);
  const header = ['cs', 'role', 'sent', 'acked', 'delivered', 'lost', 'dup', 'xtalk', 'p50', 'p99', 'max'];
  if (withFault) header.push('p99<fault', 'p99>fault');
  header.push('resyncs', 'reconn', 'converged');
  const t = report.totals;
  const totals = ['all', '', String(t.sent), String(t.acked), `${t.delivered}/${t.expectedDeliveries}`, String(t.lost), String(t.duplicated), String(t.crossTalk), ms(t.latency.p50), ms(t.latency.p99), ms(t.latency.max)];
  if (withFault) totals.push('', '');
  totals.push(String(t.resyncs), String(t.reconnects), `${t.converged}/${report.codespaces.length}`);
  const lines = [
    `codespace-stress: ${report.codespaces.length} codespaces × ${report.options.clients} clients, ${report.options.rate}/s each, ${(report.editingMs / 1000).toFixed(1)} s against ${report.options.url}`,
    'sent: edits typed; acked: of them, committed; delivered: receipts by the other clients / expected; lost: acked but missing somewhere; latencies in ms',
    '',
    layout([header, ...report.codespaces.map((cs) => rowOf(cs, withFault)), totals]),
    '',
  ];
  for (const fault of report.faults) {
    lines.push(`fault ${fault.kind} on codespace ${fault.index} at ${(fault.atMs / 1000).toFixed(1)} s: ${fault.injected ? 'injected' : `NOT injected (${fault.error})`}`);
  }
  lines.push(`tool event-loop lag: p99 ${ms(report.toolLag.p99)} ms, max ${ms(report.toolLag.max)} ms (a stall of the tool itself shows in every latency around it)`);
  lines.push(verdictText(report));
  return `${lines.join('\n')}\n`;
}

export function verdictText(report: StressReport): string {
  const v = report.verdict;
  const lines = [`convergence: ${v.converged ? 'ok' : 'FAILED'}  (every codespace synced, identical texts, a fresh join reads the same; nothing lost, duplicated or crossed over)`];
  if (v.isolated !== null) {
    const bystanders = report.codespaces.filter((cs) => cs.role === 'bystander').length;
    const bound = bystanders === 0 ? 'no bystander codespaces to compare' : v.boundMs === null ? 'no bystander latency samples before the fault' : `bystanders' p99 after the fault at most ${v.boundMs} ms (p99 before it ${v.baselineP99Ms} ms)`;
    lines.push(`isolation: ${v.isolated ? 'ok' : 'FAILED'}  (${bound})`);
  }
  for (const failure of v.failures.slice(0, 20)) lines.push(`  - ${failure}`);
  if (v.failures.length > 20) lines.push(`  - ... and ${v.failures.length - 20} more`);
  for (const warning of v.warnings) lines.push(`warning: ${warning}`);
  lines.push(`verdict: ${v.ok ? 'PASS' : 'FAIL'}`);
  return lines.join('\n');
}
