import * as tf from '@tensorflow/tfjs-core';
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { compareCheckpointedStep, tensorsWithoutCaches } from '@monarch-mixer/m2-layers/testing';
import { M2Vision } from './m2-vision.js';
import { countM2VisionParameters } from './m2-vision-config.js';
import { VitBaseline, vitBaselineConfigFor } from './vit-baseline.js';
import { loadImageClassifier } from './load.js';

const scratch = mkdtempSync(join(tmpdir(), 'm2-vision-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** A small model: 8×8 images, 2×2 patches (16 patches), d 16, 1 block. */
const SMALL = { imageSize: 8, channels: 1, patchSize: 2, modelDim: 16, numLayers: 1, filterOrder: 8, numClasses: 3, labels: ['zero', 'one', 'two'] };

function images(batch: number, size = 8, channels = 1, seed = 1): tf.Tensor4D {
  return tf.randomUniform([batch, size, size, channels], 0, 1, 'float32', seed) as tf.Tensor4D;
}

describe('M2Vision', () => {
  it('maps images to logits and patch features of the documented shapes; parameters = the analytic count', () => {
    const model = new M2Vision({ preset: 'tiny', numLayers: 1 });
    const x = images(2, 28);
    const features = model.features(x);
    const logits = model.logits(x);
    expect(features.shape).toEqual([2, 49, 64]);
    expect(logits.shape).toEqual([2, 10]);
    expect(model.countParameters()).toBe(countM2VisionParameters(model.config).total);
    tf.dispose([x, features, logits]);
    model.dispose();
  });

  it('building and disposing a model (M2 or ViT) leaves no tensor behind', () => {
    const before = tf.memory().numTensors;
    const m2 = new M2Vision({ preset: 'tiny' });
    new VitBaseline(vitBaselineConfigFor(m2.config)).dispose();
    m2.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('dispose frees the mixers\' cached inference tensors too: build, classify, dispose leaves no tensor behind', () => {
    // monarch-core's DFT and Monarch factor caches (kept on purpose, per length) are emptied before both counts.
    const before = tensorsWithoutCaches();
    const model = new M2Vision(SMALL);
    const x = images(2);
    tf.dispose([x, model.logits(x)]); // inference: fills the mixers' caches
    expect(tf.memory().numTensors).toBeGreaterThan(before + model.trainableVariables().length);
    model.dispose();
    expect(tensorsWithoutCaches()).toBe(before);
  });

  it('is at most 0.6× the attention ViT of the same shape (tiny preset)', () => {
    const tiny = new M2Vision({ preset: 'tiny' }).config;
    const m2 = countM2VisionParameters(tiny).total;
    const vit = new VitBaseline(vitBaselineConfigFor(tiny));
    expect(m2 / vit.countParameters()).toBeLessThan(0.6);
    vit.dispose();
  });

  it('mixes across patches: changing one patch changes the pooled logits of the other patches\' features', () => {
    const model = new M2Vision(SMALL, { seed: 3 });
    const x = images(1);
    const changed = tf.tidy(() => tf.add(x, tf.pad(tf.ones([1, 2, 2, 1]), [[0, 0], [6, 0], [6, 0], [0, 0]])) as tf.Tensor4D); // last patch only
    const [a, b] = [model.features(x), model.features(changed)];
    const firstPatchDiff = tf.tidy(() => tf.max(tf.abs(tf.sub(tf.slice(a, [0, 0, 0], [1, 1, 16]), tf.slice(b, [0, 0, 0], [1, 1, 16])))).dataSync()[0]);
    // The bidirectional conv carries the last patch back to the first. The mixer's weights come from tfjs-layers'
    // unseeded initializers, so the size of the effect varies from run to run (it fell below 1e-4 in some runs);
    // without mixing the first patch's features would be identical up to FFT round-off (~1e-8).
    expect(firstPatchDiff).toBeGreaterThan(1e-6);
    tf.dispose([x, changed, a, b]);
    model.dispose();
  });

  it('has finite gradients for every weight that match finite differences', () => {
    const model = new M2Vision(SMALL, { seed: 5 });
    const x = images(4);
    const y = tf.tensor1d([0, 1, 2, 1], 'int32');
    const variables = model.trainableVariables();
    const { value, grads } = tf.variableGrads(() => model.loss(x, y), variables);
    for (const v of variables) {
      const g = grads[v.name];
      expect(g, v.name).toBeDefined();
      expect(tf.tidy(() => tf.all(tf.isFinite(g)).dataSync()[0]), v.name).toBe(1);
    }
    // Central differences on a few entries of the patch embedding and of the first mixer input weight.
    const weights = model.namedWeights();
    for (const name of ['patch_embed.weight', 'blocks.0.mixer.in_linear.weight', 'blocks.0.mlp.wo.weight']) {
      const variable = weights.get(name)!;
      const analytic = grads[variable.name].dataSync();
      const original = variable.dataSync().slice();
      for (const index of [0, 7, 13]) {
        const eps = 1e-2;
        const lossAt = (delta: number): number => {
          const values = original.slice();
          values[index] += delta;
          variable.assign(tf.tensor(values, variable.shape));
          return tf.tidy(() => model.loss(x, y).dataSync()[0]);
        };
        const numeric = (lossAt(eps) - lossAt(-eps)) / (2 * eps);
        variable.assign(tf.tensor(original, variable.shape));
        expect(Math.abs(numeric - analytic[index]), `${name}[${index}]`).toBeLessThan(2e-3 + 0.05 * Math.abs(analytic[index]));
      }
    }
    tf.dispose([x, y, value, ...Object.values(grads)]);
    model.dispose();
  });

  it('gradient checkpointing: same loss and gradients, a smaller tape, no leaked tensors', async () => {
    const model = new M2Vision({ ...SMALL, imageSize: 16, numLayers: 3 }, { seed: 6 });
    const x = images(4, 16);
    const y = tf.tensor1d([0, 1, 2, 1], 'int32');
    const variables = model.trainableVariables();
    const step = (gradientCheckpointing: boolean) => tf.variableGrads(() => model.loss(x, y, 0, { gradientCheckpointing }), variables);
    const { plainLoss, rematLoss, rematTensors, gaps } = compareCheckpointedStep(step, variables);
    expect(rematTensors).toBe(1 + variables.length);
    expect(Math.abs(rematLoss - plainLoss) / plainLoss).toBeLessThan(1e-6);
    for (const { name, gap } of gaps) expect(gap, name).toBeLessThan(1e-5);
    // Outside a tape the option changes nothing.
    const [a, b] = [model.logits(x, { gradientCheckpointing: true }), model.logits(x)];
    expect(tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0])).toBe(0);
    tf.dispose([a, b]);
    // The tape's peak: every block's activations vs the block inputs plus one block's activations at a time.
    const peak = async (gradientCheckpointing: boolean) => (await tf.profile(() => tf.dispose(Object.values(step(gradientCheckpointing).grads)))).peakBytes;
    const [plainPeak, rematPeak] = [await peak(false), await peak(true)];
    expect(rematPeak).toBeLessThan(0.8 * plainPeak);
    tf.dispose([x, y]);
    model.dispose();
  });

  it('overfits a small batch', () => {
    const model = new M2Vision({ ...SMALL, numClasses: 2, labels: ['dark', 'bright'] }, { seed: 7 });
    const x = tf.tidy(() => tf.concat([tf.mul(images(4, 8, 1, 2), 0.3), tf.add(tf.mul(images(4, 8, 1, 3), 0.3), 0.7)]) as tf.Tensor4D);
    const y = tf.tensor1d([0, 0, 0, 0, 1, 1, 1, 1], 'int32');
    const optimizer = tf.train.adam(1e-2);
    const first = tf.tidy(() => model.loss(x, y).dataSync()[0]);
    for (let step = 0; step < 25; step++) optimizer.minimize(() => model.loss(x, y), false, model.trainableVariables());
    const last = tf.tidy(() => model.loss(x, y).dataSync()[0]);
    expect(last).toBeLessThan(Math.min(0.05, first * 0.1));
    tf.dispose([x, y]);
    optimizer.dispose();
    model.dispose();
  });

  it('classifies with labels, top-k sorted, without leaking tensors', async () => {
    const model = new M2Vision(SMALL, { seed: 9 });
    const image = tf.randomUniform([8, 8, 1], 0, 1, 'float32', 4) as tf.Tensor3D;
    const first = await model.classify(image, { topK: 2 });
    expect(first).toHaveLength(2);
    expect(SMALL.labels).toContain(first[0].label);
    expect(first[0].probability).toBeGreaterThanOrEqual(first[1].probability);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) await model.classify(image, { topK: 3 });
    expect(tf.memory().numTensors).toBe(before);
    const all = await model.classify(image, { topK: 3 });
    expect(all.reduce((s, p) => s + p.probability, 0)).toBeCloseTo(1, 5);
    await expect(model.classify(image, { topK: 0 })).rejects.toThrow(/topK must be a positive integer, got 0/);
    const wrong = tf.zeros([9, 9, 1]) as tf.Tensor3D;
    await expect(model.classify(wrong)).rejects.toThrow(/^m2-vision\.classify: images must be \[batch, 8, 8, 1\], got \[1, 9, 9, 1\]\.$/);
    tf.dispose([image, wrong]);
    model.dispose();
  });

  it('saves config.json + model.safetensors and loads them back exactly', async () => {
    const model = new M2Vision(SMALL, { seed: 11 });
    const dir = join(scratch, 'm2');
    await model.save(dir);
    expect(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'))).toMatchObject({ modelType: 'm2-vision', format: 1, config: { modelDim: 16, labels: SMALL.labels } });
    const loaded = await loadImageClassifier(dir);
    expect(loaded).toBeInstanceOf(M2Vision);
    const x = images(2);
    const [a, b] = [model.logits(x), loaded.logits(x)];
    expect(Array.from(b.dataSync())).toEqual(Array.from(a.dataSync()));
    tf.dispose([x, a, b]);
    loaded.dispose();
    const vit = new VitBaseline(vitBaselineConfigFor(model.config), { seed: 1 });
    await vit.save(join(scratch, 'vit'));
    const vitLoaded = await loadImageClassifier(join(scratch, 'vit'));
    expect(vitLoaded).toBeInstanceOf(VitBaseline);
    vitLoaded.dispose();
    vit.dispose();
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ modelType: 'm2-gpt', format: 1, config: {} }));
    await expect(loadImageClassifier(dir)).rejects.toThrow(/modelType "m2-gpt" is not a vision model \(expected m2-vision or vit-baseline\)\.$/);
    await expect(M2Vision.load(join(scratch, 'missing'))).rejects.toThrow(/missing.config\.json: cannot read the model config \(not found\)\.$/);
    model.dispose();
  });
});
