/**
 * The report as one self-contained HTML page: verdict, table and inline SVG charts of p99
 * latency over time per codespace (log scale), with each fault marked. No scripts, no fetches.
 */
import type { CodespaceReport, Role, StressReport } from './report.ts';
import { verdictText } from './report_table.ts';

const WIDTH = 900;
const HEIGHT = 320;
const SMALL_WIDTH = 280;
const SMALL_HEIGHT = 130;
const MAX_SMALL_CHARTS = 100;
const ROLE_COLOURS: Record<Role, string> = { faulted: '#d62728', collateral: '#ff7f0e', bystander: '#1f77b4' };

/** What each role means, for the legend: "collateral" in particular is not obvious. */
const ROLE_MEANINGS = [
  ['faulted', 'the codespace the fault was injected into.'],
  ['collateral', 'a codespace that was not faulted but restarted anyway (its clients got a resync): it shared a worker with the faulted one, and a hang or an oom takes that whole worker down. After a throw there should be none.'],
  ['bystander', 'every other codespace: it must not notice the fault (its p99 after the fault stays within the isolation bound).'],
].map(([role, meaning]) => `<dt style="color:${ROLE_COLOURS[role as Role]}">${role}</dt><dd>${meaning}</dd>`).join('');

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

interface Frame {
  width: number;
  height: number;
  pad: { left: number; right: number; top: number; bottom: number };
  maxT: number;
  maxY: number;
}

function xOf(frame: Frame, t: number): number {
  return frame.pad.left + (t / frame.maxT) * (frame.width - frame.pad.left - frame.pad.right);
}

/** Log scale from 1 ms: a hang's seconds and a bystander's milliseconds on one chart. */
function yOf(frame: Frame, ms: number): number {
  const share = Math.log10(Math.max(1, ms)) / Math.log10(Math.max(10, frame.maxY));
  return frame.height - frame.pad.bottom - share * (frame.height - frame.pad.top - frame.pad.bottom);
}

/** Tick labels: full size on the big chart, smaller (but present) on the small ones. */
function axes(frame: Frame, small: boolean): string {
  const parts: string[] = [];
  const bottom = frame.height - frame.pad.bottom;
  const fontSize = small ? 9 : 11;
  for (let tick = 1; tick <= Math.max(10, frame.maxY); tick *= 10) {
    const y = yOf(frame, tick).toFixed(1);
    parts.push(`<line x1="${frame.pad.left}" x2="${frame.width - frame.pad.right}" y1="${y}" y2="${y}" stroke="#eee"/>`);
    parts.push(`<text class="y-tick" x="${frame.pad.left - 4}" y="${y}" font-size="${fontSize}" text-anchor="end" dominant-baseline="middle">${tick >= 1000 ? `${tick / 1000}s` : `${tick}ms`}</text>`);
  }
  const ticks = small ? 4 : 10;
  const stepS = Math.max(1, Math.ceil(frame.maxT / 1000 / ticks));
  for (let s = 0; s * 1000 <= frame.maxT; s += stepS) {
    const x = xOf(frame, s * 1000).toFixed(1);
    parts.push(`<text class="x-tick" x="${x}" y="${bottom + (small ? 11 : 16)}" font-size="${fontSize}" text-anchor="middle">${s}s</text>`);
  }
  parts.push(`<line x1="${frame.pad.left}" x2="${frame.width - frame.pad.right}" y1="${bottom}" y2="${bottom}" stroke="#999"/>`);
  parts.push(`<line x1="${frame.pad.left}" x2="${frame.pad.left}" y1="${frame.pad.top}" y2="${bottom}" stroke="#999"/>`);
  return parts.join('');
}

