import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { fixtureTensor, readFixture } from '../test/read-fixture.js';
import { ShapeError } from './errors.js';
import { bidirectionalConv, causalConv, fftConv, longConvPlan } from './fft-conv.js';
import { bidirectionalConvReference, causalConvReference, expectTensorsClose, longConvReference, numericalGradient, toFloat64 } from './testing.js';

const golden = readFixture('longconv.safetensors');
const g = <R extends tf.Rank>(k: string) => fixtureTensor<R>(golden, k);

describe('long convolution vs the original HyenaFilter goldens', () => {
  for (const order of [undefined, 1, 2, 3]) {
    it(`causal, bidirectional and k_bidir (order ${order ?? 'auto'})`, () => {
      tf.tidy(() => {
        const u = g<tf.Rank.R3>('u');
        const D = g<tf.Rank.R1>('D');
        const opts = { order };
        expectTensorsClose(causalConv(u, g('kf'), D, opts), g('y_causal'), 1e-5, 'y_causal');
        expectTensorsClose(causalConv(u, g('kf'), undefined, opts), g('y_causal_noD'), 1e-5, 'y_causal_noD');
        expectTensorsClose(bidirectionalConv(u, g('kf'), g('kr'), D, opts), g('y_bidir'), 1e-5, 'y_bidir');
        expectTensorsClose(bidirectionalConv(u, g('kf'), g('kr'), undefined, opts), g('y_bidir_noD'), 1e-5, 'y_bidir_noD');
        expectTensorsClose(fftConv(u, g('k_bidir'), D, opts), g('y_bidir'), 1e-5, 'fftConv k_bidir');
        expectTensorsClose(fftConv(u, g('kf'), D, opts), g('y_causal'), 1e-5, 'fftConv kf');
      });
    });
  }
});

describe('long convolution vs the float64 direct sum', () => {
  for (const length of [1, 7, 96, 100, 768, 4099]) {
    it(`L = ${length} (N = ${longConvPlan(length).n}, radices ${longConvPlan(length).radices.join('·')})`, () => {
      const channels = length > 1000 ? 1 : 3;
      const u = tf.randomNormal([length > 1000 ? 1 : length === 7 ? 3 : 2, channels, length], 0, 1, 'float32', length) as tf.Tensor3D;
      const kf = tf.randomNormal([channels, length], 0, 1, 'float32', length + 1) as tf.Tensor2D;
      const kr = tf.randomNormal([channels, length], 0, 1, 'float32', length + 2) as tf.Tensor2D;
      const kShort = tf.randomNormal([channels, Math.max(1, length >> 1)], 0, 1, 'float32', length + 3) as tf.Tensor2D;
      const kLong = tf.randomNormal([channels, Math.min(2 * length, length + 5)], 0, 1, 'float32', length + 4) as tf.Tensor2D;
      const D = tf.randomNormal([channels], 0, 1, 'float32', length + 5) as tf.Tensor1D;
      tf.tidy(() => {
        expectTensorsClose(causalConv(u, kf, D), causalConvReference(u, kf, D), 1e-5, 'causal');
        expectTensorsClose(bidirectionalConv(u, kf, kr, D), bidirectionalConvReference(u, kf, kr, D), 1e-5, 'bidirectional');
        expectTensorsClose(fftConv(u, kShort), longConvReference(u, kShort), 1e-5, 'short kernel');
        expectTensorsClose(fftConv(u, kLong, D), longConvReference(u, kLong, D), 1e-5, 'kernel longer than L');
      });
      tf.dispose([u, kf, kr, kShort, kLong, D]);
    });
  }
});

