/**
 * DATA_DIR belongs to one server process at a time. LMDB itself lets many processes share an
 * environment, but two servers would each sequence the same codespaces: the second one refuses
 * to start. The claim is a lock file holding the owner's pid; one left by a process that died
 * (kill -9) is taken over.
 */
import { mkdirSync, openSync, readFileSync, unlinkSync, writeSync, closeSync } from 'node:fs';
import { join, resolve } from 'node:path';

/** A DATA_DIR that cannot be used: the message says which and why, for the operator. */
export class DataDirError extends Error {
  override name = 'DataDirError';
}

export const LOCK_FILE = 'codespace.lock';

export class DataDirLock {
  readonly path: string;
  readonly #lockPath: string;
  #released = false;

  private constructor(path: string) {
    this.path = path;
    this.#lockPath = join(path, LOCK_FILE);
  }

  /** Creates the directory if needed and takes the lock; throws DataDirError if it cannot. */
  static claim(dir: string): DataDirLock {
    const path = resolve(dir);
    try {
      mkdirSync(path, { recursive: true });
    } catch (error) {
      throw new DataDirError(`DATA_DIR ${path} cannot be created: ${reasonOf(error)}`);
    }
    const lock = new DataDirLock(path);
    lock.#take(true);
    return lock;
  }

  /** Removes the lock file (if it is still ours). */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    try {
      if (ownerOf(this.#lockPath) === process.pid) unlinkSync(this.#lockPath);
    } catch {
      // Already gone: nothing to release.
    }
  }

  #take(mayTakeOver: boolean): void {
    let fd: number;
    try {
      fd = openSync(this.#lockPath, 'wx', 0o644);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new DataDirError(`DATA_DIR ${this.path} is not writable: ${reasonOf(error)}`);
      }
      const owner = ownerOf(this.#lockPath);
      if (owner !== null && isAlive(owner)) {
        const who = owner === process.pid ? 'this process (another hub)' : `process ${owner}`;
        throw new DataDirError(`DATA_DIR ${this.path} is in use by ${who} (lock file ${this.#lockPath}); stop it, or give this one another DATA_DIR`);
      }
      if (!mayTakeOver) throw new DataDirError(`DATA_DIR ${this.path}: could not take the lock file ${this.#lockPath}`);
      // Left behind by a process that died: take it over.
      try {
        unlinkSync(this.#lockPath);
      } catch {
        // Someone else removed it first; the retry below sees who wins.
      }
      return this.#take(false);
    }
    try {
      writeSync(fd, `${process.pid}\n`);
    } catch (error) {
      throw new DataDirError(`DATA_DIR ${this.path} is not writable: ${reasonOf(error)}`);
    } finally {
      closeSync(fd);
    }
  }
}

/** The pid in a lock file, or null when it holds none (a process died while writing it). */
function ownerOf(lockPath: string): number | null {
  let text: string;
  try {
    text = readFileSync(lockPath, 'utf8');
  } catch {
    return null;
  }
  const pid = Number(text.trim());
  return Number.isSafeInteger(pid) && pid > 0 ? pid : null;
}

function isAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function reasonOf(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  const message = error instanceof Error ? error.message : String(error);
  return code ? `${code} (${message})` : message;
}
