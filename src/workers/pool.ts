/**
 * The worker-thread pool that hosts channel actors (piscina). Each channel is one long task;
 * its promise settles when the channel stops and rejects when its worker dies.
 */
import { Worker, isMainThread } from 'node:worker_threads';
import { Piscina } from 'piscina';

type LoadBalancer = NonNullable<ConstructorParameters<typeof Piscina>[0]>['loadBalancer'] & {};
import type { SpawnTask } from '../actors/envelopes.ts';
import type { ChannelEnd } from '../actors/supervisor.ts';
import { channelHostEntry, onNode } from './worker_bundle.ts';

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

/**
 * Workers load their entry by `import()`, never by `require()`. piscina tries `require` first,
 * and Node 20's require(esm) aborted a whole test process once ("FATAL ERROR:
 * v8::Module::IsGraphAsync must be used on an instantiated module", from piscina's `require` of
 * the bundle). With it off, that `require` throws ERR_REQUIRE_ESM at once and piscina imports.
 */
const NO_REQUIRE_ESM = '--no-experimental-require-module';

/**
 * main's Node flags for its workers: without the TypeScript loader (`--import tsx`,
 * `--import=tsx`, `--loader tsx`), and without those a worker refuses (V8 and process-wide
 * flags such as `--max-old-space-size` or `--trace-gc`: they already apply to the whole process,
 * and passing them makes `new Worker` throw ERR_WORKER_INVALID_EXEC_ARGV). On Node, with
 * NO_REQUIRE_ESM unless main's flags say otherwise about require(esm).
 */
export function workerExecArgv(execArgv: readonly string[] = process.execArgv): string[] {
  let flags: string[] = [];
  for (let i = 0; i < execArgv.length; i++) {
    const flag = execArgv[i];
    if ((flag === '--import' || flag === '--loader' || flag === '--require') && /tsx/.test(execArgv[i + 1] ?? '')) i++;
    else if (!/^--(import|loader|require)=.*tsx/.test(flag)) flags.push(flag);
  }
  if (flags.length > 0 && isMainThread) {
    const refused = refusedByWorkers(flags);
    if (refused.size > 0) flags = flags.filter((flag) => !refused.has(flag));
  }
  if (onNode() && process.allowedNodeEnvironmentFlags.has(NO_REQUIRE_ESM) && !flags.some((flag) => flag.includes('require-module'))) {
    flags.push(NO_REQUIRE_ESM);
  }
  return flags;
}

/** The flags `new Worker` names as invalid, found by a trial worker that is ended at once. */
function refusedByWorkers(flags: string[]): Set<string> {
  try {
    void new Worker('', { eval: true, execArgv: flags, stdout: true, stderr: true }).terminate();
    return new Set();
  } catch (error) {
    const message = error instanceof Error ? error.message : '';
    if ((error as { code?: string }).code !== 'ERR_WORKER_INVALID_EXEC_ARGV') throw error;
    return new Set(message.slice(message.indexOf(':') + 1).split(',').map((flag) => flag.trim()));
  }
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
      filename: channelHostEntry(),
      // Workers load built JavaScript (worker_bundle.ts): without main's `--import tsx`, no tsx
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

  /** The thread ids of the workers alive now (for the status page). */
  get threadIds(): number[] {
    return this.#pool.threads.map((thread) => thread.threadId);
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
