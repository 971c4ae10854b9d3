import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { seededUniform } from '../testing.js';
import { registerCpuKernels } from './cpu-kernels.js';
// tfjs-backend-cpu's own UnsortedSegmentSum (the test set-up has already replaced it): the reference.
// @ts-expect-error: a file of the package without type declarations of its own path
import { unsortedSegmentSumConfig as stock } from '@tensorflow/tfjs-backend-cpu/dist/kernels/UnsortedSegmentSum.js';

describe('registerCpuKernels', () => {
  it('UnsortedSegmentSum equals tfjs-backend-cpu\'s kernel (float32 and int32, inner dims, skipped ids) and keeps tf.gather\'s gradient', async () => {
    await tf.setBackend('cpu');
    const ids = tf.tensor1d([3, 0, 3, -1, 5, 1, 1, 9], 'int32'); // −1 and 9 (≥ numSegments) are skipped
    const cases = [
      tf.tensor3d(seededUniform(8 * 2 * 3, 1), [8, 2, 3]),
      tf.tensor2d(Int32Array.from({ length: 8 * 4 }, (_, i) => (i * 7) % 11 - 5), [8, 4], 'int32'),
    ];
    const run = () => cases.map((x) => tf.unsortedSegmentSum(x, ids, 6));
    tf.unregisterKernel(tf.UnsortedSegmentSum, 'cpu');
    tf.registerKernel(stock as tf.KernelConfig);
    const expected = run();
    expect(registerCpuKernels()).toBe(true);
    expect(tf.getKernel(tf.UnsortedSegmentSum, 'cpu')!.kernelFunc).not.toBe((stock as tf.KernelConfig).kernelFunc);
    expect(registerCpuKernels()).toBe(false); // idempotent
    const got = run();
    for (let i = 0; i < cases.length; i++) {
      expect(got[i]!.shape).toEqual(expected[i]!.shape);
      expect(got[i]!.dtype).toBe(expected[i]!.dtype);
      expect(Array.from(await got[i]!.data())).toEqual(Array.from(await expected[i]!.data()));
    }
    const table = tf.tensor2d(seededUniform(6 * 3, 2), [6, 3]);
    const grad = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.gather(t, [2, 0, 2, 5]), tf.tensor2d(seededUniform(12, 3), [4, 3]))))(table);
    const w = seededUniform(12, 3);
    const want = new Float32Array(18);
    [2, 0, 2, 5].forEach((row, r) => { for (let j = 0; j < 3; j++) want[row * 3 + j]! += w[r * 3 + j]!; });
    expect(Array.from(await grad.data())).toEqual(Array.from(want));
    tf.dispose([ids, ...cases, ...expected, ...got, table, grad]);
  });
});
