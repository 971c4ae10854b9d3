// The wasm backend as setupBackend sets it up: threads through our shim, results equal to cpu, and the
// kernels we add for training (UnsortedSegmentSum → gradient of gather).
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectTensorsClose, seededUniform } from '../testing.js';
import { setupBackend } from './setup-backend.js';
import type { BackendInfo } from './setup-backend.js';

const previous = tf.getBackend();
const wasInitialised = tf.engine().registry.wasm !== undefined;
let info: BackendInfo;

beforeAll(async () => {
  info = await setupBackend('wasm', { threads: 2 });
});
afterAll(async () => {
  await tf.setBackend(previous);
});

const random = seededUniform;

/** Runs `f` on the cpu backend and returns its result's values and shape. */
async function onCpu(f: () => tf.Tensor): Promise<{ shape: number[]; data: Float32Array }> {
  await tf.setBackend('cpu');
  try {
    const t = f();
    const result = { shape: t.shape, data: t.dataSync() as Float32Array };
    t.dispose();
    return result;
  } finally {
    await tf.setBackend('wasm');
  }
}

describe('setupBackend("wasm")', () => {
  it('runs SIMD with the requested threads in Node', async () => {
    expect(info.name).toBe('wasm');
    expect(tf.getBackend()).toBe('wasm');
    expect(info.description).toContain('SIMD');
    // The thread count is fixed by the first wasm set-up in a process (M2_TEST_BACKEND=wasm sets up 1).
    if (!wasInitialised) expect(info.threads).toBe(2);
    const again = await setupBackend('wasm');
    expect(again.threads).toBe(info.threads);
  });

  it('computes a 256×192 · 192×160 matMul equal to the cpu backend', async () => {
    const a = random(256 * 192, 1);
    const b = random(192 * 160, 2);
    const f = () => tf.matMul(tf.tensor2d(a, [256, 192]), tf.tensor2d(b, [192, 160]));
    const expected = await onCpu(f);
    const actual = tf.tidy(f);
    expectTensorsClose(actual, expected, 1e-5);
    actual.dispose();
  });

  it('differentiates through gather (embedding lookup) like the cpu backend', async () => {
    const table = random(50 * 8, 3);
    const weights = random(3 * 7 * 8, 4);
    const ids = Int32Array.from({ length: 21 }, (_, i) => (i * 17) % 50);
    const lossGrad = () => tf.grad((t: tf.Tensor) => {
      const rows = tf.gather(t, tf.tensor2d(ids, [3, 7], 'int32')); // [3, 7, 8]
      return tf.sum(tf.mul(tf.tanh(rows), tf.tensor3d(weights, [3, 7, 8])));
    })(tf.tensor2d(table, [50, 8]));
    const expected = await onCpu(lossGrad);
    const before = tf.memory().numTensors;
    const actual = tf.tidy(lossGrad);
    expectTensorsClose(actual, expected, 1e-5);
    actual.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('sums segments like TensorFlow: 2-D ids, int32 values, out-of-range ids dropped', () => {
    // float64 reference: out[s, j] = Σ over i with ids[i] = s of x[i, j].
    const ids = [[0, 3], [3, -1], [5, 1]];
    const x = random(6 * 4, 5);
    const expected = new Float64Array(4 * 4);
    ids.flat().forEach((s, i) => {
      if (s < 0 || s >= 4) return;
      for (let j = 0; j < 4; j++) expected[s * 4 + j] += x[i * 4 + j];
    });
    const out = tf.unsortedSegmentSum(tf.tensor3d(x, [3, 2, 4]), tf.tensor2d(ids, [3, 2], 'int32'), 4);
    expectTensorsClose(out, { shape: [4, 4], data: expected }, 1e-6);
    const ints = tf.unsortedSegmentSum(tf.tensor1d([5, 7, 11], 'int32'), tf.tensor1d([1, 1, 0], 'int32'), 3);
    expect(ints.dtype).toBe('int32');
    expect(Array.from(ints.dataSync())).toEqual([11, 12, 0]);
    tf.dispose([out, ints]);
  });

  it.each([
    ['same', 1], ['valid', 2],
  ] as const)('differentiates conv1d (pad %s, stride %i) w.r.t. input and filter like cpu', async (pad, stride) => {
    const x = random(2 * 11 * 3, 6);
    const w = random(3 * 3 * 4, 7);
    const grads = () => tf.grads((a: tf.Tensor, f: tf.Tensor) => tf.sum(tf.square(tf.conv1d(a as tf.Tensor3D, f as tf.Tensor3D, stride, pad))))(
      [tf.tensor3d(x, [2, 11, 3]), tf.tensor3d(w, [3, 3, 4])]);
    const expected = await Promise.all([0, 1].map((i) => onCpu(() => grads()[i])));
    const actual = grads();
    actual.forEach((g, i) => expectTensorsClose(g, expected[i], 1e-5, `grad ${i}`));
    tf.dispose(actual);
  });

  it('differentiates depthwiseConv2d (channel multiplier 2, causal padding) w.r.t. input and filter like cpu', async () => {
    const x = random(2 * 1 * 9 * 3, 8);
    const w = random(1 * 3 * 3 * 2, 9);
    const grads = () => tf.grads((a: tf.Tensor, f: tf.Tensor) => {
      const padded = tf.pad(a, [[0, 0], [0, 0], [2, 0], [0, 0]]); // causal: 2 zeros before each sequence
      return tf.sum(tf.mul(tf.depthwiseConv2d(padded as tf.Tensor4D, f as tf.Tensor4D, 1, 'valid'), tf.reshape(tf.range(1, 109), [2, 1, 9, 6])));
    })([tf.tensor4d(x, [2, 1, 9, 3]), tf.tensor4d(w, [1, 3, 3, 2])]);
    const expected = await Promise.all([0, 1].map((i) => onCpu(() => grads()[i])));
    const before = tf.memory().numTensors;
    const actual = tf.tidy(grads);
    actual.forEach((g, i) => expectTensorsClose(g, expected[i], 1e-5, `grad ${i}`));
    tf.dispose(actual);
    expect(tf.memory().numTensors).toBe(before);
  });
});
