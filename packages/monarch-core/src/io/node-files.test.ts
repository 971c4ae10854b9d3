import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { FileFormatError, InvalidArgumentError } from '../errors.js';
import { DIR_LOCK_FILE, acquireDirLock, removeAtomicTemporaries, writeFileAtomic } from './atomic-file.js';
import { detectCheckpointFormat, loadStateDictFile } from './load-state-dict-file.js';

const fixtures = fileURLToPath(new URL('../../test/fixtures/io/', import.meta.url));
const child = fileURLToPath(new URL('./__fixtures__/atomic-child.ts', import.meta.url));
const scratch = mkdtempSync(join(tmpdir(), 'm2-io-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (e) {
    expect((e as Error).message).not.toContain('\n');
    return e as Error;
  }
  throw new Error('expected a rejection');
}

/** Starts the child helper and resolves once it printed "ready". */
function startChild(mode: string, target: string): Promise<import('node:child_process').ChildProcess> {
  const proc = spawn(process.execPath, ['--import', 'tsx', child, mode, target], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    proc.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve(proc));
    proc.on('exit', (code) => reject(new Error(`child exited early with ${code}`)));
  });
}
const killed = (proc: import('node:child_process').ChildProcess) =>
  new Promise<void>((resolve) => {
    proc.removeAllListeners('exit');
    proc.on('exit', () => resolve());
    proc.kill('SIGKILL');
  });

