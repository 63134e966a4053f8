/** Entry: configuration → start (one process, or INSTANCES of them on one port) → signals. */
import { DataDirError } from './backplane/data_dir.ts';
import { isClusterInstance, reportListening, runPrimary } from './cluster.ts';
import { helpText, loadConfig, type Config } from './config.ts';
import { createLogger } from './observability/logger.ts';
import { Acceptor } from './server/acceptor.ts';
import { Hub } from './server/hub.ts';
import { statusAccessFor } from './server/status_access.ts';

/** Deno and Bun both fill in `process.versions.node`, so ask for them first. */
function runtimeName(): string {
  const runtimes = globalThis as { Deno?: { version: { deno: string } }; Bun?: { version: string } };
  if (runtimes.Deno) return `deno ${runtimes.Deno.version.deno}`;
  if (runtimes.Bun) return `bun ${runtimes.Bun.version}`;
  return `node ${process.versions.node}`;
}

function describe(config: Config, host: string, port: number): string {
  const workers = config.workers > 0 ? `${config.workers} worker${config.workers === 1 ? '' : 's'}` : 'in-process channels';
  const where = config.instances > 1 ? `${config.instances} instances × ${workers}` : workers;
  const backplane = config.redisUrl ? 'redis' : config.dataDir ? `file backplane in ${config.dataDir}` : 'memory';
  const store = backplane.startsWith('file') ? backplane : `${backplane} backplane`;
  return `codespace listening on ws://${host}:${port}/codespace/<token>/ (${where}, ${store}, ${runtimeName()})`;
}

/** Where a browser finds the demo editor and the status page (off on a public HOST without STATUS_TOKEN). */
function pagesLine(config: Config, host: string, port: number): string {
  const shown = host === '0.0.0.0' || host === '::' ? 'localhost' : host.includes(':') ? `[${host}]` : host;
  const base = `http://${shown}:${port}`;
  const access = statusAccessFor(host, config.statusToken);
  const status = access.kind === 'open' ? `${base}/status` : access.kind === 'token' ? `${base}/status?token=<STATUS_TOKEN>` : 'off (set STATUS_TOKEN)';
  return `demo editor: ${base}/   status: ${status}`;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(helpText() + '\n');
    return;
  }
  let config: Config;
  try {
    config = loadConfig(process.env, argv);
    if (config.instances > 1 && !config.redisUrl) {
      throw new TypeError('INSTANCES > 1 needs REDIS_URL: instances share codespaces only through Redis');
    }
  } catch (error) {
    process.stderr.write(`codespace: ${(error as Error).message}\n`);
    process.exit(2);
  }
  const { log } = createLogger(config.logLevel);
  if (config.instances > 1 && !isClusterInstance()) {
    runPrimary({
      instances: config.instances,
      describe: (port) => describe(config, config.host, port),
      log,
      shutdownTimeoutMs: config.shutdownTimeoutMs,
    });
    return;
  }

  let hub: Hub;
  try {
    hub = new Hub(config, log);
  } catch (error) {
    // DATA_DIR not writable, or in use by another server: say so plainly, no stack.
    if (!(error instanceof DataDirError)) throw error;
    process.stderr.write(`codespace: ${error.message}\n`);
    process.exit(2);
  }
  const acceptor = new Acceptor(hub);
  const { host, port } = await acceptor.listen();
  if (isClusterInstance()) reportListening(port);
  else process.stdout.write(describe(config, host, port) + '\n' + pagesLine(config, host, port) + '\n');
  log('started', { host, port, workers: config.workers, backplane: hub.backplaneName, runtime: runtimeName() });

  let stopping = false;
  const stop = (signal: string): void => {
    // A second signal: the operator means it.
    if (stopping) process.exit(1);
    stopping = true;
    const started = Date.now();
    log('shutdown', { signal, connections: hub.connectionCount, channels: hub.supervisor.channelCount });
    const deadline = setTimeout(() => {
      log('shutdown_timeout', { timeoutMs: config.shutdownTimeoutMs });
      process.exit(1);
    }, config.shutdownTimeoutMs);
    deadline.unref?.();
    acceptor.drain(config.shutdownTimeoutMs).then(
      () => {
        log('stopped', { ms: Date.now() - started });
        process.exit(0);
      },
      (error: unknown) => {
        log('shutdown_failed', { error: String(error) });
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((error) => {
  process.stderr.write(`codespace: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
