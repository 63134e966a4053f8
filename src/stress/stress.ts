/**
 * `codespace-stress` / `make stress ARGS=...`: parses the options, runs, prints the table and
 * the verdict. Exit status 0 passed, 1 convergence or isolation failed (or the run could not
 * start), 2 bad options.
 */
import { OptionError, HELP, parseStressArgs } from './options.ts';
import { terminalProgress } from './progress.ts';
import { renderTable } from './report_table.ts';
import { runStress } from './run.ts';

async function main(argv: readonly string[]): Promise<number> {
  let options;
  try {
    options = parseStressArgs(argv);
  } catch (error) {
    if (!(error instanceof OptionError)) throw error;
    process.stderr.write(`codespace-stress: ${error.message}\n`);
    return 2;
  }
  if (options === null) {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  try {
    const report = await runStress(options, options.quiet ? {} : { progress: terminalProgress() });
    process.stdout.write(renderTable(report));
    if (options.jsonPath) process.stdout.write(`JSON report: ${options.jsonPath}\n`);
    if (options.htmlPath) process.stdout.write(`HTML report: ${options.htmlPath}\n`);
    return report.verdict.ok ? 0 : 1;
  } catch (error) {
    process.stderr.write(`codespace-stress: ${(error as Error).message}\n`);
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