describe('loadStateDictFile', () => {
  it('loads the golden .bin and .safetensors by magic bytes to the same tensors', async () => {
    const bin = await loadStateDictFile(join(fixtures, 'pytorch_model.bin'));
    const st = await loadStateDictFile(join(fixtures, 'model.safetensors'));
    expect(bin.size).toBe(st.size + 1); // + position_ids
    const name = 'bert.encoder.layer.1.mlp.wo.weight';
    expect(Array.from(bin.get(name)!.data as Float32Array)).toEqual(Array.from(st.get(name)!.data as Float32Array));
    // The format comes from the bytes, not the name.
    writeFileSync(join(scratch, 'weights.safetensors'), readFileSync(join(fixtures, 'pytorch_model.bin')));
    expect((await loadStateDictFile(join(scratch, 'weights.safetensors'))).size).toBe(bin.size);
  });

  it('names the file and the problem for missing, empty, truncated and foreign files', async () => {
    const missing = join(scratch, 'nope.bin');
    const e1 = await rejection(loadStateDictFile(missing));
    expect(e1).toBeInstanceOf(FileFormatError);
    expect(e1.message).toBe(`${missing}: file not found`);
    expect((await rejection(loadStateDictFile(scratch))).message).toMatch(/is a directory/);

    const cases: [string, Uint8Array, RegExp][] = [
      ['empty.bin', new Uint8Array(0), /file is empty/],
      ['short.bin', new Uint8Array([1, 2, 3]), /3 bytes, too short/],
      ['cut.bin', readFileSync(join(fixtures, 'pytorch_model.bin')).subarray(0, 1000), /end-of-central-directory/],
      ['cut.safetensors', readFileSync(join(fixtures, 'model.safetensors')).subarray(0, 20000), /run past the data buffer|larger than the file/],
      ['lfs.bin', new TextEncoder().encode('version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 1\n'), /Git LFS pointer/],
      ['legacy.bin', new Uint8Array([0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20]), /legacy \(pre-1.6/],
      ['page.bin', new TextEncoder().encode('<!DOCTYPE html><html>'), /neither safetensors .* starts with 3c 21 44 4f/],
    ];
    for (const [name, bytes, pattern] of cases) {
      const path = join(scratch, name);
      writeFileSync(path, bytes);
      const e = await rejection(loadStateDictFile(path));
      expect(e, name).toBeInstanceOf(FileFormatError);
      expect(e.message.startsWith(`${path}: `), e.message).toBe(true);
      expect(e.message, name).toMatch(pattern);
    }
    expect(detectCheckpointFormat(new Uint8Array([0x50, 0x4b, 3, 4]), 'x')).toBe('torch');
  });
});

describe('writeFileAtomic', () => {
  it('creates and replaces files, leaving no temporary files', async () => {
    const dir = mkdtempSync(join(scratch, 'atomic-'));
    const path = join(dir, 'a.txt');
    await writeFileAtomic(path, 'first');
    await writeFileAtomic(path, new Uint8Array([0x32, 0x6e, 0x64]));
    expect(readFileSync(path, 'utf8')).toBe('2nd');
    expect(readdirSync(dir)).toEqual(['a.txt']);
    const e = await rejection(writeFileAtomic(join(dir, 'no', 'such', 'dir.txt'), 'x'));
    expect(e.message).toMatch(/writeFileAtomic: cannot write .*ENOENT/);
    expect(readdirSync(dir)).toEqual(['a.txt']);
  });

  it('never leaves a partial file when the writer is SIGKILLed at random moments', async () => {
    // Three writers run at once (child start-up dominates the time); each is killed at a different moment.
    const paths = [0, 1, 2].map((i) => join(scratch, `killed-${i}.bin`));
    const procs = await Promise.all(paths.map((p) => startChild('write', p)));
    await Promise.all(
      procs.map(async (proc, i) => {
        await new Promise((r) => setTimeout(r, 150 + i * 137));
        await killed(proc);
      }),
    );
    let complete = 0;
    for (const path of paths) {
      if (!existsSync(path)) continue; // killed before the first rename: nothing, which is fine too
      const bytes = readFileSync(path);
      expect(bytes.length).toBe(1 << 20);
      expect(bytes.every((b) => b === bytes[0]) && (bytes[0] === 0x41 || bytes[0] === 0x42)).toBe(true);
      complete++;
    }
    expect(complete).toBeGreaterThan(0);
    // Killed writers may leave their temporary files; they are dead, so cleaning removes them all.
    const live = join(scratch, `.other.${process.pid}.abc.tmp`);
    writeFileSync(live, 'in progress');
    await removeAtomicTemporaries(scratch);
    expect(readdirSync(scratch).filter((n) => n.endsWith('.tmp'))).toEqual([`.other.${process.pid}.abc.tmp`]);
    expect(existsSync(live)).toBe(true);
  });
});

describe('acquireDirLock', () => {
  it('refuses a second holder with a message naming the first, and frees the folder on release', async () => {
    const dir = join(scratch, 'run-a');
    const lock = await acquireDirLock(dir, 'm2 train bert --preset tiny');
    expect(JSON.parse(readFileSync(join(dir, DIR_LOCK_FILE), 'utf8'))).toMatchObject({ pid: process.pid, owner: 'm2 train bert --preset tiny' });
    const e = await rejection(acquireDirLock(dir, 'second run'));
    expect(e).toBeInstanceOf(InvalidArgumentError);
    expect(e.message).toMatch(new RegExp(`is in use by "m2 train bert --preset tiny" \\(pid ${process.pid} on `));
    lock.release();
    lock.release();
    expect(existsSync(join(dir, DIR_LOCK_FILE))).toBe(false);
    (await acquireDirLock(dir, 'third run')).release();
  });

  it('refuses a lock held by a live process and takes over the lock of a SIGKILLed one', async () => {
    const dir = join(scratch, 'run-b');
    const proc = await startChild('lock', dir);
    const e = await rejection(acquireDirLock(dir, 'me'));
    expect(e.message).toMatch(new RegExp(`in use by "atomic-child lock holder" \\(pid ${proc.pid} `));
    await killed(proc);
    expect(existsSync(join(dir, DIR_LOCK_FILE))).toBe(true); // SIGKILL leaves it behind…
    const lock = await acquireDirLock(dir, 'me'); // …and it is stale now
    expect(lock.info.owner).toBe('me');
    lock.release();
  });

  it('treats a lock from another host as live, and an unreadable lock as stale', async () => {
    const dir = join(scratch, 'run-c');
    await acquireDirLock(dir, 'x').then((l) => l.release());
    const other = { pid: 1, host: 'other-host', owner: 'remote run', startedAt: '2026-01-01T00:00:00.000Z', token: 't' };
    writeFileSync(join(dir, DIR_LOCK_FILE), JSON.stringify(other));
    expect((await rejection(acquireDirLock(dir, 'me'))).message).toMatch(/pid 1 on other-host.*delete .*\.m2\.lock if that run is gone/);
    writeFileSync(join(dir, DIR_LOCK_FILE), '{"pid": 12');
    (await acquireDirLock(dir, 'me')).release();
  });
});
