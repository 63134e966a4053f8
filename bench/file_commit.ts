/**
 * The file backplane alone, without a server: `channels` channels each committing one edit every
 * `intervalMs` (awaiting each, as a channel does) for `seconds`, in this thread; prints commit
 * latency p50/p99 and how many commits shared each LMDB transaction (one sync each).
 *
 *   node --import tsx bench/file_commit.ts [channels=100] [intervalMs=100] [seconds=3]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileBackplane } from '../src/backplane/file_backplane.ts';

const [channels = 100, intervalMs = 100, seconds = 3] = process.argv.slice(2).map(Number);
const dir = mkdtempSync(join(tmpdir(), 'codespace-file-commit-'));
const backplane = new FileBackplane({ path: dir, history: 1000, ttlS: 0, tmpTtlS: 0 });
const latenciesMs: number[] = [];
const firstTxn = backplane.lastTxnId;
const end = performance.now() + seconds * 1000;
await Promise.all(Array.from({ length: channels }, async (_, channel) => {
  const epoch = (await backplane.load(`doc-${channel}`)).epoch;
  for (let version = 1; performance.now() < end; version++) {
    const started = performance.now();
    const result = await backplane.commit(`doc-${channel}`, { version, changes: [{ from: 0, to: 0, insert: 'ab' }], docLength: 2 * (version - 1), sender: 's', ref: `r${version}` }, epoch);
    if (!result.ok) throw new Error(JSON.stringify(result));
    latenciesMs.push(performance.now() - started);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}));
const transactions = backplane.lastTxnId - firstTxn;
await backplane.close();
rmSync(dir, { recursive: true, force: true });
latenciesMs.sort((a, b) => a - b);
const at = (q: number): string => latenciesMs[Math.min(latenciesMs.length - 1, Math.floor(q * latenciesMs.length))].toFixed(2);
process.stdout.write(`${latenciesMs.length} commits from ${channels} channels in ${transactions} transactions (${(latenciesMs.length / transactions).toFixed(1)} per sync): commit p50 ${at(0.5)} ms, p99 ${at(0.99)} ms\n`);
