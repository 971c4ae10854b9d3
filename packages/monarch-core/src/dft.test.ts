import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { fixtureTensor, readFixture } from '../test/read-fixture.js';
import { dftPlan } from './dft-plan.js';
import { fft, ifft, irfft, rfft } from './dft.js';
import { InvalidArgumentError, ShapeError } from './errors.js';
import { dftReference, expectTensorsClose, numericalGradient, toFloat64 } from './testing.js';

const golden = readFixture('dft.safetensors');

describe('fft / ifft / rfft / irfft vs numpy goldens', () => {
  for (const n of [16, 256, 1024, 4096]) {
    it(`N = ${n} (radices ${dftPlan('test', n).radices.join('·')})`, () => {
      tf.tidy(() => {
        const g = (k: string) => fixtureTensor(golden, `n${n}.${k}`);
        const [fr, fi] = fft(g('x_re'), g('x_im'));
        expectTensorsClose(fr, g('fft_re'), 1e-5, 'fft re');
        expectTensorsClose(fi, g('fft_im'), 1e-5, 'fft im');
        const [ir, ii] = ifft(g('x_re'), g('x_im'));
        expectTensorsClose(ir, g('ifft_re'), 1e-5, 'ifft re');
        expectTensorsClose(ii, g('ifft_im'), 1e-5, 'ifft im');
        const [rr, ri] = rfft(g('xr'));
        expectTensorsClose(rr, g('rfft_re'), 1e-5, 'rfft re');
        expectTensorsClose(ri, g('rfft_im'), 1e-5, 'rfft im');
        expectTensorsClose(irfft(g('rfft_re'), g('rfft_im'), n), g('xr'), 1e-5, 'irfft');
      });
    });
  }
});

