/**
 * `INSTANCES=N`: N acceptor processes on one port (Node's `cluster` shares the listening socket),
 * each with its own worker pool, all on the same Redis so that a codespace split over them
 * converges. The primary only forks, replaces a process that died, and passes signals on.
 */
import cluster, { type Worker } from 'node:cluster';

export interface ClusterOptions {
  instances: number;
  /** What each instance prints as ready, collected into the primary's one line. */
  describe(port: number): string;
  log(event: string, fields: Record<string, unknown>): void;
  /** How long the primary waits for its instances to drain after a signal. */
  shutdownTimeoutMs: number;
}

export const isClusterInstance = (): boolean => cluster.isWorker;

/** In an instance: tells the primary where it listens (its line is printed once, by the primary). */
export function reportListening(port: number): void {
  process.send?.({ type: 'listening', port });
}

export function runPrimary(options: ClusterOptions): void {
  const listening = new Set<number>();
  let stopping = false;
  let printed = false;
  const restartsAt: number[] = [];

  function fork(): Worker {
    const worker = cluster.fork({ CODESPACE_INSTANCE: '1' });
    worker.on('message', function instanceOnMessage(message: { type?: string; port?: number }) {
      if (message?.type !== 'listening' || typeof message.port !== 'number') return;
      listening.add(worker.id);
      if (!printed && listening.size === options.instances) {
        printed = true;
        process.stdout.write(options.describe(message.port) + '\n');
      }
    });
    return worker;
  }

  cluster.on('exit', function instanceOnExit(worker, code, signal) {
    listening.delete(worker.id);
    if (stopping) {
      if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(0);
      return;
    }
    options.log('instance_died', { pid: worker.process.pid, code, signal });
    // Replace it, but not in a tight loop: at most 5 replacements a minute.
    const now = Date.now();
    while (restartsAt.length > 0 && now - restartsAt[0] > 60_000) restartsAt.shift();
    if (restartsAt.length >= 5) {
      options.log('instance_restart_budget_spent', { instances: options.instances });
      return;
    }
    restartsAt.push(now);
    setTimeout(fork, 500);
  });

  function stop(signal: NodeJS.Signals): void {
    if (stopping) {
      for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGKILL');
      process.exit(1);
    }
    stopping = true;
    options.log('shutdown', { signal, instances: Object.keys(cluster.workers ?? {}).length });
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill(signal);
    setTimeout(() => process.exit(1), options.shutdownTimeoutMs + 1_000).unref();
    if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(0);
  }
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);

  for (let i = 0; i < options.instances; i++) fork();
}
