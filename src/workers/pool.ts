/**
 * The worker-thread pool that hosts channel actors (piscina). Each channel is one long task;
 * its promise settles when the channel stops and rejects when its worker dies.
 */
import { Piscina } from 'piscina';

type LoadBalancer = NonNullable<ConstructorParameters<typeof Piscina>[0]>['loadBalancer'] & {};
import type { SpawnTask } from '../actors/envelopes.ts';
import type { ChannelEnd } from '../actors/supervisor.ts';
import { channelHostEntry } from './worker_bundle.ts';

/**
 * Spreads channels by how many each worker already hosts. (piscina's default balancer takes the
 * first worker below its usage ceiling, which with one long task per channel and a large
 * `concurrentTasksPerWorker` packs every channel on the first worker.)
 */
const fewestChannels: LoadBalancer = (_task, workers) => {
  let chosen = null;
  for (const worker of workers) {
    if (worker.terminating || worker.destroyed) continue;
    if (chosen === null || worker.currentUsage < chosen.currentUsage) chosen = worker;
  }
  return chosen;
};

/** main's Node flags without the TypeScript loader (`--import tsx`, `--import=tsx`, `--loader tsx`). */
function workerExecArgv(): string[] {
  const flags: string[] = [];
  for (let i = 0; i < process.execArgv.length; i++) {
    const flag = process.execArgv[i];
    if ((flag === '--import' || flag === '--loader' || flag === '--require') && /tsx/.test(process.execArgv[i + 1] ?? '')) i++;
    else if (!/^--(import|loader|require)=.*tsx/.test(flag)) flags.push(flag);
  }
  return flags;
}

export class ChannelPool {
  readonly #pool: Piscina;
  #closing = false;

  /**
   * `maxOldMb` bounds each worker's heap (resourceLimits): a channel that allocates without end
   * kills only its worker, whose channels restart elsewhere (0: the runtime's default).
   */
  constructor(workers: number, maxOldMb = 0, log: (event: string, fields: Record<string, unknown>) => void = () => {}) {
    this.#pool = new Piscina({
      filename: channelHostEntry(log),
      // Workers load plain JavaScript (worker_bundle.ts): without main's `--import tsx`, no tsx
      // loader (and no esbuild service process of its own) in every worker.
      execArgv: workerExecArgv(),
      minThreads: workers,
      maxThreads: workers,
      // Without this the worker sleeps in Atomics.wait between tasks and never hears its ports.
      atomics: 'disabled',
      idleTimeout: Infinity,
      concurrentTasksPerWorker: 1_000_000,
      loadBalancer: fewestChannels,
      ...(maxOldMb > 0 ? { resourceLimits: { maxOldGenerationSizeMb: maxOldMb } } : {}),
    });
    // piscina starts a new worker for each that exits (min = max threads): count each as replaced.
    this.#pool.on('workerDestroy', (worker: { threadId: number }) => {
      if (!this.#closing) log('worker_replaced', { thread: worker.threadId });
    });
    this.#pool.on('error', (error: unknown) => log('worker_error', { error: String(error) }));
  }

  get threads(): number {
    return this.#pool.threads.length;
  }

  spawn(task: SpawnTask): Promise<ChannelEnd> {
    return this.#pool.run(task, { transferList: [task.port as never] }) as Promise<ChannelEnd>;
  }

  /** Terminates the worker with this thread id (a hung one); piscina replaces it. */
  terminateThread(threadId: number): boolean {
    const worker = this.#pool.threads.find((thread) => thread.threadId === threadId);
    if (!worker) return false;
    void worker.terminate();
    return true;
  }

  async close(): Promise<void> {
    this.#closing = true;
    await this.#pool.destroy();
  }
}
