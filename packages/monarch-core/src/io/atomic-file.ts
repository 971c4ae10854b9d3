/**
 * Node-only crash-safety helpers for training runs: atomic file replacement and an output-folder lock.
 * `node:fs` is imported lazily so that browser bundles of monarch-core do not pull it in.
 */
import { InvalidArgumentError, M2Error } from '../errors.js';

/**
 * Writes `data` to `path` so that readers (and a process killed at any moment) see either the old file or
 * the complete new one, never a partial write: the bytes go to a temporary file in the same folder, are
 * fsync'ed, and the temporary file is renamed over `path`; then the folder is fsync'ed so the rename is durable.
 *
 * @param path - Destination file; its folder must exist.
 * @param data - Bytes or UTF-8 text.
 * @throws M2Error (one line) if the folder does not exist or the write fails (disk full, permission denied);
 *   the temporary file is removed.
 * @example
 * await writeFileAtomic('run/checkpoint-100.safetensors', writeSafetensors(weights));
 */
export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const fs = await import('node:fs/promises');
  const { dirname, basename, join } = await import('node:path');
  const dir = dirname(path);
  const temp = join(dir, `.${basename(path)}.${process.pid}.${Math.random().toString(36).slice(2, 10)}.tmp`);
  const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data;
  let handle: import('node:fs/promises').FileHandle | undefined;
  try {
    handle = await fs.open(temp, 'wx', 0o644);
    let written = 0;
    while (written < bytes.length) {
      const { bytesWritten } = await handle.write(bytes, written, bytes.length - written);
      written += bytesWritten;
    }
    await handle.sync();
    await handle.close();
    handle = undefined;
    await fs.rename(temp, path);
  } catch (e) {
    await handle?.close().catch(() => undefined);
    await fs.rm(temp, { force: true }).catch(() => undefined);
    const code = (e as NodeJS.ErrnoException).code;
    throw new M2Error(`writeFileAtomic: cannot write ${path}: ${code ?? ''} ${(e as Error).message}`.replace(/\s+/g, ' ').trim(), {
      parameter: path,
    });
  }
  // Make the rename itself durable (not supported on every platform, e.g. Windows: then best effort).
  const dirHandle = await fs.open(dir, 'r').catch(() => undefined);
  await dirHandle?.sync().catch(() => undefined);
  await dirHandle?.close().catch(() => undefined);
}

/** Matches the temporary files of {@link writeFileAtomic}: `.<name>.<pid>.<random>.tmp`. */
const ATOMIC_TEMP = /^\..+\.(\d+)\.[a-z0-9]+\.tmp$/;

/**
 * Deletes the temporary files that {@link writeFileAtomic} calls left behind in `dir` when their process was
 * killed (only those whose pid is no longer alive, so concurrent writers are not disturbed).
 *
 * @param dir - Folder to clean (e.g. a run's output folder, after {@link acquireDirLock}).
 * @returns The names removed.
 * @example
 * await removeAtomicTemporaries('runs/bert-tiny'); // → ['.latest.4242.k3j2h1.tmp']
 */
export async function removeAtomicTemporaries(dir: string): Promise<string[]> {
  const fs = await import('node:fs/promises');
  const { join } = await import('node:path');
  const names = await fs.readdir(dir).catch(() => [] as string[]);
  const removed: string[] = [];
  for (const name of names) {
    const m = ATOMIC_TEMP.exec(name);
    if (m && !processAlive(Number(m[1]))) {
      await fs.rm(join(dir, name), { force: true });
      removed.push(name);
    }
  }
  return removed;
}

/** What a lock file holds. */
export interface DirLockInfo {
  /** Process id of the holder. */
  pid: number;
  /** Host name of the holder. */
  host: string;
  /** Free text naming the holder, e.g. `"m2 train bert --preset tiny"`. */
  owner: string;
  /** ISO time the lock was taken. */
  startedAt: string;
  /** Random token that tells two holders with the same pid apart. */
  token: string;
}

/** A held lock; `release()` is synchronous and idempotent so it can run in an `exit` handler. */
export interface DirLock {
  /** Path of the lock file. */
  readonly path: string;
  /** What was written into it. */
  readonly info: DirLockInfo;
  /** Removes the lock file if it is still ours. */
  release(): void;
}

