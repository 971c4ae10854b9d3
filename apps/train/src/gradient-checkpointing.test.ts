// `--gradient-checkpointing` recomputes each M2 layer in the backward pass: a training run with it takes the same
// steps as one without (same losses to float round-off), the option is stored with the run so that `--resume` keeps
// it, and the attention baselines say in one line that they train without it.
import * as tf from '@tensorflow/tfjs-core';
import { Command } from 'commander';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BERT_SPECIAL_IDS, M2Bert } from '@monarch-mixer/m2-bert';
import { BaselineGpt, baselineGptConfigFor, M2Gpt } from '@monarch-mixer/m2-gpt';
import { M2Vision } from '@monarch-mixer/m2-vision';
import { m2Train, useTrainWorkspace } from '../test/helpers.js';
import { addCommonTrainFlags, mergeResumeOptions } from './flags.js';
import type { CommonTrainFlags } from './flags.js';
import { runTraining } from './trainer.js';
import type { TrainerOptions, TrainTask } from './trainer.js';
import { TrainRng } from './rng.js';
import { createMlmTask, withSeededMathRandom } from './tasks/bert.js';
import { asTrainable, createGptTask } from './tasks/gpt.js';
import { createVisionTask } from './tasks/vision.js';
import type { ImageSplits } from './data/images.js';

// A small public-domain corpus: the first 4 chapters of Moby-Dick; wasm is the CLI's default backend (pure-JS
// cpu is much slower for these shapes).
const ws = useTrainWorkspace('m2-train-gc-', { backend: 'wasm', corpus: { first: 0, count: 4 } });

/** Peak bytes of one training step's loss and gradients above what exists before (the trainer's tf.variableGrads). */
async function stepPeakBytes(task: TrainTask): Promise<number> {
  const variables = [...task.parameters().values()];
  const start = tf.memory().numBytes;
  const info = await tf.profile(() => {
    const { value, grads } = tf.variableGrads(() => task.trainLoss(new TrainRng(9)).loss, variables);
    tf.dispose([value, ...Object.values(grads)]);
  });
  return info.peakBytes - start;
}

const losses = async (file: string): Promise<number[]> => JSON.parse(await readFile(file, 'utf8')).losses;

/** Largest |a[i] − b[i]| / max(1, |b[i]|) over two equally long loss lists. */
function maxRelativeGap(a: number[], b: number[]): number {
  expect(a).toHaveLength(b.length);
  return Math.max(...a.map((v, i) => Math.abs(v - b[i]!) / Math.max(1, Math.abs(b[i]!))));
}

