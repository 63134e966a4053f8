/**
 * One stress run: opens `channels` × `clients` SDK clients, has them edit for `duration`, injects
 * the faults on time, waits for everyone to sync, reads each codespace afresh, and builds the
 * report (written as JSON and HTML when asked). `runStress` is the programmatic way in.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { CodespaceLedger, ClientLedger, RunLedger } from './ledger.ts';
import { summarize } from './metrics.ts';
import { validateStressOptions, type FaultPlan, type StressOptions } from './options.ts';
import type { ProgressSink, ProgressSnapshot } from './progress.ts';
import { freshJoin, injectFault } from './raw_socket.ts';
import { buildReport, type EndState, type FaultReport, type StressReport } from './report.ts';
import { renderHtmlReport } from './report_html.ts';
import { codecOf, StressClient } from './stress_client.ts';

export interface RunHooks {
  progress?: ProgressSink;
}

/** Connections opened at once: a burst of thousands would only queue in the acceptor. */
const OPEN_CONCURRENCY = 16;
const PROGRESS_EVERY_MS = 250;
const RECENT_WINDOW_MS = 1000;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Runs `task` over `items`, at most `limit` at a time; after a failure starts no more, and throws it once all stopped. */
async function inBatches<T, R>(items: readonly T[], limit: number, task: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  let failed = false;
  const lanes = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length && !failed) {
      const i = next++;
      try {
        results[i] = await task(items[i]);
      } catch (error) {
        failed = true;
        throw error;
      }
    }
  });
  const outcomes = await Promise.allSettled(lanes);
  const failure = outcomes.find((outcome) => outcome.status === 'rejected');
  if (failure) throw (failure as PromiseRejectedResult).reason;
  return results;
}

async function openClients(options: StressOptions, run: RunLedger): Promise<StressClient[][]> {
  for (let cs = 0; cs < options.channels; cs++) {
    const ledger = new CodespaceLedger(run, cs, `${options.tokenPrefix}${cs}`);
    for (let c = 0; c < options.clients; c++) ledger.clients.push(new ClientLedger(ledger, c, codecOf(options.codec, c)));
    run.codespaces.push(ledger);
  }
  const all: StressClient[] = [];
  try {
    await inBatches(run.codespaces.flatMap((ledger) => ledger.clients), OPEN_CONCURRENCY, async (ledger) => {
      const client = new StressClient(options.url, ledger);
      all.push(client);
      await client.opened().catch((error: Error) => {
        throw new Error(`client ${ledger.index} of ${ledger.codespace.token} at ${options.url}: ${error.message}`);
      });
      run.opened++;
    });
  } catch (error) {
    for (const client of all) client.close();
    throw error;
  }
  return run.codespaces.map((ledger) => ledger.clients.map((clientLedger) => all.find((client) => client.ledger === clientLedger)!));
}

function scheduleFaults(options: StressOptions, injected: FaultReport[]): Promise<void>[] {
  return options.faults.map((plan: FaultPlan) => sleep(plan.atMs).then(async () => {
    const token = `${options.tokenPrefix}${plan.index}`;
    const report: FaultReport = { kind: plan.kind, index: plan.index, token, atMs: plan.atMs, injected: false, error: null };
    injected.push(report);
    try {
      const refusal = await injectFault(options.url, token, plan.kind);
      report.injected = refusal === null;
      if (refusal !== null) report.error = refusal === 'unknown_operation' ? 'unknown_operation (is the server started with FAULT_INJECTION=1?)' : refusal;
    } catch (error) {
      report.error = (error as Error).message;
    }
  }));
}

function snapshotOf(run: RunLedger, clients: StressClient[], phase: ProgressSnapshot['phase'], options: StressOptions, faults: FaultReport[]): ProgressSnapshot {
  const now = phase === 'opening' ? 0 : performance.now() - run.startedAt;
  const recent: number[] = [];
  for (const ledger of run.codespaces) {
    for (let i = ledger.latencyTimes.length - 1; i >= 0 && ledger.latencyTimes[i] >= now - RECENT_WINDOW_MS; i--) recent.push(ledger.latencies[i]);
  }
  return {
    phase,
    opened: run.opened,
    clients: options.channels * options.clients,
    elapsedMs: now,
    durationMs: options.durationMs,
    sent: run.sent,
    acked: run.acked,
    deliveries: run.deliveries,
    recentP99Ms: summarize(recent).p99,
    resyncs: run.resyncs,
    reconnects: clients.reduce((sum, client) => sum + client.sdk.reconnects, 0),
    faultsFired: faults.length,
    faultsPlanned: options.faults.length,
  };
}