describe('long convolution gradients', () => {
  for (const [length, order, batch] of [
    [12, 2, 3],
    [30, 3, 2],
  ] as const) {
    it(`match finite differences of the float64 reference (L = ${length}, order ${order}, batch ${batch})`, () => {
      const u = tf.randomNormal([batch, 2, length], 0, 1, 'float32', 1);
      const kf = tf.randomNormal([2, length], 0, 1, 'float32', 2);
      const kr = tf.randomNormal([2, length], 0, 1, 'float32', 3);
      const D = tf.randomNormal([2], 0, 1, 'float32', 4);
      const probe = tf.randomNormal([batch, 2, length], 0, 1, 'float32', 5);
      const inputs = [u, kf, kr, D];
      const grads = tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor, d: tf.Tensor) =>
        tf.sum(tf.mul(bidirectionalConv(a as tf.Tensor3D, b as tf.Tensor2D, c as tf.Tensor2D, d as tf.Tensor1D, { order }), probe)),
      )(inputs);
      const p = toFloat64(probe).data;
      const vals = inputs.map((t) => toFloat64(t));
      const loss = (which: number) => (v: Float64Array) => {
        const args = vals.map((t, i) => (i === which ? { shape: t.shape, data: v } : t));
        return bidirectionalConvReference(args[0], args[1], args[2], args[3]).data.reduce((s, y, i) => s + y * p[i], 0);
      };
      grads.forEach((gr, i) => expectTensorsClose(gr, { shape: vals[i].shape, data: numericalGradient(loss(i), vals[i].data) }, 1e-5, `grad ${i}`));
      tf.dispose([...inputs, probe, ...grads]);
    });
  }

  for (const [length, kernelLength, batch] of [
    [11, 14, 2],
    [9, 5, 1],
  ] as const) {
    it(`fftConv gradients, kernel length ${kernelLength} for L = ${length} (N = ${longConvPlan(length).n}), batch ${batch}`, () => {
      const u = tf.randomNormal([batch, 2, length], 0, 1, 'float32', 11);
      const k = tf.randomNormal([2, kernelLength], 0, 1, 'float32', 12);
      const D = tf.randomNormal([2], 0, 1, 'float32', 13);
      const probe = tf.randomNormal([batch, 2, length], 0, 1, 'float32', 14);
      const inputs = [u, k, D];
      const grads = tf.grads((a: tf.Tensor, b: tf.Tensor, d: tf.Tensor) =>
        tf.sum(tf.mul(fftConv(a as tf.Tensor3D, b as tf.Tensor2D, d as tf.Tensor1D), probe)),
      )(inputs);
      const p = toFloat64(probe).data;
      const vals = inputs.map((t) => toFloat64(t));
      const loss = (which: number) => (v: Float64Array) => {
        const args = vals.map((t, i) => (i === which ? { shape: t.shape, data: v } : t));
        return longConvReference(args[0], args[1], args[2]).data.reduce((s, y, i) => s + y * p[i], 0);
      };
      grads.forEach((gr, i) => expectTensorsClose(gr, { shape: vals[i].shape, data: numericalGradient(loss(i), vals[i].data) }, 1e-5, `grad ${i}`));
      tf.dispose([...inputs, probe, ...grads]);
    });
  }

  it('does not leak tensors across calls', () => {
    const u = tf.randomNormal([2, 3, 40]) as tf.Tensor3D;
    const kf = tf.randomNormal([3, 40]) as tf.Tensor2D;
    const run = () => tf.dispose(tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(causalConv(a as tf.Tensor3D, b as tf.Tensor2D)))([u, kf]));
    run(); // builds the cached constants
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) run();
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([u, kf]);
  });
});

describe('long convolution input checks', () => {
  it('names the tensor, the expected and the actual shape', () => {
    const u = tf.zeros([2, 4, 16]) as tf.Tensor3D;
    const k = tf.zeros([3, 16]) as tf.Tensor2D;
    expect(() => causalConv(u, k)).toThrow(ShapeError);
    expect(() => causalConv(u, k)).toThrow('causalConv: kf must have shape [4, 16] ([C, L] of u), got [3, 16]');
    expect(() => fftConv(u, tf.zeros([4, 33]) as tf.Tensor2D)).toThrow('fftConv: kernel must have shape [4, 1..32] (C of u, length ≤ 2L), got [4, 33]');
    expect(() => fftConv(tf.zeros([4, 16]) as unknown as tf.Tensor3D, k)).toThrow('fftConv: u must have rank 3 [B, C, L], got shape [4, 16]');
    const k4 = tf.zeros([4, 16]) as tf.Tensor2D;
    expect(() => bidirectionalConv(u, k4, k4, tf.zeros([5]) as tf.Tensor1D)).toThrow('bidirectionalConv: skip (D) must have shape [4] (channels of u), got [5]');
    expect(() => causalConv(u, tf.zeros([4, 16], 'int32') as tf.Tensor2D)).toThrow('causalConv: kf must be float32, got int32');
    tf.dispose([u, k, k4]);
  });
});
