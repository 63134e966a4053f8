import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DataDirError, DataDirLock, LOCK_FILE } from '../src/backplane/data_dir.ts';
import { canMount, mountTmpfs, unmount } from './support/tmpfs.ts';

const root = mkdtempSync(join(tmpdir(), 'codespace-data-dir-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const newDir = (): string => join(root, `dir-${n++}`);

describe('DataDirLock', () => {
  it('creates the directory, writes its pid in the lock file, and removes it on release', () => {
    const dir = join(newDir(), 'nested');
    const lock = DataDirLock.claim(dir);
    expect(readFileSync(join(dir, LOCK_FILE), 'utf8').trim()).toBe(String(process.pid));
    lock.release();
    expect(existsSync(join(dir, LOCK_FILE))).toBe(false);
    DataDirLock.claim(dir).release();
  });

  it('refuses a directory held by this process or by another live one, naming it', async () => {
    const dir = newDir();
    const lock = DataDirLock.claim(dir);
    expect(() => DataDirLock.claim(dir)).toThrow(/in use by this process/);
    lock.release();
    const other = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      writeFileSync(join(dir, LOCK_FILE), `${other.pid}\n`);
      expect(() => DataDirLock.claim(dir)).toThrow(new RegExp(`in use by process ${other.pid}`));
    } finally {
      other.kill('SIGKILL');
      await once(other, 'exit');
    }
  });

  it('takes over the lock of a process that died (kill -9)', () => {
    const dir = newDir();
    const dead = spawnSync('true');
    DataDirLock.claim(dir).release();
    writeFileSync(join(dir, LOCK_FILE), `${dead.pid}\n`);
    const lock = DataDirLock.claim(dir);
    expect(readFileSync(join(dir, LOCK_FILE), 'utf8').trim()).toBe(String(process.pid));
    lock.release();
  });

  // A read-only filesystem: as root, permission bits would not stop the write, a `ro` mount does.
  // Needs root (mount); where there is none, the ENOTDIR case below still covers an unusable directory.
  it.runIf(canMount(newDir()))('says clearly when the directory is not writable', () => {
    const readOnly = newDir();
    expect(mountTmpfs(readOnly, 'ro,size=1m')).toBe(true);
    try {
      expect(() => DataDirLock.claim(readOnly)).toThrow(/DATA_DIR .* is not writable: EROFS/);
    } finally {
      unmount(readOnly);
    }
  });

  it('says clearly when the directory cannot be made', () => {
    const file = join(root, `a-file-${n++}`);
    writeFileSync(file, 'not a directory');
    const attempt = (): DataDirLock => DataDirLock.claim(join(file, 'data'));
    expect(attempt).toThrow(DataDirError);
    expect(attempt).toThrow(/DATA_DIR .*a-file-\d+\/data cannot be created: ENOTDIR/);
  });
});
