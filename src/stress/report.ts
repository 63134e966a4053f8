/**
 * The stress report: per-codespace counts and latencies from the ledger and the end state, and
 * the verdict. Pure: everything it needs is handed in.
 */
import type { FaultKind } from '../protocol/messages.ts';
import { tokenOf, tokensIn, type CodespaceLedger, type RunLedger } from './ledger.ts';
import { bucketMax, bucketSeries, latencyBound, roundMs, samplesBetween, summarize, type LatencySummary, type SeriesPoint } from './metrics.ts';
import type { StressOptions } from './options.ts';

export type Role = 'faulted' | 'collateral' | 'bystander';

/** How a codespace ended: read after the settle wait and a fresh join. */
export interface EndState {
  settled: boolean;
  /** Why not, when not: the clients still pending or out of step. */
  settleNote: string;
  texts: string[];
  versions: number[];
  reconnects: number[];
  fresh: { code: string; version: number } | { error: string };
}

export interface FaultReport {
  kind: FaultKind;
  index: number;
  token: string;
  atMs: number;
  injected: boolean;
  error: string | null;
}

export interface CodespaceReport {
  index: number;
  token: string;
  role: Role;
  clients: number;
  sent: number;
  acked: number;
  unacked: number;
  delivered: number;
  expectedDeliveries: number;
  lost: number;
  duplicated: number;
  crossTalk: number;
  /** insert_value frames that skipped a version (PROTOCOL.md §3: none); the SDK heals them by resuming. */
  gaps: number;
  latency: LatencySummary;
  latencyBeforeFault: LatencySummary | null;
  latencyAfterFault: LatencySummary | null;
  resyncs: number;
  reconnects: number;
  selectionsSent: number;
  selectionsReceived: number;
  errors: Record<string, number>;
  converged: boolean;
  version: number;
  textLength: number;
  notes: string[];
  series: SeriesPoint[];
}

export interface Verdict {
  ok: boolean;
  converged: boolean;
  /** null when no fault was asked for. */
  isolated: boolean | null;
  /** p99 of the bystanders before the first fault, and the bound their p99 after it must stay under. */
  baselineP99Ms: number | null;
  boundMs: number | null;
  failures: string[];
  /** Not failures: reasons to doubt the numbers (the tool itself lagging). */
  warnings: string[];
}

export interface StressReport {
  tool: 'codespace-stress';
  startedAt: string;
  options: Omit<StressOptions, 'faults'>;
  editingMs: number;
  elapsedMs: number;
  bucketMs: number;
  faults: FaultReport[];
  codespaces: CodespaceReport[];
  /** How late the tool's own timers fired: when this is high, latencies include the tool's stalls. */
  toolLag: { p99: number | null; max: number | null; series: { t: number; max: number }[] };
  totals: Omit<CodespaceReport, 'index' | 'token' | 'role' | 'converged' | 'version' | 'textLength' | 'notes' | 'series' | 'latencyBeforeFault' | 'latencyAfterFault' | 'errors'> & { converged: number };
  verdict: Verdict;
}

export interface ReportInput {
  options: StressOptions;
  startedAt: Date;
  editingMs: number;
  elapsedMs: number;
  run: RunLedger;
  ends: EndState[];
  faults: FaultReport[];
}

function rounded(summary: LatencySummary): LatencySummary {
  return { count: summary.count, p50: roundMs(summary.p50), p99: roundMs(summary.p99), max: roundMs(summary.max) };
}

function tokenList(text: string): string[] {
  return tokensIn(text).map((token) => tokenOf(token.codespace, token.client, token.seq));
}

/** Counts what was acked, delivered and lost; lost = acked and missing for some client or the fresh joiner. */
function deliveryOf(ledger: CodespaceLedger, end: EndState): { acked: number; unacked: number; delivered: number; lost: number; duplicatedInText: number } {
  const textTokens = end.texts.map((text) => new Set(tokenList(text)));
  const freshTokens = 'code' in end.fresh ? new Set(tokenList(end.fresh.code)) : null;
  let acked = 0;
  let unacked = 0;
  let delivered = 0;
  let lost = 0;
  for (const author of ledger.clients) {
    for (let seq = 0; seq < author.sent; seq++) {
      if (!author.acked[seq]) {
        unacked++;
        continue;
      }
      acked++;
      const token = tokenOf(ledger.index, author.index, seq);
      let missing = freshTokens !== null && !freshTokens.has(token);
      for (const peer of ledger.clients) {
        if (peer === author) {
          missing ||= !textTokens[peer.index].has(token);
        } else if (peer.receivedCount(author.index, seq) > 0) {
          delivered++;
        } else {
          // Not seen live: it may have come in a full text after a resync; else it is lost.
          missing ||= !textTokens[peer.index].has(token);
        }
      }
      if (missing) lost++;
    }
  }
  // A token twice in a text is a change applied twice.
  const duplicatedInText = end.texts.reduce((sum, text, i) => sum + tokenList(text).length - textTokens[i].size, 0);
  return { acked, unacked, delivered, lost, duplicatedInText };
}

