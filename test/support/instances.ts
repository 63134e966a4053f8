/**
 * Real server processes (`src/main.ts`, as `make run` starts them) for multi-instance tests:
 * each on its own free port, killed with SIGKILL when a test wants an instance to die.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface Instance {
  readonly url: string;
  readonly port: number;
  readonly process: ChildProcess;
  readonly logs: Record<string, unknown>[];
  /** `kill -9`: no flush, no close frames. */
  kill(): Promise<void>;
  /** SIGTERM, then wait for the exit code. */
  stop(): Promise<number | null>;
}

export interface InstanceOptions {
  /** `ulimit -n` for the instance (soft and hard), e.g. to exhaust its file descriptors. */
  maxOpenFiles?: number;
}

export async function startInstance(env: Record<string, string>, options: InstanceOptions = {}): Promise<Instance> {
  // Under Bun (the suite runs there too) the instances run on Bun, which loads .ts by itself.
  const args = (globalThis as { Bun?: unknown }).Bun ? ['src/main.ts'] : ['--import', 'tsx', 'src/main.ts'];
  // `exec` keeps the shell's pid: `instance.process.pid` is the server's own (for /proc/<pid>/fd).
  const [command, ...rest] = options.maxOpenFiles === undefined
    ? [process.execPath, ...args]
    : ['sh', '-c', `ulimit -n ${options.maxOpenFiles} && exec "$0" "$@"`, process.execPath, ...args];
  const child = spawn(command, rest, {
    cwd: ROOT,
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', WORKERS: '1', CHANNEL_GRACE_MS: '200', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Record<string, unknown>[] = [];
  let stderrTail = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderrTail = (stderrTail + chunk.toString()).slice(-4000);
    for (const line of chunk.toString().split('\n')) {
      if (line.startsWith('{')) {
        try {
          logs.push(JSON.parse(line));
        } catch {
          // a line split across chunks: the tail keeps it for error messages
        }
      }
    }
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`instance did not start: ${stderrTail}`)), 20_000);
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const match = /listening on ws:\/\/[^:]+:(\d+)\//.exec(out);
      if (match) {
        clearTimeout(timer);
        resolve(Number(match[1]));
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`instance exited with ${code}: ${stderrTail}`));
    });
  });
  return {
    url: `ws://127.0.0.1:${port}`,
    port,
    process: child,
    logs,
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}
