// monarchMatmul's wasm inference path (per-block 2-D matMuls on cached, pre-transposed factors) against the float64
// reference, square and rectangular, and its cache: reused, refreshed when a factor's values change, no leaks.
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectMonarchMatchesReference } from '../test/monarch-cases.js';
import type { MonarchCase } from '../test/monarch-cases.js';
import { setupBackend } from './backends/setup-backend.js';
import { clearMonarchCache, monarchMatmul } from './monarch.js';
import { expectTensorsClose, monarchMatmulReference } from './testing.js';

const previous = tf.getBackend();
beforeAll(async () => {
  await setupBackend('wasm', { threads: 1 });
});
afterAll(async () => {
  clearMonarchCache();
  await tf.setBackend(previous);
});

describe('monarchMatmul on wasm', () => {
  it('matches the float64 reference for square and rectangular factors', () => {
    const cases: MonarchCase[] = [
      { x: [5, 64], w1: [8, 8, 8], w2: [8, 8, 8] },
      { x: [2, 3, 24], w1: [4, 6, 6], w2: [6, 5, 4] }, // K·Q = Lb·R = 24, Q ≠ Lb
      { x: [7, 12], w1: [3, 2, 4], w2: [2, 3, 3] },
    ];
    expectMonarchMatchesReference(cases, 1);
  });

  it('reuses its cached factors without growing memory, and follows a factor whose values change', () => {
    const x = tf.randomNormal([4, 16], 0, 1, 'float32', 7);
    const w1 = tf.variable(tf.randomNormal([4, 4, 4], 0, 1, 'float32', 8)) as tf.Variable<tf.Rank.R3>;
    const w2 = tf.randomNormal([4, 4, 4], 0, 1, 'float32', 9) as tf.Tensor3D;
    tf.dispose(monarchMatmul(x, w1, w2));
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) tf.dispose(monarchMatmul(x, w1, w2));
    expect(tf.memory().numTensors).toBe(before);
    w1.assign(tf.randomNormal([4, 4, 4], 0, 1, 'float32', 10) as tf.Tensor3D);
    const y = monarchMatmul(x, w1, w2);
    expectTensorsClose(y, monarchMatmulReference(x, w1, w2), 1e-5, 'after assign');
    const g = tf.grad((f: tf.Tensor) => tf.sum(monarchMatmul(x, f as tf.Tensor3D, w2)))(w1);
    expect(g.shape).toEqual([4, 4, 4]);
    tf.dispose([x, w1, w2, y, g]);
  });
});
