/** Entry: configuration → start → signals. */
import { helpText, loadConfig } from './config.ts';
import { Acceptor } from './server/acceptor.ts';
import { Hub } from './server/hub.ts';

function logLine(event: string, fields: Record<string, unknown>): void {
  process.stderr.write(JSON.stringify({ time: new Date().toISOString(), event, ...fields }) + '\n');
}

/** Deno and Bun both fill in `process.versions.node`, so ask for them first. */
function runtimeName(): string {
  const runtimes = globalThis as { Deno?: { version: { deno: string } }; Bun?: { version: string } };
  if (runtimes.Deno) return `deno ${runtimes.Deno.version.deno}`;
  if (runtimes.Bun) return `bun ${runtimes.Bun.version}`;
  return `node ${process.versions.node}`;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(helpText() + '\n');
    return;
  }
  let config;
  try {
    config = loadConfig(process.env, argv);
  } catch (error) {
    process.stderr.write(`codespace: ${(error as Error).message}\n`);
    process.exit(2);
  }
  const hub = new Hub(config, logLine);
  const acceptor = new Acceptor(hub);
  const { host, port } = await acceptor.listen();
  const runtime = runtimeName();
  const where = config.workers > 0 ? `${config.workers} worker${config.workers === 1 ? '' : 's'}` : 'in-process channels';
  process.stdout.write(`codespace listening on ws://${host}:${port}/codespace/<token>/ (${where}, ${hub.backplaneName} backplane, ${runtime})\n`);
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) process.exit(1);
    stopping = true;
    logLine('shutdown', { signal });
    acceptor.close().then(() => process.exit(0), () => process.exit(1));
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((error) => {
  process.stderr.write(`codespace: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
