import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runTraining } from './trainer.js';
import { resolveModelFolder } from './checkpoint.js';
import type { TrainerOptions } from './trainer.js';
import { createToyTask } from './toy-task.js';

const base = (outDir: string): TrainerOptions => ({
  outDir, steps: 12, seed: 3, optimizer: { lr: 0.05, weightDecay: 0.01 }, progress: false, runOptions: {},
  warmupSteps: 2,
});

describe('runTraining', () => {
  it('lowers the loss, checkpoints atomically and writes metrics, plot and JSON', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'm2-train-'));
    const task = createToyTask();
    const result = await runTraining(task, { ...base(dir), checkpointEvery: 4, evalEvery: 4, jsonFile: join(dir, 'r.json') });
    task.dispose();
    expect(result.losses).toHaveLength(12);
    expect(result.evals.at(-1)!.loss).toBeLessThan(result.evals[0].loss);
    const names = (await readdir(dir)).sort();
    expect(names).toEqual(['curves.svg', 'latest', 'metrics.jsonl', 'r.json', 'step-000004', 'step-000008', 'step-000012']);
    expect((await readFile(join(dir, 'latest'), 'utf8')).trim()).toBe('step-000012');
    expect(await readdir(join(dir, 'step-000012'))).toEqual(
      expect.arrayContaining(['config.json', 'model.safetensors', 'optimizer.safetensors', 'trainer-state.json']),
    );
    expect((await readFile(join(dir, 'curves.svg'), 'utf8')).startsWith('<svg')).toBe(true);
    const json = JSON.parse(await readFile(join(dir, 'r.json'), 'utf8'));
    expect(json.losses).toEqual(result.losses);
  });

  it('resumes exactly: losses after the resume equal an uninterrupted run', async () => {
    const full = await mkdtemp(join(tmpdir(), 'm2-train-'));
    const a = createToyTask();
    const uninterrupted = await runTraining(a, { ...base(full) });
    a.dispose();
    const split = await mkdtemp(join(tmpdir(), 'm2-train-'));
    const b = createToyTask();
    await runTraining(b, { ...base(split), steps: 12, checkpointEvery: 5, keepCheckpoints: 10 });
    b.dispose();
    // Resume from step 5 explicitly, into the same folder.
    const c = createToyTask();
    const resumed = await runTraining(c, { ...base(split), resume: join(split, 'step-000005') });
    c.dispose();
    expect(resumed.resumedFrom).toBe(5);
    expect(resumed.losses).toHaveLength(12);
    for (let i = 0; i < 12; i++) expect(Math.abs(resumed.losses[i] - uninterrupted.losses[i])).toBeLessThanOrEqual(1e-6);
  });

  it('after a kill mid-write, removes temporaries and puts back a checkpoint that was being replaced', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'm2-train-'));
    const a = createToyTask();
    const uninterrupted = await runTraining(a, { ...base(dir), checkpointEvery: 4, keepCheckpoints: 10 });
    a.dispose();
    // What a run (pid `dead`) killed while replacing step-000008 leaves: the complete old checkpoint moved aside,
    // its replacement half-written, and writeFileAtomic temporaries of `latest` and the metrics log.
    const dead = spawnSync(process.execPath, ['-e', '']).pid!;
    await rename(join(dir, 'step-000008'), join(dir, `ckpt.tmp-old-${dead}-8`));
    await mkdir(join(dir, `ckpt.tmp-${dead}-8`));
    await writeFile(join(dir, `ckpt.tmp-${dead}-8`, 'model.safetensors'), 'cut sh');
    await writeFile(join(dir, `.latest.${dead}.k3j2h1.tmp`), 'step-0');
    await writeFile(join(dir, `.metrics.jsonl.${dead}.a1b2c3.tmp`), '{"kind":"tr');
    const b = createToyTask();
    const resumed = await runTraining(b, { ...base(dir), resume: join(dir, 'step-000008'), keepCheckpoints: 10 });
    b.dispose();
    expect(resumed.resumedFrom).toBe(8);
    for (let i = 0; i < 12; i++) expect(Math.abs(resumed.losses[i] - uninterrupted.losses[i])).toBeLessThanOrEqual(1e-6);
    expect((await readdir(dir)).sort()).toEqual(['curves.svg', 'latest', 'metrics.jsonl', 'step-000004', 'step-000008', 'step-000012']);
  });

  it('refuses a fresh run into a folder that holds checkpoints, in one line, touching nothing', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'm2-train-'));
    const a = createToyTask();
    await runTraining(a, { ...base(dir), steps: 4, checkpointEvery: 2 });
    a.dispose();
    const names = (await readdir(dir)).sort();
    const metrics = await readFile(join(dir, 'metrics.jsonl'), 'utf8');
    const b = createToyTask();
    const error = await runTraining(b, base(dir)).then(() => undefined, (e: unknown) => e as Error);
    b.dispose();
    expect(error?.message).toMatch(/already holds checkpoints of a run \(newest step-000004\); continue it with --resume /);
    expect(error?.message).not.toContain('\n');
    expect((await readdir(dir)).sort()).toEqual(names);
    expect(await readFile(join(dir, 'metrics.jsonl'), 'utf8')).toBe(metrics);
  });

  it('--init accepts a model folder, a run folder or its latest pointer', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'm2-train-'));
    const a = createToyTask();
    await runTraining(a, { ...base(dir), steps: 4, checkpointEvery: 2 });
    a.dispose();
    const newest = join(dir, 'step-000004');
    expect(await resolveModelFolder(newest)).toBe(newest);
    expect(await resolveModelFolder(dir)).toBe(newest);
    expect(await resolveModelFolder(join(dir, 'latest'))).toBe(newest);
    expect(await resolveModelFolder(join(dir, 'nowhere'))).toBe(join(dir, 'nowhere'));
  });

  it('accumulating 2 micro-batches of 4 equals one batch of 8', async () => {
    const one = createToyTask({ batchSize: 8 });
    const r1 = await runTraining(one, { ...base(await mkdtemp(join(tmpdir(), 'm2-train-'))), steps: 5 });
    const w1 = one.parameters().get('dense.weight')!.dataSync().slice();
    one.dispose();
    const two = createToyTask({ batchSize: 4 });
    const r2 = await runTraining(two, { ...base(await mkdtemp(join(tmpdir(), 'm2-train-'))), steps: 5, accumulate: 2 });
    const w2 = two.parameters().get('dense.weight')!.dataSync().slice();
    two.dispose();
    for (let i = 0; i < 5; i++) expect(r2.losses[i]).toBeCloseTo(r1.losses[i], 5);
    for (let i = 0; i < w1.length; i++) expect(w2[i]).toBeCloseTo(w1[i], 5);
  });

  it('stops on a NaN loss with the step number, applies nothing and keeps the last checkpoint', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'm2-train-'));
    const task = createToyTask({ nanAtCall: 7 });
    await expect(runTraining(task, { ...base(dir), checkpointEvery: 3 })).rejects.toThrow(
      /training loss is NaN at step 7 .*last good checkpoint is .*step-000006/,
    );
    expect(task.parameters().get('dense.weight')!.dataSync().every(Number.isFinite)).toBe(true);
    task.dispose();
    expect((await readFile(join(dir, 'latest'), 'utf8')).trim()).toBe('step-000006');
    expect(await readdir(dir)).not.toContain('.m2.lock');
  });

  it('refuses a second run in a locked folder with one line naming the holder', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'm2-train-'));
    const first = createToyTask();
    const second = createToyTask();
    let second_: Promise<unknown> | undefined;
    await runTraining(first, {
      ...base(dir), steps: 3,
      // While the first run holds the lock, a second run in the same folder must be refused.
      onStep: ({ step }) => {
        if (step === 1) second_ = runTraining(second, base(dir)).then(() => 'no error', (e: unknown) => e);
      },
    });
    const error = await second_;
    first.dispose();
    second.dispose();
    expect(String(error)).toMatch(/is in use by "m2 train toy" \(pid \d+/);
    expect(String(error)).not.toContain('\n');
  });

  it('keeps live tensors and bytes flat over 200 steps', async () => {
    const task = createToyTask();
    const counts: number[] = [];
    const bytes: number[] = [];
    await runTraining(task, {
      ...base(await mkdtemp(join(tmpdir(), 'm2-train-'))), steps: 200, evalEvery: 50,
      onStep: () => {
        counts.push(tf.memory().numTensors);
        bytes.push(tf.memory().numBytes);
      },
    });
    task.dispose();
    expect(new Set(counts.slice(1)).size).toBe(1);
    expect(new Set(bytes.slice(1)).size).toBe(1);
  });
});
