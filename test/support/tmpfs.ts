/**
 * Small tmpfs mounts for tests that need a full or a read-only filesystem (mount(8) needs root,
 * as here and in CI). Every mount is undone: by the test, or at the latest when the test process
 * exits, so that no mount outlives its temp directory.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';

const mounted = new Set<string>();

/** Mounts a tmpfs with `options` (e.g. `size=4m`, `ro,size=1m`) on `dir`; false where not allowed. */
export function mountTmpfs(dir: string, options: string): boolean {
  mkdirSync(dir, { recursive: true });
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', dir], { stdio: 'ignore' });
  } catch {
    return false;
  }
  mounted.add(dir);
  return true;
}

/** Lazy: an environment a failed assertion left open must not keep the mount. */
export function unmount(dir: string): void {
  if (!mounted.delete(dir)) return;
  execFileSync('umount', ['-l', dir], { stdio: 'ignore' });
}

/** Whether this process may mount (tried once on a throwaway directory). */
export function canMount(probeDir: string): boolean {
  if (!mountTmpfs(probeDir, 'size=1m')) return false;
  unmount(probeDir);
  return true;
}

process.once('exit', function unmountLeftovers() {
  for (const dir of mounted) {
    try {
      execFileSync('umount', ['-l', dir], { stdio: 'ignore' });
    } catch {
      // Already gone.
    }
  }
});
