/**
 * The stress tool's HTML report (src/stress/report_html.ts): a stretch without samples is a gap,
 * not a slope; the small charts have axes; the legend says what "collateral" means; and the
 * report of a real run with a hang opens in a real browser with no console errors.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { defaultOptions } from '../src/stress/options.ts';
import { runsOf } from '../src/stress/report_html.ts';
import { runStress } from '../src/stress/run.ts';
import { launchBrowser, screenshot } from './support/browser.ts';
import { startTestServer, type TestServer } from './support/server.ts';


let server: TestServer | null = null;
let dir: string | null = null;

afterEach(async () => {
  await server?.close();
  server = null;
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = null;
});

describe('runsOf', () => {
  it('cuts a series where a bucket had no sample', () => {
    const points = [0, 250, 500, 1500, 1750, 3000].map((t) => ({ t }));
    expect(runsOf(points, 250).map((run) => run.map((point) => point.t))).toEqual([[0, 250, 500], [1500, 1750], [3000]]);
    expect(runsOf([], 250)).toEqual([]);
  });
});

describe('the HTML report of a run with a hang', () => {
  it('draws the hang as a gap, gives every chart axes, explains the roles, and opens without console errors', async () => {
    server = await startTestServer({ workers: 2, faultInjection: true, heartbeatIntervalMs: 100, heartbeatTimeoutMs: 800 });
    dir = mkdtempSync(join(tmpdir(), 'codespace-report-'));
    const htmlPath = join(dir, 'report.html');
    const report = await runStress({
      ...defaultOptions(), url: server.url, quiet: true, settleTimeoutMs: 8000,
      channels: 4, clients: 2, rate: 10, durationMs: 3000,
      faults: [{ kind: 'hang', index: 1, atMs: 1000 }],
      htmlPath, latencySlackMs: 2000,
    });
    const html = readFileSync(htmlPath, 'utf8');
    const faulted = report.codespaces[1];
    expect(faulted.role).toBe('faulted');
    // Nothing reached the hung codespace's clients while its worker spun: buckets without a sample.
    const runs = runsOf(faulted.series, report.bucketMs);
    expect(runs.length).toBeGreaterThan(1);
    const title = `<title>codespace 1 (faulted)</title>`;
    // Each run is its own line (or dot), in the big chart and in its small one.
    expect(html.split(title).length - 1).toBe(2 * runs.length);

    const smalls = [...html.matchAll(/<figure>[\s\S]*?<\/figure>/g)].map((match) => match[0]);
    expect(smalls).toHaveLength(4);
    for (const small of smalls) {
      expect(small).toContain('class="y-tick"');
      expect(small).toContain('class="x-tick"');
      expect(small).toMatch(/>1ms</);
      expect(small).toMatch(/>0s</);
    }
    expect(html).toMatch(/<dt[^>]*>collateral<\/dt><dd>a codespace that was not faulted but restarted anyway/);
    expect(html).not.toMatch(/<script|https?:\/\/(?!www\.w3\.org)/);

      const browser = await launchBrowser();
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      const problems: string[] = [];
      page.on('console', (message) => {
        if (message.type() === 'error') problems.push(message.text());
      });
      page.on('pageerror', (error) => problems.push(error.message));
      await page.goto(pathToFileURL(htmlPath).href);
      expect(await page.locator('svg').count()).toBe(5);
      expect(await page.textContent('h1')).toMatch(/PASS|FAIL/);
      await screenshot(page, 'stress-report-hang');
      expect(problems).toEqual([]);
    } finally {
      await browser.close();
    }
  }, 60_000);
});
