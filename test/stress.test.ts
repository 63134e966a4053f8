/**
 * The stress tool: its pure parts (options, percentiles, the frame ledger), a short run against a
 * real server with a fault that passes, and runs through a tampering proxy that it must fail.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ClientLedger, CodespaceLedger, RunLedger } from '../src/stress/ledger.ts';
import { bucketSeries, latencyBound, percentile, summarize } from '../src/stress/metrics.ts';
import { defaultOptions, parseStressArgs, type StressOptions } from '../src/stress/options.ts';
import { runStress } from '../src/stress/run.ts';
import { tokenBoundary } from '../src/stress/stress_client.ts';
import { startTamperProxy, type TamperProxy } from './support/tamper_proxy.ts';
import { startTestServer, type TestServer } from './support/server.ts';

let server: TestServer | null = null;
let proxy: TamperProxy | null = null;
let dir: string | null = null;

afterEach(async () => {
  await proxy?.close();
  proxy = null;
  await server?.close();
  server = null;
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = null;
});

function optionsFor(url: string, overrides: Partial<StressOptions>): StressOptions {
  return { ...defaultOptions(), url, quiet: true, settleTimeoutMs: 5000, ...overrides };
}

describe('stress options', () => {
  it('parses the issue\'s fault list with --fault-at, and kind:index@time', () => {
    const options = parseStressArgs(['--channels', '10', '--fault', 'hang:3,throw:7', '--fault-at', '4s', '--duration', '10'])!;
    expect(options.faults).toEqual([{ kind: 'hang', index: 3, atMs: 4000 }, { kind: 'throw', index: 7, atMs: 4000 }]);
    expect(parseStressArgs(['--fault=oom:2@1500ms', '--duration=2m'])!.faults).toEqual([{ kind: 'oom', index: 2, atMs: 1500 }]);
    expect(parseStressArgs(['--fault', '1:throw', '--duration', '9'])!.faults).toEqual([{ kind: 'throw', index: 1, atMs: 3000 }]);
    expect(parseStressArgs(['--help'])).toBeNull();
    expect(parseStressArgs([])!.tokenPrefix).toMatch(/^tmp-stress-[a-z0-9]+-$/);
  });

  it.each([
    [['--channels', '0'], '--channels'],
    [['--clients', 'many'], '--clients'],
    [['--rate', '500'], '--rate'],
    [['--duration', '5x'], '--duration'],
    [['--fault', 'boom:1'], '--fault'],
    [['--fault', 'throw:12', '--channels', '4'], '--fault'],
    [['--fault', 'throw:1@20s', '--duration', '10'], '--fault'],
    [['--fault-at', '3'], '--fault-at'],
    [['--codec', 'xml'], '--codec'],
    [['--url', 'http://x'], '--url'],
    [['--token-prefix', 'a b'], '--token-prefix'],
    [['--bogus'], '--bogus'],
    [['--json'], '--json'],
  ])('refuses %j, naming %s', (argv, name) => {
    expect(() => parseStressArgs(argv)).toThrow(new RegExp(`^${name}: `));
  });
});

describe('stress metrics', () => {
  it('takes nearest-rank percentiles', () => {
    const values = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(values, 50)).toBe(50);
    expect(percentile(values, 99)).toBe(99);
    expect(percentile(values, 100)).toBe(100);
    expect(percentile([7], 99)).toBe(7);
    expect(percentile([], 50)).toBeNull();
    expect(summarize([5, 1, 3, 2, 4])).toEqual({ count: 5, p50: 3, p99: 5, max: 5 });
    expect(summarize([])).toEqual({ count: 0, p50: null, p99: null, max: null });
  });

  it('buckets samples by time and bounds latency after a fault', () => {
    expect(bucketSeries([10, 200, 260, 900], [1, 3, 8, 2], 250)).toEqual([
      { t: 0, p99: 3, count: 2 },
      { t: 250, p99: 8, count: 1 },
      { t: 750, p99: 2, count: 1 },
    ]);
    expect(latencyBound(10, 2, 50)).toBe(60);
    expect(latencyBound(100, 2, 50)).toBe(200);
  });

  it('places tokens at boundaries only', () => {
    expect(tokenBoundary('<0.0.0><0.1.0>', 3)).toBe(0);
    expect(tokenBoundary('<0.0.0><0.1.0>', 7)).toBe(7);
    expect(tokenBoundary('<0.0.0><0.1.0>', 14)).toBe(14);
  });
});

describe('stress ledger', () => {
  it('counts foreign tokens as cross-talk, a version seen twice as a duplicate, a skipped one as a gap', () => {
    const run = new RunLedger();
    const codespace = new CodespaceLedger(run, 0, 'tmp-a');
    const [author, peer] = [new ClientLedger(codespace, 0, 'json'), new ClientLedger(codespace, 1, 'json')];
    codespace.clients.push(author, peer);
    const token = author.nextToken(performance.now());
    author.tap().outgoing(JSON.stringify({ operation: 'insert_value', changes: [{ from: 0, to: 0, insert: token }], ref: 's0-1' }));
    author.tap().incoming(JSON.stringify({ operation: 'ack', version: 1, ref: 's0-1' }));
    const broadcast = JSON.stringify({ operation: 'insert_value', sender: 'x', version: 1, changes: [{ from: 0, to: 0, insert: token }], doc_length: 0 });
    peer.tap().incoming(broadcast);
    expect(author.acked[0]).toBe(true);
    expect(peer.receivedCount(0, 0)).toBe(1);
    expect(codespace.latencies).toHaveLength(1);
    peer.tap().incoming(broadcast);
    expect(peer.duplicated).toBe(1);
    peer.tap().incoming(JSON.stringify({ operation: 'insert_value', sender: 'y', version: 2, changes: [{ from: 0, to: 0, insert: '<5.0.0>' }], doc_length: 7 }));
    expect(peer.crossTalk).toBe(1);
    // Version 4 after 1: a gap (the SDK resumes and gets 2..4), not counted as received.
    peer.tap().incoming(JSON.stringify({ operation: 'insert_value', sender: 'x', version: 4, changes: [{ from: 0, to: 0, insert: '<0.0.9>' }], doc_length: 7 }));
    expect(peer.gaps).toBe(1);
    expect(peer.receivedCount(0, 9)).toBe(0);
  });

  it('records a connection without a client key, or with another key than the client\'s first, as an error', () => {
    const codespace = new CodespaceLedger(new RunLedger(), 0, 'tmp-a');
    const client = new ClientLedger(codespace, 0, 'json');
    const key = 'k'.repeat(22);
    client.tap().opening(`ws://h/codespace/tmp-a/?client=${key}`);
    client.tap().opening(`ws://h/codespace/tmp-a/?version=3&client=${key}`);
    expect(client.errors).toEqual([]);
    client.tap().opening(`ws://h/codespace/tmp-a/?version=4&client=${'j'.repeat(22)}`);
    client.tap().opening('ws://h/codespace/tmp-a/?version=4');
    expect(client.errors).toEqual(['client_key_changed', 'no_client_key']);
  });
});

describe('runStress', () => {
  it('passes a short run with a throw fault: converged, isolated, JSON and HTML written', async () => {
    server = await startTestServer({ faultInjection: true, heartbeatIntervalMs: 100, heartbeatTimeoutMs: 800 });
    dir = mkdtempSync(join(tmpdir(), 'codespace-stress-'));
    const options = optionsFor(server.url, {
      channels: 4,
      clients: 3,
      rate: 10,
      durationMs: 2000,
      faults: [{ kind: 'throw', index: 2, atMs: 800 }],
      jsonPath: join(dir, 'report.json'),
      htmlPath: join(dir, 'report.html'),
      // Two shared cores: a loaded neighbour must not fail the run on latency alone.
      latencySlackMs: 500,
    });
    const report = await runStress(options);
    expect(report.verdict.failures).toEqual([]);
    expect(report.verdict).toMatchObject({ ok: true, converged: true, isolated: true });
    expect(report.faults).toMatchObject([{ kind: 'throw', index: 2, injected: true }]);
    for (const cs of report.codespaces) {
      expect(cs).toMatchObject({ converged: true, lost: 0, duplicated: 0, crossTalk: 0, gaps: 0, unacked: 0 });
      expect(cs.sent).toBeGreaterThan(0);
      expect(cs.acked).toBe(cs.sent);
      expect(cs.delivered).toBe(cs.expectedDeliveries);
      expect(cs.latency.p99).toBeGreaterThan(0);
      expect(cs.role).toBe(cs.index === 2 ? 'faulted' : 'bystander');
    }
    expect(report.codespaces[2].resyncs).toBeGreaterThan(0);
    expect(report.totals.selectionsReceived).toBeGreaterThan(0);
    expect(server.logs.some((line) => line.event === 'fault_injected' && line.fields.codespace === `${options.tokenPrefix}2`)).toBe(true);

    const written = JSON.parse(readFileSync(options.jsonPath!, 'utf8'));
    expect(written.verdict.ok).toBe(true);
    expect(written.codespaces).toHaveLength(4);
    expect(written.codespaces[0].series.length).toBeGreaterThan(2);
    expect(written.toolLag.series.length).toBeGreaterThan(2);
    const html = readFileSync(options.htmlPath!, 'utf8');
    expect(html).toContain('<svg');
    expect(html).toContain('class="fault-marker"');
    expect(html).toContain('class="tool-lag"');
    expect(html).toContain('PASS');
    expect(html).not.toMatch(/<script|https?:\/\/(?!www\.w3\.org)/);
  }, 30_000);

  it('catches cross-talk and loss injected by a proxy, and flags only the tampered codespaces', async () => {
    server = await startTestServer();
    proxy = await startTamperProxy(server.url);
    const options = optionsFor(proxy.url, { channels: 4, clients: 3, rate: 10, durationMs: 1500, settleTimeoutMs: 1500, codec: 'mixed' });
    const tamper = setTimeout(() => {
      proxy!.crossTalk(`${options.tokenPrefix}0`, `${options.tokenPrefix}1`);
      proxy!.dropInserts(`${options.tokenPrefix}2`);
    }, 500);
    const report = await runStress(options).finally(() => clearTimeout(tamper));
    expect(proxy.tampered).toBeGreaterThan(0);
    expect(report.verdict.ok).toBe(false);
    expect(report.verdict.converged).toBe(false);
    const [source, crossed, dropped, clean] = report.codespaces;
    expect(crossed.crossTalk).toBeGreaterThan(0);
    expect(dropped.lost).toBeGreaterThan(0);
    expect(dropped.converged).toBe(false);
    for (const untouched of [source, clean]) expect(untouched).toMatchObject({ converged: true, lost: 0, crossTalk: 0, duplicated: 0 });
    expect(report.verdict.failures.some((failure) => failure.startsWith('codespace 1:') && failure.includes('another codespace'))).toBe(true);
    expect(report.verdict.failures.some((failure) => failure.startsWith('codespace 2:') && failure.includes('lost'))).toBe(true);
  }, 30_000);

  it('fails isolation when the server refuses the fault (FAULT_INJECTION off)', async () => {
    server = await startTestServer({ faultInjection: false });
    const report = await runStress(optionsFor(server.url, { channels: 1, clients: 2, rate: 10, durationMs: 600, faults: [{ kind: 'throw', index: 0, atMs: 100 }] }));
    expect(report.faults).toMatchObject([{ injected: false }]);
    expect(report.verdict).toMatchObject({ ok: false, converged: true, isolated: false });
    expect(report.verdict.failures.join('\n')).toContain('FAULT_INJECTION=1');
  });
});

describe('codespace-stress CLI', () => {
  function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      const child = spawn(process.execPath, ['bin/codespace-stress.mjs', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      child.on('exit', (code) => {
        clearTimeout(timer);
        resolve({ code, stdout, stderr });
      });
    });
  }

  it('exits 2 naming the bad option, 0 with the table after a passing run', async () => {
    const bad = await cli(['--channels', 'x']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--channels');
    server = await startTestServer();
    const good = await cli(['--url', server.url, '--channels', '2', '--clients', '2', '--duration', '1s', '--rate', '10']);
    expect(good.stderr).toMatch(/sent \d+/);
    expect(good.stdout).toMatch(/converged/);
    expect(good.stdout).toContain('verdict: PASS');
    expect(good.code).toBe(0);
  }, 30_000);
});
