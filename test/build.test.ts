/** scripts/build.mjs: incremental, touches nothing when nothing changed, drops what lost its source. */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

function build(): void {
  const result = spawnSync('node', ['scripts/build.mjs'], { cwd: ROOT, encoding: 'utf8' });
  expect(result.stdout + result.stderr).toBe('');
  expect(result.status).toBe(0);
}

describe('scripts/build.mjs', () => {
  it('leaves built files alone when nothing changed (a running server may be loading them)', () => {
    build();
    const files = ['dist/mod.js', 'dist/mod.d.ts', 'dist/workers/channel_host.js', 'dist/browser/client.js'].map((file) => `${ROOT}${file}`);
    const before = files.map((file) => statSync(file).mtimeMs);
    build();
    expect(files.map((file) => statSync(file).mtimeMs)).toEqual(before);
  }, 60_000);

  it('removes built files whose source is gone, so that npm pack never ships them', () => {
    const orphans = ['dist/removed_module.js', 'dist/removed_module.d.ts', 'dist/server/gone.js'].map((file) => `${ROOT}${file}`);
    for (const file of orphans) writeFileSync(file, 'export {};\n');
    build();
    expect(orphans.filter((file) => existsSync(file))).toEqual([]);
    expect(existsSync(`${ROOT}dist/browser/client.js`)).toBe(true);
  }, 60_000);

  it('writes declarations a nodenext project without allowImportingTsExtensions accepts', () => {
    build();
    expect(readFileSync(`${ROOT}dist/mod.d.ts`, 'utf8')).not.toMatch(/from '\.[^']*\.ts'/);
  });
});