const LAG_SAMPLE_MS = 50;

/** Samples how late a 50 ms timer fires, until the returned function is called. */
function sampleLag(run: RunLedger): () => void {
  let expected = performance.now() + LAG_SAMPLE_MS;
  const timer = setInterval(() => {
    const now = performance.now();
    run.lagTimes.push(now - run.startedAt);
    run.lags.push(Math.max(0, now - expected));
    expected = now + LAG_SAMPLE_MS;
  }, LAG_SAMPLE_MS);
  return () => clearInterval(timer);
}

/** Why a codespace is not settled yet, or '' when every client is synced, open and at one version. */
function unsettled(clients: StressClient[]): string {
  const version = clients[0].sdk.version;
  const behind = clients.filter((client) => !client.sdk.synced || client.sdk.state !== 'open' || client.sdk.version !== version);
  if (behind.length === 0) return '';
  return clients.map((client) => `c${client.ledger.index} v${client.sdk.version}${client.sdk.synced ? '' : ' pending'}${client.sdk.state === 'open' ? '' : ` ${client.sdk.state}`}`).join(', ');
}

async function settle(rooms: StressClient[][], timeoutMs: number): Promise<string[]> {
  const deadline = performance.now() + timeoutMs;
  let notes = rooms.map(unsettled);
  while (notes.some(Boolean) && performance.now() < deadline) {
    await sleep(25);
    notes = rooms.map(unsettled);
  }
  return notes;
}

async function endStates(options: StressOptions, rooms: StressClient[][], notes: string[]): Promise<EndState[]> {
  const fresh = await inBatches(rooms.map((_, cs) => `${options.tokenPrefix}${cs}`), OPEN_CONCURRENCY, (token) =>
    freshJoin(options.url, token).catch((error: Error) => ({ error: error.message })));
  return rooms.map((clients, cs) => ({
    settled: notes[cs] === '',
    settleNote: notes[cs] === '' ? '' : `after ${options.settleTimeoutMs} ms: ${notes[cs]}`,
    texts: clients.map((client) => client.sdk.text),
    versions: clients.map((client) => client.sdk.version),
    reconnects: clients.map((client) => client.sdk.reconnects),
    fresh: fresh[cs],
  }));
}

function writeReports(options: StressOptions, report: StressReport): void {
  if (options.jsonPath) {
    mkdirSync(dirname(options.jsonPath), { recursive: true });
    writeFileSync(options.jsonPath, `${JSON.stringify(report, null, 2)}\n`);
  }
  if (options.htmlPath) {
    mkdirSync(dirname(options.htmlPath), { recursive: true });
    writeFileSync(options.htmlPath, renderHtmlReport(report));
  }
}

/** Runs the whole stress test and returns its report; throws if the clients cannot connect. */
export async function runStress(options: StressOptions, hooks: RunHooks = {}): Promise<StressReport> {
  validateStressOptions(options);
  const startedAt = new Date();
  const run = new RunLedger();
  const faults: FaultReport[] = [];
  let clients: StressClient[] = [];
  let phase: ProgressSnapshot['phase'] = 'opening';
  let stopLag = (): void => {};
  const progressTimer = hooks.progress ? setInterval(() => hooks.progress!.update(snapshotOf(run, clients, phase, options, faults)), PROGRESS_EVERY_MS) : null;
  try {
    const rooms = await openClients(options, run);
    clients = rooms.flat();
    phase = 'editing';
    run.startedAt = performance.now();
    stopLag = sampleLag(run);
    for (const client of clients) client.start(options.rate, run.startedAt);
    const faultsDone = scheduleFaults(options, faults);
    await sleep(options.durationMs);
    for (const client of clients) client.stop();
    const editingMs = performance.now() - run.startedAt;
    phase = 'settling';
    await Promise.all(faultsDone);
    const notes = await settle(rooms, options.settleTimeoutMs);
    phase = 'checking';
    const ends = await endStates(options, rooms, notes);
    faults.sort((a, b) => a.atMs - b.atMs || a.index - b.index);
    stopLag();
    const report = buildReport({ options, startedAt, editingMs: Math.round(editingMs), elapsedMs: Math.round(performance.now() - run.startedAt), run, ends, faults });
    writeReports(options, report);
    return report;
  } finally {
    stopLag();
    if (progressTimer) clearInterval(progressTimer);
    hooks.progress?.done();
    for (const client of clients) client.close();
  }
}