function convergenceNotes(end: EndState): string[] {
  const notes: string[] = [];
  if (!end.settled) notes.push(`not settled: ${end.settleNote}`);
  if (end.texts.some((text) => text !== end.texts[0])) notes.push(`texts differ (lengths ${end.texts.map((text) => text.length).join(', ')})`);
  if ('error' in end.fresh) notes.push(`fresh join failed: ${end.fresh.error}`);
  else if (end.fresh.code !== end.texts[0]) notes.push(`a fresh join reads other text (length ${end.fresh.code.length}, version ${end.fresh.version})`);
  return notes;
}

function codespaceReport(input: ReportInput, ledger: CodespaceLedger, end: EndState, faultAtMs: number | null, bucketMs: number): CodespaceReport {
  const { acked, unacked, delivered, lost, duplicatedInText } = deliveryOf(ledger, end);
  const notes = convergenceNotes(end);
  const errors: Record<string, number> = {};
  for (const client of ledger.clients) for (const code of client.errors) errors[code] = (errors[code] ?? 0) + 1;
  const sum = (pick: (client: CodespaceLedger['clients'][number]) => number): number => ledger.clients.reduce((total, client) => total + pick(client), 0);
  const resyncs = sum((client) => client.resyncs);
  const faulted = input.faults.some((fault) => fault.index === ledger.index && fault.injected);
  const window = (from: number, to: number): LatencySummary => rounded(summarize(samplesBetween(ledger.latencyTimes, ledger.latencies, from, to)));
  return {
    index: ledger.index,
    token: ledger.token,
    role: faulted ? 'faulted' : resyncs > 0 ? 'collateral' : 'bystander',
    clients: ledger.clients.length,
    sent: sum((client) => client.sent),
    acked,
    unacked,
    delivered,
    expectedDeliveries: acked * (ledger.clients.length - 1),
    lost,
    duplicated: sum((client) => client.duplicated) + duplicatedInText,
    crossTalk: sum((client) => client.crossTalk),
    gaps: sum((client) => client.gaps),
    latency: rounded(summarize(ledger.latencies)),
    latencyBeforeFault: faultAtMs === null ? null : window(0, faultAtMs),
    latencyAfterFault: faultAtMs === null ? null : window(faultAtMs, Infinity),
    resyncs,
    reconnects: end.reconnects.reduce((total, count) => total + count, 0),
    selectionsSent: sum((client) => client.selectionsSent),
    selectionsReceived: sum((client) => client.selectionsReceived),
    errors,
    converged: notes.length === 0,
    version: Math.max(0, ...end.versions),
    textLength: end.texts[0]?.length ?? 0,
    notes,
    series: bucketSeries(ledger.latencyTimes, ledger.latencies, bucketMs).map((point) => ({ ...point, p99: roundMs(point.p99)! })),
  };
}

function convergenceFailures(codespaces: CodespaceReport[]): string[] {
  const failures: string[] = [];
  for (const cs of codespaces) {
    if (!cs.converged) failures.push(`codespace ${cs.index}: not converged: ${cs.notes.join('; ')}`);
    if (cs.lost > 0) failures.push(`codespace ${cs.index}: ${cs.lost} acked edit(s) lost`);
    if (cs.duplicated > 0) failures.push(`codespace ${cs.index}: ${cs.duplicated} change(s) duplicated`);
    if (cs.crossTalk > 0) failures.push(`codespace ${cs.index}: ${cs.crossTalk} message(s) from another codespace`);
    if (cs.gaps > 0) failures.push(`codespace ${cs.index}: ${cs.gaps} insert_value(s) skipped a version`);
    if (cs.errors.sdk_exception || cs.errors.undecodable_frame) failures.push(`codespace ${cs.index}: the SDK threw on a frame`);
  }
  return failures;
}

