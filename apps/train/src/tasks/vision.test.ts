import * as tf from '@tensorflow/tfjs-core';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadImageClassifier, M2Vision } from '@monarch-mixer/m2-vision';
import { runTraining } from '../trainer.js';
import type { ImageSplits } from '../data/images.js';
import { createVisionTask, evaluateClassifier, useTransposeFreeMatMulGradient, writeVisionReport } from './vision.js';

const scratch = mkdtempSync(join(tmpdir(), 'm2-vision-task-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** Two classes of noisy 8×8 images: dark ([0, 0.5)) or bright ([0.5, 1)). */
function darkOrBright(count: number, seed: number): ImageSplits['train'] {
  let s = seed;
  const random = () => ((s = (s * 16807) % 2147483647) / 2147483647);
  const images = new Float32Array(count * 64);
  const labels = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    labels[i] = i % 2;
    for (let p = 0; p < 64; p++) images[i * 64 + p] = 0.5 * random() + 0.5 * labels[i];
  }
  return { images, labels, count, imageSize: 8, channels: 1, labelNames: ['dark', 'bright'] };
}

describe('m2 train vision task', () => {
  it('the transpose-free matMul gradient equals tfjs\'s for every transpose flag', () => {
    const a = tf.randomNormal([2, 3, 4], 0, 1, 'float32', 1);
    const b = tf.randomNormal([2, 4, 5], 0, 1, 'float32', 2);
    const w = tf.randomNormal([2, 3, 5], 0, 1, 'float32', 3);
    const cases: Array<[tf.Tensor, tf.Tensor, boolean, boolean]> = [
      [a, b, false, false],
      [a, tf.transpose(b, [0, 2, 1]), false, true],
      [tf.transpose(a, [0, 2, 1]), b, true, false],
      [tf.transpose(a, [0, 2, 1]), tf.transpose(b, [0, 2, 1]), true, true],
    ];
    const gradients = () => cases.map(([x, y, ta, tb]) => tf.grads((p: tf.Tensor, q: tf.Tensor) => tf.sum(tf.mul(tf.matMul(p, q, ta, tb), w)))([x, y]));
    const before = gradients().map((pair) => pair.map((g) => Array.from(g.dataSync())));
    useTransposeFreeMatMulGradient();
    const after = gradients().map((pair) => pair.map((g) => Array.from(g.dataSync())));
    for (let c = 0; c < 4; c++) for (let k = 0; k < 2; k++) after[c][k].forEach((v, i) => expect(v).toBeCloseTo(before[c][k][i], 4));
  });

  it('trains the M2 vision mixer through the trainer, checkpoints a loadable model, and reports accuracy', async () => {
    const data: ImageSplits = { train: darkOrBright(64, 3), test: darkOrBright(32, 5) };
    const model = new M2Vision({ imageSize: 8, channels: 1, patchSize: 2, modelDim: 16, numLayers: 1, filterOrder: 8, numClasses: 2, labels: ['dark', 'bright'] }, { seed: 1 });
    const task = createVisionTask(model, data, { batchSize: 16, augment: { cropPadding: 1, horizontalFlip: false } });
    const tensorsPerStep: number[] = [];
    const result = await runTraining(task, {
      outDir: join(scratch, 'run'), steps: 16, seed: 1, optimizer: { lr: 3e-3, weightDecay: 0 }, warmupSteps: 2, progress: false, runOptions: {},
      onStep: () => tensorsPerStep.push(tf.memory().numTensors),
    });
    expect(new Set(tensorsPerStep.slice(1)).size).toBe(1); // no growth from step to step
    expect(result.final.accuracy).toBeGreaterThanOrEqual(0.9);
    const loaded = await loadImageClassifier(result.checkpoint);
    const evaluation = await evaluateClassifier(loaded, data.test, 10);
    expect(evaluation.accuracy).toBeCloseTo(result.final.accuracy, 6);
    expect(JSON.parse(readFileSync(join(result.checkpoint, 'config.json'), 'utf8')).config.labels).toEqual(['dark', 'bright']);
    loaded.dispose();
    task.dispose();
  });

  it('writes the comparison table, JSON and plot from two run summaries', async () => {
    const run = (model: string, accuracy: number, params: number) => ({
      model, dataset: 'mnist', preset: 'tiny', backend: 'wasm', test_accuracy: accuracy, test_loss: 0.1, params, steps: 3,
      train_seconds: 60, cpu_seconds: 55, images_per_second: 10, load_average: [9, 10], losses: [2.3, 1.5, 0.9],
    });
    const stem = join(scratch, 'vision-mnist');
    await writeVisionReport([run('attention', 0.97, 200), run('m2', 0.98, 118)], stem);
    const markdown = readFileSync(`${stem}.md`, 'utf8');
    expect(markdown).toContain('| M2 vision mixer | 118 | 98.00% |');
    expect(markdown).toContain('Parameter ratio M2 / attention: 0.590. M2 accuracy ≥ attention accuracy.');
    expect(readFileSync(`${stem}.svg`, 'utf8')).toContain('<svg');
    expect(JSON.parse(readFileSync(`${stem}.json`, 'utf8')).m2_at_least_attention).toBe(true);
  });
});
