// Interim file-safety helpers for the trainer: an atomic small-file write and a run-folder lock.
// monarch-core's planned `writeFileAtomic` / `acquireDirLock` (API.md) replace these once they land.
import { open, readFile, rename, rm } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { M2Error } from '@monarch-mixer/monarch-core';

/** Writes `path` via a temp file in the same folder, fsync and rename (readers see old or new, never half). */
export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
  const handle = await open(tmp, 'w');
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await rename(tmp, path);
  } catch (error) {
    await rm(tmp, { force: true });
    throw error;
  }
}

/** A run folder is locked by another live process. */
export class LockedError extends M2Error {
  /** @inheritDoc */
  constructor(message: string, details: { parameter?: string; value?: unknown } = {}) {
    super(message, details);
    this.name = 'LockedError';
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Takes `dir/.lock` (created exclusively, holding the owner, pid, host and start time). A lock left by a dead
 * process on this host is taken over.
 * @param dir - The folder to lock (must exist).
 * @param owner - Who holds it (shown to a second run).
 * @returns `release()`, which removes the lock.
 * @throws LockedError (one line naming the holder) when a live process holds it.
 */
export async function acquireDirLock(dir: string, owner: string): Promise<() => Promise<void>> {
  const path = join(dir, '.lock');
  const mine = { owner, pid: process.pid, host: hostname(), since: new Date().toISOString() };
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const handle = await open(path, 'wx');
      await handle.writeFile(JSON.stringify(mine));
      await handle.close();
      let released = false;
      return async () => {
        if (released) return;
        released = true;
        await rm(path, { force: true });
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    let holder: typeof mine | undefined;
    try {
      holder = JSON.parse(await readFile(path, 'utf8')) as typeof mine;
    } catch {
      holder = undefined; // being written right now, or cut short by a kill
    }
    if (holder && (holder.host !== mine.host || alive(holder.pid))) {
      throw new LockedError(
        `${dir} is in use by ${holder.owner} (pid ${holder.pid} on ${holder.host}, since ${holder.since}); use another --out or wait for it to finish.`,
        { parameter: '--out', value: dir },
      );
    }
    if (!holder && attempt === 0) {
      await new Promise((r) => setTimeout(r, 200));
      continue;
    }
    await rm(path, { force: true }); // stale: its process is gone
  }
  throw new LockedError(`${dir}: could not take the lock file ${path}; remove it if no training runs there.`);
}
