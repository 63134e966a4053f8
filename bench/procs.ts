/**
 * The processes a benchmark run starts: servers on free loopback ports, the load generator, a
 * throwaway redis-server; and what /proc says about them (CPU of a process tree, RSS).
 */
import { fork, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { appendFileSync, existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from './loadgen.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CLOCK_TICKS = 100; // USER_HZ on Linux

export interface ServerProcess {
  readonly name: string;
  readonly pid: number;
  readonly port: number;
  stop(): Promise<void>;
}

/** Child pids of `pid`, recursively (INSTANCES forks acceptor processes). */
export function processTree(pid: number): number[] {
  const pids = [pid];
  for (let i = 0; i < pids.length; i++) {
    let tasks: string[] = [];
    try {
      tasks = readdirSync(`/proc/${pids[i]}/task`);
    } catch {
      continue;
    }
    for (const task of tasks) {
      try {
        const children = readFileSync(`/proc/${pids[i]}/task/${task}/children`, 'utf8').trim();
        if (children) pids.push(...children.split(/\s+/).map(Number));
      } catch {
        // the task ended meanwhile
      }
    }
  }
  return pids;
}

/** CPU seconds (user + system) used so far by `pid` and its descendants. */
export function treeCpuSeconds(pid: number): number {
  let ticks = 0;
  for (const each of processTree(pid)) {
    try {
      const stat = readFileSync(`/proc/${each}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]); // utime, stime
    } catch {
      // gone
    }
  }
  return ticks / CLOCK_TICKS;
}

/**
 * CPU seconds (user + system) so far of each thread of `pid` and its descendants, keyed
 * `pid/tid`; a process's own thread (its event loop) has tid = pid. Node names every thread
 * "node", so the caller tells worker threads from V8's and libuv's helpers by what they used.
 */
export function threadCpuSeconds(pid: number): Map<string, number> {
  const seconds = new Map<string, number>();
  for (const each of processTree(pid)) {
    let tasks: string[] = [];
    try {
      tasks = readdirSync(`/proc/${each}/task`);
    } catch {
      continue;
    }
    for (const task of tasks) {
      try {
        const stat = readFileSync(`/proc/${each}/task/${task}/stat`, 'utf8');
        const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        seconds.set(`${each}/${task}`, (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS);
      } catch {
        // the thread ended meanwhile
      }
    }
  }
  return seconds;
}

/**
 * What each thread used between two readings: the event loops (`main`, one per process), the
 * busiest other threads one by one (`threads`, highest first: the worker threads running the
 * channels, where there are any), and the rest (`helpers`: GC, compiler, libuv pool).
 */
export function threadCpuBetween(before: Map<string, number>, after: Map<string, number>, busiest: number): { main: number; threads: number[]; helpers: number } {
  let main = 0;
  const others: number[] = [];
  for (const [key, cpu] of after) {
    const used = cpu - (before.get(key) ?? 0);
    const [pid, tid] = key.split('/');
    if (pid === tid) main += used;
    else others.push(used);
  }
  others.sort((a, b) => b - a);
  const threads = others.slice(0, busiest);
  const helpers = others.slice(busiest).reduce((sum, each) => sum + each, 0);
  return { main, threads, helpers };
}

/** Resident set size of `pid` and its descendants, in bytes. */
export function treeRssBytes(pid: number): number {
  let kib = 0;
  for (const each of processTree(pid)) {
    try {
      const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${each}/status`, 'utf8'));
      if (match) kib += Number(match[1]);
    } catch {
      // gone
    }
  }
  return kib * 1024;
}

function waitForLine(child: ChildProcess, pattern: RegExp, timeoutMs: number, what: string): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => reject(new Error(`${what} did not start within ${timeoutMs} ms: ${out} ${err}`)), timeoutMs);
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const match = pattern.exec(out);
      if (match) {
        clearTimeout(timer);
        resolve(match);
      }
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      err = (err + chunk.toString()).slice(-2000);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited with ${code}: ${out} ${err}`));
    });
  });
}

/**
 * Every server and generator this run started: killed if the run itself is stopped (Ctrl-C, or
 * `make bench`'s timeout), when no `finally` gets to stop them, so none is left running.
 */
const started = new Set<ChildProcess>();

function track(child: ChildProcess): ChildProcess {
  started.add(child);
  child.once('exit', () => started.delete(child));
  return child;
}

function killStarted(): void {
  for (const child of started) {
    for (const pid of child.pid === undefined ? [] : processTree(child.pid).reverse()) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
}

process.once('exit', killStarted);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    killStarted();
    process.exit(128 + (signal === 'SIGINT' ? 2 : 15));
  });
}

async function stopTree(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.pid === undefined) return;
  const pids = processTree(child.pid);
  const exited = new Promise((resolve) => child.once('exit', resolve));
  for (const pid of pids.reverse()) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 3_000))]);
}

export type ServerKind = 'naive' | 'floor' | 'codespace';

/** Starts a server on a free port; `env` adds to the bench defaults. */
export async function startServerProcess(name: string, kind: ServerKind, env: Record<string, string> = {}, root = ROOT): Promise<ServerProcess> {
  // The server as `make run` starts it (built JavaScript), where the checkout has a build.
  const built = kind === 'codespace' && existsSync(join(root, 'dist/main.js'));
  const script = kind === 'naive' ? 'bench/naive_server.ts' : kind === 'floor' ? 'bench/floor_relay.ts' : 'src/main.ts';
  const args = built ? ['dist/main.js'] : ['--import', 'tsx', script];
  const child = track(spawn(process.execPath, args, {
    cwd: kind === 'codespace' ? root : ROOT,
    env: {
      ...process.env,
      PORT: '0',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      // The default (200/s per connection) would throttle the sweep, not measure the server.
      RATE_LIMIT_PER_S: '1000000',
      RATE_LIMIT_BURST: '2000000',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  }));
  // BENCH_SERVER_LOG=<file>: the servers' log lines (stderr) appended there, for a closer look.
  if (process.env.BENCH_SERVER_LOG) child.stderr?.on('data', (chunk: Buffer) => appendFileSync(process.env.BENCH_SERVER_LOG!, `[${name}] ${chunk}`));
  const pattern = kind === 'codespace' ? /listening on ws:\/\/[^:]+:(\d+)\// : /naive listening on (\d+)/;
  const match = await waitForLine(child, pattern, 30_000, name);
  return { name, pid: child.pid!, port: Number(match[1]), stop: () => stopTree(child) };
}

export interface LoadGenerator {
  readonly pid: number;
  run<R = Record<string, unknown>>(command: Command, timeoutMs?: number): Promise<R>;
  stop(): Promise<void>;
}

export function startLoadGenerator(): LoadGenerator {
  const child = track(fork(fileURLToPath(new URL('./loadgen.ts', import.meta.url)), [], {
    cwd: ROOT,
    execArgv: ['--import', 'tsx', '--max-old-space-size=2048'],
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  }));
  return {
    pid: child.pid!,
    run<R>(command: Command, timeoutMs = 120_000): Promise<R> {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`load generator: ${command.cmd} took over ${timeoutMs} ms`)), timeoutMs);
        child.once('message', (result) => {
          clearTimeout(timer);
          const value = result as R & { error?: string };
          if (value.error) reject(new Error(`load generator: ${value.error}`));
          else resolve(value);
        });
        child.send(command);
      });
    },
    stop: () => stopTree(child),
  };
}

export function hasRedisServer(): boolean {
  return spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;
}
