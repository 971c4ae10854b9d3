// The wasm FFT long convolution (wasm-fft-source.ts, wasm-fft-conv.ts) against float64 direct sums: its two loops on
// a shared memory split over 1 and 2 threads, and, on the wasm backend (set up here whatever the test backend),
// the fft-conv.ts entry points that take it: causal, bidirectional and general kernels, odd / even / power-of-two /
// other L, several channel counts (lanes of a SIMD group left empty), du and dD, no tensor or heap growth, and the
// M2_FUSED_LONG_CONV=0 switch back to the Monarch path.
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bidirectionalConv, causalConv, convKernelSpectrum, convPairWithSpectra, convWithSpectrum, disposeConvSpectrum, fftConv } from '../fft-conv.js';
import { bidirectionalConvReference, causalConvReference, expectTensorsClose, longConvReference, toFloat64 } from '../testing.js';
import { fftTwiddles, isWasmSpectrum, wasmFftSize } from './wasm-fft-conv.js';
import { setupBackend } from './setup-backend.js';
import { createHelperPool, PARALLEL_KERNELS } from './wasm-parallel.js';
import type { ParallelPool } from './wasm-parallel.js';

/** Seeded values in [−1, 1). */
function values(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

/** float64 y[b,c,n] = Σ_m K[c, (n − m) mod N]·u[b,c,m] + D[c]·u[b,c,n] for a kernel placed on the N-circle. */
function circleConv(u: Float32Array, placed: Float32Array, skip: Float32Array | null, batch: number, channels: number, length: number, n: number): Float64Array {
  const y = new Float64Array(batch * channels * length);
  for (let b = 0; b < batch; b++) {
    for (let c = 0; c < channels; c++) {
      const row = (b * channels + c) * length;
      for (let i = 0; i < length; i++) {
        let acc = skip === null ? 0 : skip[c]! * u[row + i]!;
        for (let m = 0; m < length; m++) acc += placed[c * n + ((i - m + n) % n)]! * u[row + m]!;
        y[row + i] = acc;
      }
    }
  }
  return y;
}

describe('wasm FFT loops on a shared memory', () => {
  let memory: WebAssembly.Memory;
  let pool: ParallelPool;
  beforeAll(async () => {
    memory = new WebAssembly.Memory({ initial: 256, maximum: 1024, shared: true }); // 16 MiB
    pool = await createHelperPool(memory, 2);
  });
  afterAll(async () => {
    await pool.close();
  });

  for (const [batch, channels, length, work] of [
    [2, 5, 300, 1 << 20], // two threads (work above the threshold), a half-empty last group
    [3, 4, 77, 1], // one thread
    [1, 9, 1000, 1 << 20],
    [2, 3, 1, 1 << 20], // N = 2, M = 1
    [1, 2, 2, 1], // M = 2: the radix-2 stage only
  ] as const) {
    it(`spectrum + convolution of u [${batch}, ${channels}, ${length}] on ${work > 1 ? 2 : 1} thread(s) equal the float64 sum`, () => {
      const n = wasmFftSize(length);
      const m = n / 2;
      const groups = Math.ceil(channels / 4);
      // Heap layout (bytes): twiddles, placed kernels [C, N], spectrum, u, skip, out, scratch (2 slots).
      const tw = fftTwiddles(m);
      const placed = values(channels * n, 7 + length);
      for (let c = 0; c < channels; c++) for (let i = length; i <= n - length; i++) placed[c * n + i] = 0; // lags beyond ±(L−1) unused
      const u = values(batch * channels * length, 11 + length);
      const skip = values(channels, 13);
      let at = 128; // bytes 0..3: the loops' unit counter (zeroed before each run)
      const counter = () => {
        new Int32Array(memory.buffer, 0, 1)[0] = 0;
        return 0;
      };
      const take = (floats: number) => ((at += floats * 4 + 64), at - floats * 4 - 64);
      const [twAt, kAt, specAt, uAt, skipAt, outAt, scratchAt] = [tw.length, placed.length, groups * (m + 1) * 8, u.length, skip.length, u.length, 2 * 2 * m * 8].map(take);
      const heap = new Float32Array(memory.buffer);
      heap.set(tw, twAt! / 4);
      heap.set(placed, kAt! / 4);
      heap.set(u, uAt! / 4);
      heap.set(skip, skipAt! / 4);
      pool.run(PARALLEL_KERNELS.fftSpectrum, [kAt!, n, 4 * n, kAt!, 0, 4 * n, 0, 0, specAt!, scratchAt!, twAt!, channels, m, groups, 2, counter()], groups, work); // rows already placed: all head
      const units = batch * groups;
      pool.run(PARALLEL_KERNELS.fftConv, [uAt!, specAt!, skipAt!, outAt!, scratchAt!, twAt!, channels, length, m, 0, units, 2, counter()], units, work);
      const out = new Float32Array(memory.buffer).slice(outAt! / 4, outAt! / 4 + u.length);
      const expected = circleConv(u, placed, skip, batch, channels, length, n);
      let err = 0;
      let norm = 0;
      for (let i = 0; i < out.length; i++) {
        err += (out[i]! - expected[i]!) ** 2;
        norm += expected[i]! ** 2;
      }
      expect(Math.sqrt(err / norm)).toBeLessThan(1e-6);
      // The kernel gradient on the circle: out[c, p] = Σ_b Σ_n dy[b,c,n]·u[b,c,(n − p) mod N] (u zero beyond L); dy = u here.
      const gradAt = outAt!; // reuses out + scratch room: [C, N] floats, then slots of 4·(M + 1)·32 bytes
      const gradScratch = gradAt + channels * n * 4 + 64;
      if ((gradScratch + 2 * 4 * (m + 1) * 32) / 4 > memory.buffer.byteLength / 4) memory.grow(64);
      pool.run(PARALLEL_KERNELS.fftKernelGrad, [uAt!, uAt!, gradAt, gradScratch, twAt!, batch, channels, length, m, groups, 2, counter()], groups, work);
      const grad = new Float32Array(memory.buffer).slice(gradAt / 4, gradAt / 4 + channels * n);
      let gErr = 0;
      let gNorm = 0;
      for (let ch = 0; ch < channels; ch++) {
        for (let p = 0; p < n; p++) {
          let acc = 0;
          for (let b = 0; b < batch; b++) {
            const row = (b * channels + ch) * length;
            for (let i = 0; i < length; i++) {
              const j = (((i - p) % n) + n) % n;
              if (j < length) acc += u[row + i]! * u[row + j]!;
            }
          }
          gErr += (grad[ch * n + p]! - acc) ** 2;
          gNorm += acc ** 2;
        }
      }
      expect(Math.sqrt(gErr / gNorm)).toBeLessThan(1e-6);
    });
  }
});

describe('wasm FFT long convolution through fft-conv.ts', () => {
  // On the wasm backend as setupBackend sets it up (2 threads when this file sets it up; the test backend's own
  // set-up when M2_TEST_BACKEND=wasm ran first), whatever the test backend.
  let previous = 'cpu';
  beforeAll(async () => {
    previous = tf.getBackend();
    await setupBackend('wasm', { threads: 2 });
  });
  afterAll(async () => {
    await tf.setBackend(previous);
  });
  const cases = [
    [1, 1, 1],
    [2, 3, 2],
    [3, 5, 7],
    [2, 4, 64],
    [1, 9, 100],
    [2, 6, 255],
    [1, 8, 1024],
    [1, 3, 1500],
  ] as const;
  for (const [batch, channels, length] of cases) {
    it(`causal, bidirectional, general kernels and spectra at u [${batch}, ${channels}, ${length}] equal the float64 sums`, () => {
      const u = tf.randomNormal([batch, channels, length], 0, 1, 'float32', length) as tf.Tensor3D;
      const kf = tf.randomNormal([channels, length], 0, 0.3, 'float32', length + 1) as tf.Tensor2D;
      const kr = tf.randomNormal([channels, length], 0, 0.3, 'float32', length + 2) as tf.Tensor2D;
      const kLong = tf.randomNormal([channels, Math.min(2 * length, length + 5)], 0, 0.3, 'float32', length + 3) as tf.Tensor2D;
      const kShort = tf.randomNormal([channels, Math.max(1, length >> 1)], 0, 0.3, 'float32', length + 4) as tf.Tensor2D;
      const d = tf.randomNormal([channels], 0, 1, 'float32', length + 5) as tf.Tensor1D;
      tf.tidy(() => {
        expectTensorsClose(causalConv(u, kf, d), causalConvReference(u, kf, d), 1e-5, 'causal');
        expectTensorsClose(bidirectionalConv(u, kf, kr, d), bidirectionalConvReference(u, kf, kr, d), 1e-5, 'bidirectional');
        expectTensorsClose(bidirectionalConv(u, kf, kr), bidirectionalConvReference(u, kf, kr), 1e-5, 'bidirectional, no D');
        expectTensorsClose(fftConv(u, kLong, d), longConvReference(u, kLong, d), 1e-5, 'kernel longer than L');
        expectTensorsClose(fftConv(u, kShort), longConvReference(u, kShort), 1e-5, 'kernel shorter than L');
      });
      const bidir = convKernelSpectrum(kf, kr);
      const causal = convKernelSpectrum(kf);
      expect(isWasmSpectrum(bidir.re) && isWasmSpectrum(causal.re)).toBe(true);
      tf.tidy(() => {
        expectTensorsClose(convWithSpectrum(u, bidir, d), bidirectionalConvReference(u, kf, kr, d), 1e-5, 'convWithSpectrum');
        const [ya, yb] = convPairWithSpectra(u, bidir, tf.neg(u), causal, d);
        expectTensorsClose(ya, bidirectionalConvReference(u, kf, kr, d), 1e-5, 'pair a');
        expectTensorsClose(yb, causalConvReference(tf.neg(u), kf), 1e-5, 'pair b');
      });
      disposeConvSpectrum(bidir);
      disposeConvSpectrum(causal);
      tf.dispose([u, kf, kr, kLong, kShort, d]);
    });
  }

  it('convWithSpectrum gradients: du is the adjoint (correlation) convolution, dD = Σ dy⊙u (float64)', () => {
    const [batch, channels, length] = [2, 5, 37];
    const u = tf.randomNormal([batch, channels, length], 0, 1, 'float32', 1) as tf.Tensor3D;
    const kf = tf.randomNormal([channels, length], 0, 0.3, 'float32', 2) as tf.Tensor2D;
    const kr = tf.randomNormal([channels, length], 0, 0.3, 'float32', 3) as tf.Tensor2D;
    const d = tf.randomNormal([channels], 0, 1, 'float32', 4) as tf.Tensor1D;
    const dy = tf.randomNormal([batch, channels, length], 0, 1, 'float32', 5) as tf.Tensor3D;
    const spectrum = convKernelSpectrum(kf, kr);
    const [du, dd] = tf.grads((x: tf.Tensor, s: tf.Tensor) => tf.sum(tf.mul(convWithSpectrum(x as tf.Tensor3D, spectrum, s as tf.Tensor1D), dy)))([u, d]);
    // The adjoint of K (lags kf[j] at +j, kr[j] at −(j+1)) has lags K'[j] = K[−j]: kf' = [kf[0], kr[0..L−2]], kr' = [kf[1..L−1], 0].
    const f = toFloat64(kf).data;
    const r = toFloat64(kr).data;
    const kf2 = new Float32Array(channels * length);
    const kr2 = new Float32Array(channels * length);
    for (let c = 0; c < channels; c++) {
      kf2[c * length] = f[c * length]!;
      for (let j = 1; j < length; j++) kf2[c * length + j] = r[c * length + j - 1]!;
      for (let j = 0; j < length - 1; j++) kr2[c * length + j] = f[c * length + j + 1]!;
    }
    const duExpected = bidirectionalConvReference(dy, tf.tensor2d(kf2, [channels, length]), tf.tensor2d(kr2, [channels, length]), d);
    expectTensorsClose(du!, duExpected, 1e-5, 'du');
    const uv = toFloat64(u).data;
    const gv = toFloat64(dy).data;
    const ddExpected = new Float64Array(channels);
    for (let b = 0; b < batch; b++) for (let c = 0; c < channels; c++) for (let i = 0; i < length; i++) ddExpected[c] += uv[(b * channels + c) * length + i]! * gv[(b * channels + c) * length + i]!;
    expectTensorsClose(dd!, { data: ddExpected, shape: [channels] }, 1e-5, 'dD');
    disposeConvSpectrum(spectrum);
    tf.dispose([u, kf, kr, d, dy, du!, dd!]);
  });

  it('kernel gradients (bidirectional, causal, kernels longer than L) equal float64 correlations of dy with u', () => {
    const [batch, channels, length] = [3, 6, 50];
    const u = tf.randomNormal([batch, channels, length], 0, 1, 'float32', 7) as tf.Tensor3D;
    const dy = tf.randomNormal([batch, channels, length], 0, 1, 'float32', 8) as tf.Tensor3D;
    const kf = tf.randomNormal([channels, length], 0, 0.3, 'float32', 9) as tf.Tensor2D;
    const kr = tf.randomNormal([channels, length], 0, 0.3, 'float32', 10) as tf.Tensor2D;
    const kLong = tf.randomNormal([channels, length + 7], 0, 0.3, 'float32', 11) as tf.Tensor2D;
    const uv = toFloat64(u).data;
    const gv = toFloat64(dy).data;
    /** Σ_b Σ_n dy[b,c,n]·u[b,c,n − lag] over 0 ≤ n, n − lag < L. */
    const corr = (c: number, lag: number) => {
      let acc = 0;
      for (let b = 0; b < batch; b++) for (let i = Math.max(0, lag); i < Math.min(length, length + lag); i++) acc += gv[(b * channels + c) * length + i]! * uv[(b * channels + c) * length + i - lag]!;
      return acc;
    };
    const table = (cols: number, lagOf: (j: number) => number) => {
      const data = new Float64Array(channels * cols);
      for (let c = 0; c < channels; c++) for (let j = 0; j < cols; j++) data[c * cols + j] = Math.abs(lagOf(j)) < length ? corr(c, lagOf(j)) : 0;
      return { shape: [channels, cols], data };
    };
    const [, dkf, dkr] = tf.grads((x: tf.Tensor, a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(bidirectionalConv(x as tf.Tensor3D, a as tf.Tensor2D, b as tf.Tensor2D), dy)))([u, kf, kr]);
    expectTensorsClose(dkf!, table(length, (j) => j), 1e-5, 'dkf');
    expectTensorsClose(dkr!, table(length, (j) => -(j + 1)), 1e-5, 'dkr');
    const [, dLong] = tf.grads((x: tf.Tensor, a: tf.Tensor) => tf.sum(tf.mul(fftConv(x as tf.Tensor3D, a as tf.Tensor2D), dy)))([u, kLong]);
    expectTensorsClose(dLong!, table(length + 7, (j) => (j < length ? j : j - 2 * length)), 1e-5, 'kernel longer than L');
    tf.dispose([u, dy, kf, kr, kLong, dkf!, dkr!, dLong!]);
  });

  it('repeated calls keep tensor count and heap bytes flat; M2_FUSED_LONG_CONV=0 takes the Monarch path', () => {
    const u = tf.randomNormal([2, 6, 300], 0, 1, 'float32', 1) as tf.Tensor3D;
    const kf = tf.randomNormal([6, 300], 0, 0.3, 'float32', 2) as tf.Tensor2D;
    const kr = tf.randomNormal([6, 300], 0, 0.3, 'float32', 3) as tf.Tensor2D;
    const d = tf.randomNormal([6], 0, 1, 'float32', 4) as tf.Tensor1D;
    const round = () => {
      tf.dispose(bidirectionalConv(u, kf, kr, d));
      tf.dispose(tf.grads((x: tf.Tensor, a: tf.Tensor, b: tf.Tensor) => tf.sum(bidirectionalConv(x as tf.Tensor3D, a as tf.Tensor2D, b as tf.Tensor2D, d)))([u, kf, kr]));
      const s = convKernelSpectrum(kf, kr);
      tf.dispose(convPairWithSpectra(u, s, u, s, d, d));
      disposeConvSpectrum(s);
    };
    round(); // builds cached constants (Monarch plans for the kernels' gradients)
    const before = tf.memory();
    for (let i = 0; i < 3; i++) round();
    const after = tf.memory();
    expect(after.numTensors).toBe(before.numTensors);
    expect(after.numBytes).toBe(before.numBytes);
    const previous = process.env['M2_FUSED_LONG_CONV'];
    process.env['M2_FUSED_LONG_CONV'] = '0';
    try {
      const s = convKernelSpectrum(kf, kr);
      expect(isWasmSpectrum(s.re)).toBe(false);
      tf.tidy(() => expectTensorsClose(convWithSpectrum(u, s, d), bidirectionalConvReference(u, kf, kr, d), 1e-5, 'Monarch path'));
      disposeConvSpectrum(s);
    } finally {
      if (previous === undefined) delete process.env['M2_FUSED_LONG_CONV'];
      else process.env['M2_FUSED_LONG_CONV'] = previous;
    }
    tf.dispose([u, kf, kr, d]);
  });
});
