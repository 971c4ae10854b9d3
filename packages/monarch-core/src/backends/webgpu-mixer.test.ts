// The fused mixer core on webgpu through SwiftShader, against a float64 composition of its definition.
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, expect, it } from 'vitest';
import { countDispatches, describeWebGpu, readTensor, swiftShaderWebGpu } from '../../test/webgpu-swiftshader.js';
import { convKernelSpectrum, disposeConvSpectrum } from '../fft-conv.js';
import { bidirectionalConvReference, causalConvReference, relativeL2, seededUniform } from '../testing.js';
import { mixerParams, webGpuMixerCore } from './webgpu-mixer.js';

const gpu = await swiftShaderWebGpu();
afterAll(() => tf.setBackend('cpu'));

/** [B, L, C] channel-last → [B, C, L] channel-first (float64). */
function channelFirst(x: ArrayLike<number>, batch: number, length: number, channels: number): Float64Array {
  const out = new Float64Array(batch * channels * length);
  for (let b = 0; b < batch; b++) for (let n = 0; n < length; n++) for (let c = 0; c < channels; c++) out[(b * channels + c) * length + n] = x[(b * length + n) * channels + c];
  return out;
}

/** The mixer core in float64, channel-first [B, d, L]. */
function mixerReference(z: Float32Array, u: Float32Array, taps: Float32Array, bias: Float32Array, kf: Float32Array, kr: Float32Array,
  kRes: Float32Array, dMain: Float32Array, dRes: Float32Array, batch: number, length: number, d: number): Float64Array {
  const zc = channelFirst(z, batch, length, 3 * d); // [B, 3d, L]
  const short = (b: number, col: number, n: number) => {
    const at = (i: number) => (i < 0 ? 0 : zc[(b * 3 * d + col) * length + i]);
    return bias[col] + taps[3 * col] * at(n - 2) + taps[3 * col + 1] * at(n - 1) + taps[3 * col + 2] * at(n);
  };
  const h = new Float64Array(batch * d * length);
  const x2 = new Float64Array(batch * d * length);
  for (let b = 0; b < batch; b++) for (let c = 0; c < d; c++) for (let n = 0; n < length; n++) {
    h[(b * d + c) * length + n] = short(b, 2 * d + c, n) * short(b, c, n);
    x2[(b * d + c) * length + n] = short(b, d + c, n);
  }
  const shape = [batch, d, length];
  const main = bidirectionalConvReference({ shape, data: h }, { shape: [d, length], data: kf }, { shape: [d, length], data: kr }, { shape: [d], data: dMain }).data;
  const residual = causalConvReference({ shape, data: channelFirst(u, batch, length, d) }, { shape: [d, length], data: kRes }, { shape: [d], data: dRes }).data;
  return main.map((v, i) => v * x2[i]! + residual[i]!);
}

describeWebGpu(gpu, 'fused mixer core on webgpu (SwiftShader)', () => {
  it.each([
    [2, 3, 9, true, false],
    [1, 4, 100, true, false],
    [2, 2, 30, false, false],
    [2, 3, 33, true, true],
  ])('B = %i, d = %i, L = %i (residual convolution: %s, channel-first: %s): one dispatch equal to the float64 definition', async (batch, d, length, withResidual, transposed) => {
    const seed = 10 * length;
    const z = seededUniform(batch * length * 3 * d, seed);
    const u = seededUniform(batch * length * d, seed + 1);
    const taps = seededUniform(9 * d, seed + 2);
    const bias = seededUniform(3 * d, seed + 3);
    const [kf, kr, kRes] = [4, 5, 6].map((i) => seededUniform(d * length, seed + i));
    const [dMain, dRes] = [7, 8].map((i) => seededUniform(d, seed + i));
    await tf.setBackend('webgpu');
    const before = tf.memory().numTensors;
    const weights = [tf.tensor2d(kf!, [d, length]), tf.tensor2d(kr!, [d, length]), tf.tensor2d(kRes!, [d, length]), tf.tensor3d(taps, [3 * d, 1, 3]), tf.tensor1d(bias), tf.tensor1d(dMain!), tf.tensor1d(dRes!)] as const;
    const main = convKernelSpectrum(weights[0], weights[1]);
    const residual = convKernelSpectrum(weights[2]);
    const params = mixerParams(weights[3], weights[4], weights[5], withResidual ? weights[6] : undefined);
    const [zt, ut] = [tf.tensor3d(z, [batch, length, 3 * d]), tf.tensor3d(u, [batch, length, d])];
    // Channel-first: z [3d, B, L], u [d, B, L] → y [d, B, L], as M2SequenceMixer feeds it from L = 2048.
    const [zIn, uIn] = transposed ? [tf.transpose(zt, [2, 0, 1]), tf.transpose(ut, [2, 0, 1])] : [zt, ut];
    const { result: y, total, byProgram } = countDispatches(() =>
      webGpuMixerCore(zIn, withResidual ? uIn : undefined, params, main, withResidual ? residual : undefined, { channelFirst: transposed })!);
    expect(byProgram.get('LongConvProgram')).toBe(1);
    expect(total).toBe(1);
    expect(y.shape).toEqual(transposed ? [d, batch, length] : [batch, length, d]);
    const yLast = transposed ? tf.transpose(y, [1, 2, 0]) : y; // [B, L, d]
    const got = await readTensor(yLast);
    expect(got.shape).toEqual([batch, length, d]);
    tf.dispose([y, yLast, zt, ut, zIn, uIn, params, ...weights]);
    disposeConvSpectrum(main);
    disposeConvSpectrum(residual);
    await tf.setBackend('cpu');
    const zeros = new Float32Array(d * length);
    const expected = { shape: [batch, d, length], data: mixerReference(z, u, taps, bias, kf!, kr!, withResidual ? kRes! : zeros, dMain!, withResidual ? dRes! : zeros.subarray(0, d), batch, length, d) };
    expect(relativeL2({ shape: [batch, d, length], data: channelFirst(got.data, batch, length, d) }, expected)).toBeLessThan(1e-5);
    expect(tf.memory().numTensors).toBeLessThanOrEqual(before + 1); // + the twiddle table of this size, kept
  });

  it('declines (undefined) off webgpu and for Monarch-layout spectra', async () => {
    const z = tf.zeros([1, 4, 6]) as tf.Tensor3D;
    const spectrum = convKernelSpectrum(tf.zeros([2, 4]) as tf.Tensor2D); // made on cpu: Monarch layout
    expect(webGpuMixerCore(z, undefined, tf.zeros([28]) as tf.Tensor1D, spectrum)).toBeUndefined();
    await tf.setBackend('webgpu');
    expect(webGpuMixerCore(z, undefined, tf.zeros([28]) as tf.Tensor1D, spectrum)).toBeUndefined();
    await tf.setBackend('cpu');
  });
});