function markers(frame: Frame, report: StressReport, small: boolean): string {
  const parts: string[] = [];
  const bottom = frame.height - frame.pad.bottom;
  const end = xOf(frame, report.editingMs).toFixed(1);
  parts.push(`<line x1="${end}" x2="${end}" y1="${frame.pad.top}" y2="${bottom}" stroke="#888" stroke-dasharray="2 3"><title>editing stopped</title></line>`);
  for (const fault of report.faults.filter((candidate) => candidate.injected)) {
    const x = xOf(frame, fault.atMs).toFixed(1);
    parts.push(`<line class="fault-marker" x1="${x}" x2="${x}" y1="${frame.pad.top}" y2="${bottom}" stroke="#d62728" stroke-width="1.5" stroke-dasharray="6 3"><title>fault ${fault.kind} on codespace ${fault.index}</title></line>`);
    if (!small) parts.push(`<text x="${Number(x) + 4}" y="${frame.pad.top + 10}" fill="#d62728">${fault.kind}:${fault.index}</text>`);
  }
  return parts.join('');
}

/**
 * Runs of consecutive buckets: a bucket with no sample (a hang, a stall) ends a run, so that the
 * chart shows a gap there instead of a line rising steadily across it.
 */
export function runsOf<T extends { t: number }>(points: readonly T[], bucketMs: number): T[][] {
  const runs: T[][] = [];
  for (const point of points) {
    const run = runs.at(-1);
    const previous = run?.at(-1);
    if (run && previous && point.t - previous.t <= bucketMs) run.push(point);
    else runs.push([point]);
  }
  return runs;
}

function polylines<T extends { t: number }>(frame: Frame, points: readonly T[], bucketMs: number, valueOf: (point: T) => number, attributes: string, title: string): string {
  return runsOf(points, bucketMs).map((run) => {
    if (run.length === 1) {
      return `<circle ${attributes} cx="${xOf(frame, run[0].t).toFixed(1)}" cy="${yOf(frame, valueOf(run[0])).toFixed(1)}" r="1.5"><title>${title}</title></circle>`;
    }
    const coordinates = run.map((point) => `${xOf(frame, point.t).toFixed(1)},${yOf(frame, valueOf(point)).toFixed(1)}`).join(' ');
    return `<polyline fill="none" ${attributes} points="${coordinates}"><title>${title}</title></polyline>`;
  }).join('');
}

function line(frame: Frame, cs: CodespaceReport, colour: string, width: number, bucketMs: number): string {
  return polylines(frame, cs.series, bucketMs, (point) => point.p99, `class="series" stroke="${colour}" fill-opacity="0.8" stroke-width="${width}" stroke-opacity="0.8"`, `codespace ${cs.index} (${cs.role})`);
}

/** The tool's own event-loop lag, grey: a spike shared by every line and this one is the tool's. */
function lagLine(frame: Frame, report: StressReport): string {
  return polylines(frame, report.toolLag.series, report.bucketMs, (point) => point.max, 'class="tool-lag" stroke="#999" stroke-width="1" stroke-dasharray="1 2"', 'stress tool event-loop lag (max per bucket)');
}

function chart(report: StressReport, codespaces: CodespaceReport[], small: boolean): string {
  const maxY = Math.max(10, ...report.codespaces.flatMap((cs) => cs.series.map((point) => point.p99)), ...report.toolLag.series.map((point) => point.max));
  const frame: Frame = {
    width: small ? SMALL_WIDTH : WIDTH,
    height: small ? SMALL_HEIGHT : HEIGHT,
    pad: small ? { left: 34, right: 8, top: 6, bottom: 16 } : { left: 56, right: 16, top: 16, bottom: 28 },
    maxT: Math.max(1000, report.elapsedMs),
    maxY,
  };
  const lines = codespaces.map((cs) => line(frame, cs, ROLE_COLOURS[cs.role], small ? 1.5 : 1.2, report.bucketMs)).join('') + (small ? '' : lagLine(frame, report));
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${frame.width}" height="${frame.height}" viewBox="0 0 ${frame.width} ${frame.height}" font-size="11" font-family="sans-serif">${axes(frame, small)}${markers(frame, report, small)}${lines}</svg>`;
}