describe('m2 train --gradient-checkpointing', () => {
  /** The runOptions stored in the latest checkpoint of a run folder. */
  const storedRunOptions = async (dir: string) => {
    const latest = (await readFile(join(dir, 'latest'), 'utf8')).trim();
    return JSON.parse(await readFile(join(dir, latest, 'trainer-state.json'), 'utf8')).runOptions as Record<string, unknown>;
  };

  it('gpt: the same losses as without it, stored in the run options; the attention baseline says it trains without it', async () => {
    // A narrow two-block M2-GPT with the full GPT-2 vocabulary (the tiny preset is 4× wider and twice as deep).
    const small = join(ws.work, 'small-gpt');
    const model = new M2Gpt({ preset: 'tiny', modelDim: 32, numLayers: 2, filterOrder: 8 }, { seed: 3 });
    await model.save(small);
    model.dispose();
    const run = (name: string, extra: string[]) => m2Train([
      'gpt', '--text', ws.corpus, '--steps', '2', '--seq-len', '16', '--batch-size', '2', '--eval-every', '0', '--seed', '3',
      '--backend', 'wasm', '--no-progress', '--sample-tokens', '1', '--out', join(ws.work, name), '--json', join(ws.work, `${name}.json`), ...extra,
    ]).then((output) => output.stderr);
    await run('gpt-plain', ['--init', small]);
    const stderr = await run('gpt-remat', ['--init', small, '--gradient-checkpointing']);
    expect(stderr).not.toContain('--gradient-checkpointing');
    expect(maxRelativeGap(await losses(join(ws.work, 'gpt-remat.json')), await losses(join(ws.work, 'gpt-plain.json')))).toBeLessThan(1e-5);
    expect((await storedRunOptions(join(ws.work, 'gpt-remat'))).gradientCheckpointing).toBe(true);
    const baselineDir = join(ws.work, 'small-baseline');
    const baseline = new BaselineGpt(baselineGptConfigFor(model.config), { seed: 3 });
    await baseline.save(baselineDir);
    baseline.dispose();
    const attention = await run('gpt-attention', ['--model', 'attention', '--init', baselineDir, '--gradient-checkpointing']);
    expect(attention.split('\n').filter((line) => line.includes('--gradient-checkpointing'))).toEqual([
      'm2 train: --gradient-checkpointing applies to M2 models only; the attention baseline keeps every activation',
    ]);
    // The option reaches M2-GPT through the task: a smaller tape.
    const tokens = Int32Array.from({ length: 400 }, (_, i) => (i * 7919) % 300);
    const peak = async (gradientCheckpointing: boolean) => {
      const m2 = new M2Gpt({ vocabSize: 300, maxLength: 48, modelDim: 32, numLayers: 3, filterOrder: 8 }, { seed: 1 });
      const task = createGptTask(asTrainable(m2), { train: tokens, validation: tokens }, { batchSize: 2, seqLen: 48, gradientCheckpointing });
      const bytes = await stepPeakBytes(task);
      task.dispose();
      return bytes;
    };
    expect(await peak(true)).toBeLessThan(0.8 * (await peak(false)));
  }, 120_000);

  it('--resume keeps the run\'s setting unless the command line gives --gradient-checkpointing or --no-gradient-checkpointing', () => {
    const parsed = (args: string[]) => {
      const command = addCommonTrainFlags(new Command('gpt').exitOverride());
      command.parse(args, { from: 'user' });
      return command;
    };
    const resumed = (saved: Record<string, unknown>, args: string[]) => {
      const command = parsed(['--resume', 'runs/x', ...args]);
      return mergeResumeOptions(saved, command.opts<CommonTrainFlags>(), command).gradientCheckpointing;
    };
    expect(parsed([]).opts<CommonTrainFlags>().gradientCheckpointing).toBeUndefined();
    expect(parsed(['--gradient-checkpointing']).opts<CommonTrainFlags>().gradientCheckpointing).toBe(true);
    expect(resumed({ gradientCheckpointing: true }, [])).toBe(true);
    expect(resumed({ gradientCheckpointing: true }, ['--no-gradient-checkpointing'])).toBe(false);
    expect(resumed({}, ['--gradient-checkpointing'])).toBe(true);
    expect(resumed({}, [])).toBeUndefined(); // a run from before the flag existed
  });

  const options = (outDir: string, steps: number, lr: number): TrainerOptions => ({
    outDir, steps, seed: 2, progress: false, runOptions: {}, warmupSteps: 1, lrFloor: 0, optimizer: { lr, weightDecay: 0 },
  });

  it('vision: the same losses as without it', async () => {
    const split = (count: number, seed: number): ImageSplits['train'] => {
      let s = seed;
      const random = () => ((s = (s * 16807) % 2147483647) / 2147483647);
      const labels = Int32Array.from({ length: count }, (_, i) => i % 2);
      const images = Float32Array.from({ length: count * 64 }, (_, p) => 0.5 * random() + 0.5 * labels[Math.floor(p / 64)]!);
      return { images, labels, count, imageSize: 8, channels: 1, labelNames: ['dark', 'bright'] };
    };
    const data: ImageSplits = { train: split(32, 3), test: split(8, 5) };
    const config = { imageSize: 8, channels: 1, patchSize: 2, modelDim: 16, numLayers: 2, filterOrder: 8, numClasses: 2, labels: ['dark', 'bright'] };
    const train = async (gradientCheckpointing: boolean) => {
      const model = new M2Vision(config, { seed: 1 });
      // The mixers draw their initial weights from tfjs-layers' unseeded initializers: start both runs alike.
      for (const [name, v] of model.namedWeights()) v.assign(reference.get(name)!);
      const peak = await stepPeakBytes(createVisionTask(model, data, { batchSize: 8, gradientCheckpointing }));
      const task = createVisionTask(model, data, { batchSize: 8, gradientCheckpointing });
      const result = await runTraining(task, options(join(ws.work, `vision-${gradientCheckpointing}`), 2, 3e-3));
      task.dispose();
      return { losses: result.losses, peak };
    };
    const first = new M2Vision(config, { seed: 1 });
    const reference = new Map([...first.namedWeights()].map(([name, v]) => [name, tf.clone(v)]));
    first.dispose();
    const [plain, remat] = [await train(false), await train(true)];
    expect(maxRelativeGap(remat.losses, plain.losses)).toBeLessThan(1e-5);
    expect(remat.peak).toBeLessThan(0.8 * plain.peak); // the option reached the model
    tf.dispose([...reference.values()]);
  }, 60_000);

  it('bert-mlm: the same losses as without it (no dropout: the recomputed layers draw their masks from another stream)', async () => {
    const phrase = (k: number) => Array.from({ length: 12 }, (_, i) => 200 + ((k * 5 + i) % 40));
    const seq = (k: number) => Int32Array.from([BERT_SPECIAL_IDS.cls, ...phrase(k), BERT_SPECIAL_IDS.sep, ...phrase(k).slice(0, 2)]);
    const sequences = Array.from({ length: 16 }, (_, k) => seq(k % 8));
    const train = async (gradientCheckpointing: boolean) => {
      // M2Bert draws its initial weights from Math.random-seeded tfjs ops: seed them so that both runs start alike.
      const model = withSeededMathRandom(1, () => new M2Bert({ preset: 'tiny', maxPositionEmbeddings: 16, longConvLMax: 16, hiddenDropout: 0 }));
      const task = createMlmTask(model, { batchSize: 4, train: sequences, validation: sequences.slice(0, 4), gradientCheckpointing });
      const peak = await stepPeakBytes(task); // draws from its own RNG: the task keeps no data position
      const result = await runTraining(task, options(join(ws.work, `mlm-${gradientCheckpointing}`), 2, 1e-2));
      task.dispose();
      return { losses: result.losses, peak };
    };
    const [plain, remat] = [await train(false), await train(true)];
    expect(maxRelativeGap(remat.losses, plain.losses)).toBeLessThan(1e-5);
    expect(remat.peak).toBeLessThan(0.8 * plain.peak); // the option reached the model
  }, 60_000);
});
