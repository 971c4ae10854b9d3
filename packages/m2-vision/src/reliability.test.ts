// config.json fuzzing (issue 10): seeded mutations of the golden configs and random JSON; every failure is a one-line M2Error.
import { describe, expect, it } from 'vitest';
import { catchOneLineM2Error, mutateJson } from '@monarch-mixer/monarch-core/testing';
import * as tf from '@tensorflow/tfjs-core';
import { M2Vision, resolveM2VisionConfig } from './index.js';

describe('M2Vision config fuzzing', () => {
  it('10,000 seeded mutations of the tiny and small configs: resolved or a one-line M2Error', () => {
    const bases = [{ ...resolveM2VisionConfig({ preset: 'tiny' }) }, { ...resolveM2VisionConfig({ preset: 'small' }) }] as Record<string, unknown>[];
    const CASES = 10_000;
    let parsed = 0;
    for (let seed = 0; seed < CASES; seed += 1) {
      const config = mutateJson(bases[seed % 2]!, seed);
      if (catchOneLineM2Error(() => resolveM2VisionConfig(config as Record<string, unknown>), `seed ${seed}`) === undefined) parsed += 1;
    }
    console.log(`config-fuzz m2-vision (resolveM2VisionConfig): ${CASES} cases, ${parsed} resolved, ${CASES - parsed} rejected with a one-line M2Error`);
    expect(parsed).toBeGreaterThan(0);
    expect(CASES - parsed).toBeGreaterThan(CASES / 4);
  });
});

describe('M2Vision input validation', () => {
  const model = new M2Vision({ preset: 'tiny', imageSize: 8, patchSize: 4, modelDim: 16, numLayers: 1, filterOrder: 8 });
  const reject = (images: tf.Tensor, pattern: RegExp) => {
    const before = tf.memory().numTensors;
    expect(catchOneLineM2Error(() => model.logits(images as tf.Tensor4D))?.message).toMatch(pattern);
    expect(tf.memory().numTensors).toBe(before);
    images.dispose();
  };
  it('rejects NaN and Infinity pixels', () => {
    reject(tf.fill([1, 8, 8, 1], NaN), /NaN or Infinity/);
    reject(tf.concat([tf.zeros([1, 8, 8, 1]), tf.fill([1, 8, 8, 1], Infinity)]), /NaN or Infinity/);
  });
  it('rejects a wrong size, rank, dtype and an empty batch', () => {
    reject(tf.zeros([1, 9, 8, 1]), /images must be \[batch, 8, 8, 1\], got \[1, 9, 8, 1\]/);
    reject(tf.zeros([8, 8, 1]), /images must be \[batch, 8, 8, 1\], got \[8, 8, 1\]/);
    reject(tf.zeros([1, 8, 8, 1], 'int32'), /must be float32/);
    reject(tf.zeros([0, 8, 8, 1]), /batch of images is empty/);
  });
  it('accepts finite images', () => {
    const images = tf.fill([2, 8, 8, 1], 0.5) as tf.Tensor4D;
    const logits = model.logits(images);
    expect(logits.shape).toEqual([2, 10]);
    tf.dispose([images, logits]);
  });
});
