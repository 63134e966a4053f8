/**
 * The package as a user gets it: `npm pack` (which builds dist/), installed with npm into an
 * empty folder, used by a plain `node` program with no loader flags that type-checks against the
 * shipped .d.ts under a standard `nodenext` tsconfig (skipLibCheck off); the same program runs
 * on Bun and Deno. (test/fixtures/consumer/ holds the program.)
 */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const FIXTURE = join(ROOT, 'test/fixtures/consumer');
let work = '';
let tarball = '';
let packed: string[] = [];

function run(command: string, args: string[], cwd: string, timeout = 120_000): SpawnSyncReturns<string> {
  const result = spawnSync(command, args, { cwd, encoding: 'utf8', timeout, env: { ...process.env, npm_config_update_notifier: 'false' } });
  if (result.error) throw result.error;
  return result;
}

function versionOf(name: string): string {
  return (JSON.parse(readFileSync(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
}

/** Every file under `dir`, relative to it. */
function filesUnder(dir: string, prefix = ''): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? filesUnder(join(dir, entry.name), `${prefix}${entry.name}/`) : [`${prefix}${entry.name}`]);
}

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'codespace-package-'));
  const pack = run('npm', ['pack', '--json', '--pack-destination', work], ROOT);
  expect(pack.status, pack.stderr).toBe(0);
  const [info] = JSON.parse(pack.stdout) as { filename: string; files: { path: string }[] }[];
  tarball = join(work, info.filename);
  packed = info.files.map((file) => file.path);
}, 180_000);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('npm pack', () => {
  it('ships built JavaScript, declarations, bin and LICENSE, and nothing a user does not need', () => {
    for (const file of ['package.json', 'LICENSE', 'README.md', 'bin/codespace.mjs', 'bin/codespace-stress.mjs', 'dist/mod.js', 'dist/mod.d.ts', 'dist/main.js', 'dist/workers/channel_host.js', 'dist/browser/client.js', 'dist/stress/stress.js', 'dist/pages/index.html', 'dist/pages/status.html']) {
      expect(packed).toContain(file);
    }
    // The pages (demo editor, status page) are built ahead of time: HTML and hashed assets.
    const unwanted = packed.filter((file) => !/^(dist\/.+\.(js|d\.ts)|dist\/pages\/[\w./-]+|bin\/[^/]+\.mjs|package\.json|LICENSE|README\.md)$/.test(file));
    expect(unwanted).toEqual([]);
    expect(readFileSync(join(ROOT, 'LICENSE'), 'utf8')).toMatch(/^MIT License/);
    // The systemd unit starts built JavaScript too (tsx is no longer installed with --omit=dev).
    const unit = readFileSync(join(ROOT, 'deploy/codespace.service'), 'utf8');
    expect(packed).toContain(/^ExecStart=\/usr\/bin\/node (\S+)$/m.exec(unit)?.[1]);
  });

  it('names JS and types for codespace, codespace/client and codespace/codemirror; compiles nothing at run time', () => {
    const manifest = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
      exports: Record<string, { types: string; default: string } | string>;
      dependencies: Record<string, string>;
      license: string;
    };
    for (const entry of ['.', './client', './codemirror']) {
      const target = manifest.exports[entry] as { types: string; default: string };
      expect(packed).toContain(target.default.replace(/^\.\//, ''));
      expect(packed).toContain(target.types.replace(/^\.\//, ''));
    }
    expect(Object.keys(manifest.dependencies)).not.toContain('tsx');
    expect(Object.keys(manifest.dependencies)).not.toContain('esbuild');
    expect(manifest.license).toBe('MIT');
  });
});

describe('the installed package', () => {
  let app = '';
  let installedBefore: string[] = [];

  beforeAll(() => {
    app = join(work, 'app');
    cpSync(FIXTURE, app, { recursive: true });
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
    // The tarball and, from npm's cache when it can, the versions this checkout already uses.
    const install = run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', tarball, `ws@${versionOf('ws')}`, `@types/node@${versionOf('@types/node')}`], app, 170_000);
    expect(install.status, install.stderr).toBe(0);
    installedBefore = filesUnder(join(app, 'node_modules'));
  }, 180_000);

  it('type-checks a user program against the shipped .d.ts with a standard nodenext tsconfig, and compiles it', () => {
    const tsc = run('node', [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', app], app);
    expect(tsc.stdout + tsc.stderr).toBe('');
    expect(tsc.status).toBe(0);
    expect(existsSync(join(app, 'out/program.js'))).toBe(true);
  }, 60_000);

  it('runs its bin scripts from the built JavaScript: the server and the stress tool answer --help', () => {
    const server = run('node', ['node_modules/.bin/codespace', '--help'], app);
    expect(server.status, server.stderr).toBe(0);
    expect(server.stdout).toMatch(/PING_INTERVAL_MS/);
    const stress = run('node', ['node_modules/.bin/codespace-stress', '--help'], app);
    expect(stress.status, stress.stderr).toBe(0);
    expect(stress.stdout).toMatch(/--channels/);
  });

  const runtimes: [string, string[]][] = [
    ['node', ['node', 'out/program.js']],
    ['bun', [join(ROOT, 'node_modules/.bin/bun'), 'out/program.js']],
    ['deno', [join(ROOT, 'node_modules/.bin/deno'), 'run', '--allow-net', '--allow-env', '--allow-read', '--allow-write', '--allow-sys', '--allow-ffi', 'out/program.js']],
  ];
  for (const [runtime, [command, ...args]] of runtimes) {
    it(`runs on ${runtime} with no loader flags: embeds the server with a DATA_DIR, edits over a socket and in-process, stops, starts again and finds its edits`, () => {
      const dataDir = mkdtempSync(join(tmpdir(), `codespace-package-${runtime}-`));
      const program = run(command, [...args, dataDir], app, 60_000);
      rmSync(dataDir, { recursive: true, force: true });
      expect(program.stderr.replace(/^.*(Warning|warning).*\n?/gm, '')).toBe('');
      expect(program.status).toBe(0);
      const seen = JSON.parse(program.stdout.trim().split('\n').pop()!) as Record<string, any>;
      expect(seen.runtime).toBe(runtime);
      expect(seen.first.joined).toBe('');
      // The file store: the restarted server starts from what the first one acked.
      expect(seen.second.joined).toBe(seen.first.text);
      expect(seen.first.version).toBe(3);
      expect(seen.second.version).toBe(6);
      for (const round of [seen.first, seen.second]) {
        expect([...round.text.matchAll(/(in-process|socket|full-url);/g)].map((match) => match[1]).sort()).toEqual(round === seen.first ? ['full-url', 'in-process', 'socket'] : ['full-url', 'full-url', 'in-process', 'in-process', 'socket', 'socket']);
      }
      expect(seen.binding).toBe('function');
      // Nothing written into node_modules at run time (no bundle cache, no compiled file).
      expect(filesUnder(join(app, 'node_modules'))).toEqual(installedBefore);
    }, 90_000);
  }
});
