import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { resolveM2VisionConfig } from './m2-vision-config.js';
import { countVitBaselineParameters, VitBaseline, vitBaselineConfigFor } from './vit-baseline.js';
import { patchify } from './nn.js';

describe('VitBaseline', () => {
  it('has the analytic parameter count and the right output shape', () => {
    const config = vitBaselineConfigFor(resolveM2VisionConfig({ preset: 'tiny', numLayers: 1 }));
    const model = new VitBaseline(config);
    expect(model.countParameters()).toBe(countVitBaselineParameters(config));
    const logits = model.logits(tf.zeros([2, 28, 28, 1]));
    expect(logits.shape).toEqual([2, 10]);
    logits.dispose();
    model.dispose();
  });

  it('patchify cuts row-major P×P patches', () => {
    const image = tf.tensor4d(Float32Array.from({ length: 16 }, (_, i) => i), [1, 4, 4, 1]);
    const patches = patchify(image, 2);
    expect(patches.shape).toEqual([4, 4]);
    expect(patches.arraySync()).toEqual([
      [0, 1, 4, 5],
      [2, 3, 6, 7],
      [8, 9, 12, 13],
      [10, 11, 14, 15],
    ]);
    tf.dispose([image, patches]);
  });

  it('trains: the loss on a fixed small batch falls', () => {
    const config = vitBaselineConfigFor(resolveM2VisionConfig({ preset: 'tiny', numLayers: 1, modelDim: 32, imageSize: 8, patchSize: 2, numClasses: 2 }));
    const model = new VitBaseline(config, { seed: 1 });
    const images = tf.tidy(() => tf.concat([tf.zeros([4, 8, 8, 1]), tf.ones([4, 8, 8, 1])]) as tf.Tensor4D);
    const labels = tf.tensor1d([0, 0, 0, 0, 1, 1, 1, 1], 'int32');
    const optimizer = tf.train.adam(1e-2);
    const first = tf.tidy(() => model.loss(images, labels).dataSync()[0]);
    for (let step = 0; step < 20; step++) optimizer.minimize(() => model.loss(images, labels), false, model.trainableVariables());
    const last = tf.tidy(() => model.loss(images, labels).dataSync()[0]);
    expect(last).toBeLessThan(first * 0.1);
    tf.dispose([images, labels]);
    optimizer.dispose();
    model.dispose();
  });
});