describe('mixed radix and dense fallback vs the float64 reference', () => {
  for (const n of [1, 2, 7, 12, 96, 97, 100, 768, 211 * 5]) {
    it(`N = ${n} (radices ${dftPlan('test', n).radices.join('·')})`, () => {
      const re = tf.randomNormal([3, n], 0, 1, 'float32', n);
      const im = tf.randomNormal([3, n], 0, 1, 'float32', n + 1);
      const ref = dftReference(re, im);
      const inv = dftReference(re, im, true);
      const rref = dftReference(re);
      const bins = Math.floor(n / 2) + 1;
      const cut = (t: { shape: number[]; data: Float64Array }) => ({
        shape: [3, bins],
        data: Float64Array.from({ length: 3 * bins }, (_, i) => t.data[Math.floor(i / bins) * n + (i % bins)]),
      });
      tf.tidy(() => {
        const [fr, fi] = fft(re, im);
        expectTensorsClose(fr, ref.re, 1e-5, 'fft re');
        expectTensorsClose(fi, ref.im, 1e-5, 'fft im');
        const [ir, ii] = ifft(re, im);
        expectTensorsClose(ir, inv.re, 1e-5, 'ifft re');
        expectTensorsClose(ii, inv.im, 1e-5, 'ifft im');
        const [rr, ri] = rfft(re);
        expectTensorsClose(rr, cut(rref.re), 1e-5, 'rfft re');
        expectTensorsClose(ri, cut(rref.im), 1e-5, 'rfft im');
        expectTensorsClose(irfft(rr, ri, n), re, 1e-5, 'irfft(rfft)');
      });
      tf.dispose([re, im]);
    });
  }

  it('rfft pads and truncates to n', () => {
    tf.tidy(() => {
      const x = tf.randomNormal([2, 10], 0, 1, 'float32', 3);
      const padded = tf.concat([x, tf.zeros([2, 6])], 1);
      const ref = dftReference(padded);
      const [re] = rfft(x, 16);
      expect(re.shape).toEqual([2, 9]);
      expectTensorsClose(re, { shape: [2, 9], data: Float64Array.from({ length: 18 }, (_, i) => ref.re.data[Math.floor(i / 9) * 16 + (i % 9)]) }, 1e-5);
      const [re6] = rfft(x, 6);
      const ref6 = dftReference(tf.slice(x, [0, 0], [2, 6]));
      expectTensorsClose(re6, { shape: [2, 4], data: Float64Array.from({ length: 8 }, (_, i) => ref6.re.data[Math.floor(i / 4) * 6 + (i % 4)]) }, 1e-5);
    });
  });

  it('has gradients (finite differences of the float64 reference)', () => {
    const re = tf.randomNormal([2, 12], 0, 1, 'float32', 5);
    const im = tf.randomNormal([2, 12], 0, 1, 'float32', 6);
    const pr = tf.randomNormal([2, 12], 0, 1, 'float32', 7);
    const pi = tf.randomNormal([2, 12], 0, 1, 'float32', 8);
    const [gr, gi] = tf.grads((a: tf.Tensor, b: tf.Tensor) => {
      const [yr, yi] = fft(a, b);
      return tf.add(tf.sum(tf.mul(yr, pr)), tf.sum(tf.mul(yi, pi)));
    })([re, im]);
    const [prd, pid] = [toFloat64(pr).data, toFloat64(pi).data];
    const reD = toFloat64(re).data;
    const imD = toFloat64(im).data;
    const loss = (a: Float64Array, b: Float64Array) => {
      const y = dftReference({ shape: [2, 12], data: a }, { shape: [2, 12], data: b });
      return y.re.data.reduce((s, v, i) => s + v * prd[i], 0) + y.im.data.reduce((s, v, i) => s + v * pid[i], 0);
    };
    expectTensorsClose(gr, { shape: [2, 12], data: numericalGradient((v) => loss(v, imD), reD) }, 1e-5, 'd re');
    expectTensorsClose(gi, { shape: [2, 12], data: numericalGradient((v) => loss(reD, v), imD) }, 1e-5, 'd im');
    tf.dispose([re, im, pr, pi, gr, gi]);
  });

  it('ifft, rfft and irfft gradients match finite differences', () => {
    const x = tf.randomNormal([2, 10], 0, 1, 'float32', 9);
    const y = tf.randomNormal([2, 10], 0, 1, 'float32', 10);
    const x8 = tf.randomNormal([2, 8], 0, 1, 'float32', 11);
    const bins = 5; // rfft of n = 8
    const [pr, pi, pb, pq] = [[2, 10], [2, 10], [2, bins], [2, bins]].map((s, i) => tf.randomNormal(s, 0, 1, 'float32', 20 + i));
    const dot = (a: Float64Array, t: tf.Tensor) => {
      const b = toFloat64(t).data;
      return a.reduce((s, v, i) => s + v * b[i], 0);
    };
    const cut = (t: { data: Float64Array }, n: number, keep: number) => Float64Array.from({ length: 2 * keep }, (_, i) => t.data[Math.floor(i / keep) * n + (i % keep)]);
    const checks: Array<[string, () => tf.Tensor[], tf.Tensor[], (v: Float64Array[]) => number]> = [
      [
        'ifft',
        () => tf.grads((a: tf.Tensor, b: tf.Tensor) => {
          const [r, i] = ifft(a, b);
          return tf.add(tf.sum(tf.mul(r, pr)), tf.sum(tf.mul(i, pi)));
        })([x, y]),
        [x, y],
        ([a, b]) => {
          const o = dftReference({ shape: [2, 10], data: a }, { shape: [2, 10], data: b }, true);
          return dot(o.re.data, pr) + dot(o.im.data, pi);
        },
      ],
      [
        'rfft(x, 8) of length 10',
        () => tf.grads((a: tf.Tensor) => {
          const [r, i] = rfft(a, 8);
          return tf.add(tf.sum(tf.mul(r, pb)), tf.sum(tf.mul(i, pq)));
        })([x]),
        [x],
        ([a]) => {
          const cropped = Float64Array.from({ length: 16 }, (_, i) => a[Math.floor(i / 8) * 10 + (i % 8)]);
          const o = dftReference({ shape: [2, 8], data: cropped });
          return dot(cut(o.re, 8, bins), pb) + dot(cut(o.im, 8, bins), pq);
        },
      ],
      [
        'irfft(·, 8)',
        () => tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(irfft(a, b, 8), x8)))([pb, pq]),
        [pb, pq],
        ([a, b]) => {
          // Hermitian extension, imaginary parts of bins 0 and 4 ignored, then the real part of the inverse DFT.
          const re = new Float64Array(16);
          const im = new Float64Array(16);
          for (let r = 0; r < 2; r++) {
            for (let k = 0; k < 8; k++) {
              const src = k <= 4 ? k : 8 - k;
              re[r * 8 + k] = a[r * bins + src];
              im[r * 8 + k] = k === 0 || k === 4 ? 0 : (k <= 4 ? 1 : -1) * b[r * bins + src];
            }
          }
          return dot(dftReference({ shape: [2, 8], data: re }, { shape: [2, 8], data: im }, true).re.data, x8);
        },
      ],
    ];
    for (const [label, run, inputs, loss] of checks) {
      const grads = run();
      const vals = inputs.map((t) => toFloat64(t).data);
      grads.forEach((g, i) => {
        const numeric = numericalGradient((v) => loss(vals.map((w, j) => (j === i ? v : w))), vals[i]);
        expectTensorsClose(g, { shape: inputs[i].shape, data: numeric }, 1e-5, `${label} d${i}`);
      });
      tf.dispose(grads);
    }
    tf.dispose([x, y, x8, pr, pi, pb, pq]);
  });

  it('rejects bad input with one line', () => {
    const a = tf.zeros([2, 8]);
    const b = tf.zeros([2, 7]);
    expect(() => fft(a, b)).toThrow(ShapeError);
    expect(() => fft(a, b)).toThrow("fft: im must have re's shape [2, 8], got [2, 7]");
    expect(() => irfft(a, a, 8)).toThrow('irfft: re last dim must be 5 (n/2 + 1 for n = 8), got 8');
    const prime = tf.zeros([1, 4099]);
    expect(() => fft(prime, prime)).toThrow(InvalidArgumentError);
    expect(() => fft(prime, prime)).toThrow(/cannot factor N = 4099 into Monarch radices: prime factor 4099 > 2048/);
    expect(() => rfft(a, 0)).toThrow('rfft: n must be a positive integer, got 0');
    tf.dispose([a, b, prime]);
  });
});
