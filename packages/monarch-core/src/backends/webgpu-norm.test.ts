// The webgpu LayerNorm and GELU-gate kernels (SwiftShader) against float64 definitions.
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, expect, it } from 'vitest';
import { countDispatches, describeWebGpu, readTensor, swiftShaderWebGpu } from '../../test/webgpu-swiftshader.js';
import { erf64, relativeL2, seededUniform } from '../testing.js';
import { geluGate } from './wasm-math-kernels.js';
import { webGpuLayerNorm } from './webgpu-norm.js';

const gpu = await swiftShaderWebGpu();
afterAll(() => tf.setBackend('cpu'));

describeWebGpu(gpu, 'webgpu LayerNorm and GELU gate (SwiftShader)', () => {
  it.each([[3, 5], [2, 300]])('LayerNorm of [%i, d = %i] rows in one dispatch equals float64', async (rows, d) => {
    const x = seededUniform(rows * d, 1).map((v, i) => v * 3 + (i % 7)); // offset rows: a mean to remove
    const w = seededUniform(d, 2);
    const b = seededUniform(d, 3);
    const eps = 1e-5;
    const expected = new Float64Array(rows * d);
    for (let r = 0; r < rows; r++) {
      const row = Array.from(x.subarray(r * d, (r + 1) * d));
      const mean = row.reduce((a, v) => a + v, 0) / d;
      const variance = row.reduce((a, v) => a + (v - mean) ** 2, 0) / d;
      row.forEach((v, j) => { expected[r * d + j] = ((v - mean) / Math.sqrt(variance + eps)) * w[j]! + b[j]!; });
    }
    await tf.setBackend('webgpu');
    const [xt, wt, bt] = [tf.tensor2d(x, [rows, d]), tf.tensor1d(w), tf.tensor1d(b)];
    const { result, total } = countDispatches(() => webGpuLayerNorm(xt, wt, bt, eps, false)!);
    expect(total).toBe(1);
    expect(webGpuLayerNorm(xt, wt, bt, eps, true)).toBeUndefined(); // under a gradient tape: stock ops
    const got = await readTensor(result);
    tf.dispose([xt, wt, bt, result]);
    await tf.setBackend('cpu');
    expect(relativeL2(got, { shape: [rows, d], data: expected })).toBeLessThan(1e-6);
  });

  it('geluGate runs as one dispatch on webgpu, equal to float64 GELU(gate)·value; its gradient still works', async () => {
    const n = 1000;
    const gate = seededUniform(n, 4).map((v) => v * 6);
    const value = seededUniform(n, 5);
    const expected = Float64Array.from(gate, (g, i) => 0.5 * g * (1 + erf64(g / Math.SQRT2)) * value[i]!);
    await tf.setBackend('webgpu');
    const [g, v] = [tf.tensor1d(gate), tf.tensor1d(value)];
    const { result, total } = countDispatches(() => geluGate(g, v));
    expect(total).toBe(1);
    const dValue = tf.grad((x: tf.Tensor) => tf.sum(geluGate(g, x)))(v); // = GELU(gate)
    const [got, grad] = await Promise.all([result, dValue].map(readTensor));
    tf.dispose([g, v, result, dValue]);
    await tf.setBackend('cpu');
    expect(relativeL2(got!, { shape: [n], data: expected })).toBeLessThan(1e-6);
    expect(relativeL2(grad!, { shape: [n], data: expected.map((e, i) => e / value[i]!) })).toBeLessThan(1e-5);
  });
});
