/** The whole project (src, test, bench) type-checks under `strict`: a type error fails the suite. */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

describe('tsc', () => {
  it('finds no type error in src, test and bench', () => {
    const result = spawnSync('node', [`${ROOT}node_modules/typescript/bin/tsc`, '-p', 'tsconfig.json', '--noEmit'], { cwd: ROOT, encoding: 'utf8' });
    expect(result.stdout + result.stderr).toBe('');
    expect(result.status).toBe(0);
  }, 60_000);
});
