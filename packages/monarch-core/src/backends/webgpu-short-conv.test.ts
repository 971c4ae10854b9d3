// The short causal depthwise convolution's WGSL kernels on webgpu (SwiftShader) against float64 sums.
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, expect, it } from 'vitest';
import { countDispatches, describeWebGpu, readTensor, swiftShaderWebGpu } from '../../test/webgpu-swiftshader.js';
import { relativeL2, seededUniform } from '../testing.js';
import { webGpuShortConv } from './webgpu-short-conv.js';

const gpu = await swiftShaderWebGpu();
afterAll(() => tf.setBackend('cpu'));

describeWebGpu(gpu, 'webGpuShortConv on webgpu (SwiftShader)', () => {
  it.each([
    [2, 5, 3],
    [3, 70, 67], // several row splits and channel blocks, C no multiple of 64
  ])('B = %i, L = %i, C = %i: forward and gradients (z, taps, bias) equal float64 sums', async (batch, length, channels) => {
    const z = seededUniform(batch * length * channels, 1);
    const w = seededUniform(channels * 3, 2);
    const bias = seededUniform(channels, 3);
    const dy = seededUniform(batch * length * channels, 4);
    const at = (x: ArrayLike<number>, b: number, t: number, c: number) => (t < 0 || t >= length ? 0 : x[(b * length + t) * channels + c]!);
    const y = new Float64Array(z.length);
    const dz = new Float64Array(z.length);
    const dw = new Float64Array(channels * 3);
    const db = new Float64Array(channels);
    for (let b = 0; b < batch; b++) for (let t = 0; t < length; t++) for (let c = 0; c < channels; c++) {
      const i = (b * length + t) * channels + c;
      y[i] = bias[c]! + w[3 * c]! * at(z, b, t - 2, c) + w[3 * c + 1]! * at(z, b, t - 1, c) + w[3 * c + 2]! * at(z, b, t, c);
      dz[i] = w[3 * c + 2]! * at(dy, b, t, c) + w[3 * c + 1]! * at(dy, b, t + 1, c) + w[3 * c]! * at(dy, b, t + 2, c);
      for (let k = 0; k < 3; k++) dw[3 * c + k] += dy[i]! * at(z, b, t - 2 + k, c);
      db[c] += dy[i]!;
    }
    await tf.setBackend('webgpu');
    const [zt, wt, bt, dyt] = [tf.tensor3d(z, [batch, length, channels]), tf.tensor3d(w, [channels, 1, 3]), tf.tensor1d(bias), tf.tensor3d(dy, [batch, length, channels])];
    const forward = countDispatches(() => webGpuShortConv(zt, wt, bt)!);
    expect(forward.byProgram.get('LongConvProgram')).toBe(1);
    const grads = tf.grads((a, b, c) => tf.sum(tf.mul(webGpuShortConv(a as tf.Tensor3D, b!, c as tf.Tensor1D)!, dyt)))([zt, wt, bt]);
    const [yv, dzv, dwv, dbv] = await Promise.all([forward.result, ...grads].map(readTensor));
    tf.dispose([zt, wt, bt, dyt, forward.result, ...grads]);
    await tf.setBackend('cpu');
    expect(dwv!.shape).toEqual([channels, 1, 3]);
    expect(relativeL2(yv!, { shape: [batch, length, channels], data: y })).toBeLessThan(1e-6);
    expect(relativeL2(dzv!, { shape: [batch, length, channels], data: dz })).toBeLessThan(1e-6);
    expect(relativeL2(dwv!, { shape: [channels, 1, 3], data: dw })).toBeLessThan(1e-5);
    expect(relativeL2(dbv!, { shape: [channels], data: db })).toBeLessThan(1e-5);
  });

  it('declines (undefined) off webgpu', () => {
    expect(webGpuShortConv(tf.zeros([1, 2, 2]) as tf.Tensor3D, tf.zeros([2, 3]), tf.zeros([2]) as tf.Tensor1D)).toBeUndefined();
  });
});