function table(report: StressReport): string {
  const head = ['cs', 'token', 'role', 'sent', 'acked', 'delivered', 'lost', 'dup', 'cross-talk', 'gaps', 'p50', 'p99', 'max', 'p99 before fault', 'p99 after fault', 'resyncs', 'reconnects', 'converged'];
  const rows = report.codespaces.map((cs) => [
    cs.index, cs.token, cs.role, cs.sent, cs.acked, `${cs.delivered}/${cs.expectedDeliveries}`, cs.lost, cs.duplicated, cs.crossTalk, cs.gaps,
    cs.latency.p50 ?? '-', cs.latency.p99 ?? '-', cs.latency.max ?? '-', cs.latencyBeforeFault?.p99 ?? '-', cs.latencyAfterFault?.p99 ?? '-',
    cs.resyncs, cs.reconnects, cs.converged ? 'yes' : `no: ${cs.notes.join('; ')}`,
  ]);
  const cells = (row: unknown[], tag: string, cs?: CodespaceReport): string => `<tr${cs ? ` class="${cs.role}${cs.converged ? '' : ' bad'}"` : ''}>${row.map((cell) => `<${tag}>${escapeHtml(String(cell))}</${tag}>`).join('')}</tr>`;
  return `<table><thead>${cells(head, 'th')}</thead><tbody>${rows.map((row, i) => cells(row, 'td', report.codespaces[i])).join('')}</tbody></table>`;
}

export function renderHtmlReport(report: StressReport): string {
  const verdict = report.verdict.ok ? 'PASS' : 'FAIL';
  const legend = (Object.keys(ROLE_COLOURS) as Role[]).map((role) => `<span style="color:${ROLE_COLOURS[role]}">&#9632; ${role}</span>`).join(' ');
  const smalls = report.codespaces.slice(0, MAX_SMALL_CHARTS).map((cs) =>
    `<figure><figcaption>codespace ${cs.index} (${cs.role}) p99 ${cs.latency.p99 ?? '-'} ms${cs.converged ? '' : ', NOT converged'}</figcaption>${chart(report, [cs], true)}</figure>`).join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>codespace-stress ${verdict}</title>
<style>
body{font-family:sans-serif;margin:24px;color:#222}
h1 .PASS{color:#2ca02c}h1 .FAIL{color:#d62728}
pre{background:#f6f6f6;padding:8px;white-space:pre-wrap}
table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ddd;padding:2px 6px;text-align:right}
tr.faulted td{background:#fdecea}tr.collateral td{background:#fff4e5}tr.bad td{font-weight:bold}
figure{display:inline-block;margin:4px;border:1px solid #eee}figcaption{font-size:11px;padding:2px 4px}
dl.roles{display:grid;grid-template-columns:max-content 1fr;gap:2px 10px;font-size:13px;max-width:900px}dl.roles dt{font-weight:bold}dl.roles dd{margin:0}
p.note{font-size:12px;color:#666}
</style></head><body>
<h1>codespace-stress: <span class="${verdict}">${verdict}</span></h1>
<p>${report.codespaces.length} codespaces &times; ${report.options.clients} clients, ${report.options.rate} messages/s each, ${(report.editingMs / 1000).toFixed(1)} s of editing against ${escapeHtml(report.options.url)}, started ${escapeHtml(report.startedAt)}.</p>
<pre>${escapeHtml(verdictText(report))}</pre>
<h2>p99 latency over time (per ${report.bucketMs} ms, log scale)</h2>
<p>${legend} &nbsp; <span style="color:#d62728">- - fault</span> &nbsp; <span style="color:#888">&middot;&middot; editing stopped; dotted grey: the tool's own event-loop lag (p99 ${report.toolLag.p99 ?? '-'} ms, max ${report.toolLag.max ?? '-'} ms)</span></p>
<dl class="roles">${ROLE_MEANINGS}</dl>
<p class="note">A line stops where a bucket had no sample (nothing arrived in those ${report.bucketMs} ms, as during a hang) and starts again at the next sample: a gap, not a slope.</p>
${chart(report, report.codespaces, false)}
<h2>Per codespace</h2>
${table(report)}
<h2>Each codespace</h2>
${smalls}
</body></html>
`;
}