/** Bystanders keep their latency; collateral is allowed only when a fault takes a whole worker. */
function isolationOf(input: ReportInput, codespaces: CodespaceReport[], faultAtMs: number | null): { failures: string[]; baseline: number | null; bound: number | null } {
  const failures = input.faults.filter((fault) => !fault.injected).map((fault) => `fault ${fault.kind}:${fault.index} not injected: ${fault.error}`);
  const workerFault = input.faults.some((fault) => fault.injected && fault.kind !== 'throw');
  for (const cs of codespaces.filter((candidate) => candidate.role === 'collateral' && !workerFault)) {
    failures.push(`codespace ${cs.index}: resynced, though only throw faults (one channel each) were injected`);
  }
  const bystanders = codespaces.filter((cs) => cs.role === 'bystander');
  if (faultAtMs === null || bystanders.length === 0) return { failures, baseline: null, bound: null };
  // The pooled p99 of every bystander before the fault: steadier than each one's few samples.
  const before = bystanders.flatMap((cs) => samplesBetween(input.run.codespaces[cs.index].latencyTimes, input.run.codespaces[cs.index].latencies, 0, faultAtMs));
  const baseline = roundMs(summarize(before).p99);
  if (baseline === null) return { failures, baseline: null, bound: null };
  const bound = Math.round(latencyBound(baseline, input.options.latencyFactor, input.options.latencySlackMs));
  for (const cs of bystanders) {
    const after = cs.latencyAfterFault?.p99 ?? null;
    if (after !== null && after > bound) failures.push(`codespace ${cs.index}: p99 ${after} ms after the fault, above the bound ${bound} ms (bystanders' p99 before it: ${baseline} ms)`);
  }
  return { failures, baseline, bound };
}

export function buildReport(input: ReportInput): StressReport {
  const faultAtMs = input.faults.some((fault) => fault.injected) ? Math.min(...input.faults.filter((fault) => fault.injected).map((fault) => fault.atMs)) : null;
  const bucketMs = Math.max(250, Math.ceil(input.elapsedMs / 200 / 250) * 250);
  const codespaces = input.run.codespaces.map((ledger, i) => codespaceReport(input, ledger, input.ends[i], faultAtMs, bucketMs));
  const failures = convergenceFailures(codespaces);
  const converged = failures.length === 0;
  let isolated: boolean | null = null;
  let baselineP99Ms: number | null = null;
  let boundMs: number | null = null;
  if (input.faults.length > 0) {
    const isolation = isolationOf(input, codespaces, faultAtMs);
    failures.push(...isolation.failures);
    isolated = isolation.failures.length === 0;
    baselineP99Ms = isolation.baseline;
    boundMs = isolation.bound;
  }
  const { faults: _faults, ...options } = input.options;
  const toolLag = toolLagOf(input.run, bucketMs);
  return {
    tool: 'codespace-stress',
    startedAt: input.startedAt.toISOString(),
    options,
    editingMs: input.editingMs,
    elapsedMs: input.elapsedMs,
    bucketMs,
    faults: input.faults,
    codespaces,
    toolLag,
    totals: totalsOf(input.run.codespaces, codespaces),
    verdict: { ok: converged && isolated !== false, converged, isolated, baselineP99Ms, boundMs, failures, warnings: lagWarnings(toolLag, boundMs) },
  };
}

function toolLagOf(run: RunLedger, bucketMs: number): StressReport['toolLag'] {
  const summary = rounded(summarize(run.lags));
  const series = bucketMax(run.lagTimes, run.lags, bucketMs).map((point) => ({ t: point.t, max: roundMs(point.max)! }));
  return { p99: summary.p99, max: summary.max, series };
}

/** A tool that stalls for half the bound can fail a healthy server on its own. */
function lagWarnings(toolLag: StressReport['toolLag'], boundMs: number | null): string[] {
  const limit = (boundMs ?? 100) / 2;
  if (toolLag.max === null || toolLag.max < limit) return [];
  return [`the tool's own event loop lagged up to ${toolLag.max} ms (p99 ${toolLag.p99} ms): part of every latency is the tool's; run fewer clients or a lower --rate per tool process`];
}

function totalsOf(ledgers: CodespaceLedger[], codespaces: CodespaceReport[]): StressReport['totals'] {
  const sum = (pick: (cs: CodespaceReport) => number): number => codespaces.reduce((total, cs) => total + pick(cs), 0);
  return {
    clients: sum((cs) => cs.clients),
    sent: sum((cs) => cs.sent),
    acked: sum((cs) => cs.acked),
    unacked: sum((cs) => cs.unacked),
    delivered: sum((cs) => cs.delivered),
    expectedDeliveries: sum((cs) => cs.expectedDeliveries),
    lost: sum((cs) => cs.lost),
    duplicated: sum((cs) => cs.duplicated),
    crossTalk: sum((cs) => cs.crossTalk),
    gaps: sum((cs) => cs.gaps),
    latency: rounded(summarize(ledgers.flatMap((ledger) => ledger.latencies))),
    resyncs: sum((cs) => cs.resyncs),
    reconnects: sum((cs) => cs.reconnects),
    selectionsSent: sum((cs) => cs.selectionsSent),
    selectionsReceived: sum((cs) => cs.selectionsReceived),
    converged: codespaces.filter((cs) => cs.converged).length,
  };
}