/** Name of the lock file inside a locked folder. */
export const DIR_LOCK_FILE = '.m2.lock';

/**
 * Takes an exclusive lock on folder `dir` (created if missing) by writing `dir/.m2.lock` with the pid, host,
 * owner and start time. A lock held by a live process is refused with a one-line error naming the holder;
 * a lock whose process is dead (same host) is stale and taken over, so a run killed with SIGKILL does not
 * block the next one. The lock is released by `release()` or automatically when the process exits normally.
 *
 * The lock file appears atomically (written to a temporary file, then hard-linked into place), so a crash
 * never leaves a half-written lock.
 *
 * @param dir - Folder to lock (e.g. a training run's output folder).
 * @param owner - Who takes it, shown to anyone refused (e.g. the command line).
 * @returns The held lock.
 * @throws InvalidArgumentError (one line) if a live process (or another host) holds the lock.
 * @throws M2Error if the folder cannot be created or written.
 * @example
 * const lock = await acquireDirLock('runs/bert-tiny', 'm2 train bert');
 * try { ... } finally { lock.release(); }
 */
export async function acquireDirLock(dir: string, owner: string): Promise<DirLock> {
  const fs = await import('node:fs');
  const { join } = await import('node:path');
  const { hostname } = await import('node:os');
  const path = join(dir, DIR_LOCK_FILE);
  const info: DirLockInfo = {
    pid: process.pid,
    host: hostname(),
    owner,
    startedAt: new Date().toISOString(),
    token: Math.random().toString(36).slice(2, 12),
  };
  const wrapFs = (e: unknown): M2Error =>
    new M2Error(`acquireDirLock: cannot lock ${dir}: ${(e as NodeJS.ErrnoException).code ?? ''} ${(e as Error).message}`.replace(/\s+/g, ' '), {
      parameter: dir,
    });
  try {
    fs.mkdirSync(dir, { recursive: true });
  } catch (e) {
    throw wrapFs(e);
  }

  const temp = `${path}.${process.pid}.${info.token}.tmp`;
  for (let attempt = 0; ; attempt++) {
    try {
      const fd = fs.openSync(temp, 'wx', 0o644);
      try {
        fs.writeSync(fd, `${JSON.stringify(info)}\n`);
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
      fs.linkSync(temp, path); // fails with EEXIST if anyone holds the lock
      fs.rmSync(temp, { force: true });
      break;
    } catch (e) {
      fs.rmSync(temp, { force: true });
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || attempt >= 3) throw e instanceof M2Error ? e : wrapFs(e);
    }
    // Someone holds it: refuse if alive, take over if stale.
    let text: string;
    try {
      text = fs.readFileSync(path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue; // released meanwhile: try again
      throw wrapFs(e);
    }
    const holder = parseLock(text);
    const sameHost = holder?.host === info.host;
    if (holder && (!sameHost || processAlive(holder.pid))) {
      throw new InvalidArgumentError(
        `${dir} is in use by ${JSON.stringify(holder.owner).slice(0, 80)} (pid ${holder.pid} on ${holder.host}, since ${holder.startedAt}); ` +
          `wait for it to finish or stop it${sameHost ? '' : `, or delete ${path} if that run is gone`}.`,
        { parameter: 'dir', value: dir },
      );
    }
    // Stale (dead pid, or an unreadable lock from a foreign writer): remove it if it has not changed meanwhile.
    try {
      if (fs.readFileSync(path, 'utf8') === text) fs.unlinkSync(path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw wrapFs(e);
    }
  }

  let released = false;
  const release = (): void => {
    if (released) return;
    released = true;
    process.removeListener('exit', release);
    try {
      if (parseLock(fs.readFileSync(path, 'utf8'))?.token === info.token) fs.unlinkSync(path);
    } catch {
      // already gone
    }
  };
  process.once('exit', release);
  return { path, info, release };
}

function parseLock(text: string): DirLockInfo | undefined {
  try {
    const v = JSON.parse(text) as DirLockInfo;
    return typeof v?.pid === 'number' && typeof v.host === 'string' ? v : undefined;
  } catch {
    return undefined;
  }
}

function processAlive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
