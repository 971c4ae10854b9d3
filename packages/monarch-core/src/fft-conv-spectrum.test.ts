// Pre-transformed kernels (convKernelSpectrum + convWithSpectrum, convPairWithSpectra) against the original's goldens and the float64
// direct sum, and their tensor hygiene.
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { fixtureTensor, readFixture } from '../test/read-fixture.js';
import { ShapeError } from './errors.js';
import { convKernelSpectrum, convPairWithSpectra, convWithSpectrum, disposeConvSpectrum, setSpectrumChunkBytes } from './fft-conv.js';
import { bidirectionalConvReference, causalConvReference, expectTensorsClose } from './testing.js';

const golden = readFixture('longconv.safetensors');
const g = <R extends tf.Rank>(k: string) => fixtureTensor<R>(golden, k);

describe('convWithSpectrum', () => {
  it('matches the original HyenaFilter goldens (causal and bidirectional)', () => {
    tf.tidy(() => {
      const u = g<tf.Rank.R3>('u');
      const D = g<tf.Rank.R1>('D');
      const causal = convKernelSpectrum(g('kf'));
      const bidir = convKernelSpectrum(g('kf'), g('kr'));
      expectTensorsClose(convWithSpectrum(u, causal, D), g('y_causal'), 1e-5, 'y_causal');
      expectTensorsClose(convWithSpectrum(u, bidir, D), g('y_bidir'), 1e-5, 'y_bidir');
      expectTensorsClose(convWithSpectrum(u, bidir), g('y_bidir_noD'), 1e-5, 'y_bidir_noD');
      disposeConvSpectrum(causal);
      disposeConvSpectrum(bidir);
    });
  });

  for (const length of [7, 100, 768]) {
    it(`matches the float64 direct sum at L = ${length}, without leaking tensors`, () => {
      const u = tf.randomNormal([2, 3, length], 0, 1, 'float32', length) as tf.Tensor3D;
      const kf = tf.randomNormal([3, length], 0, 1, 'float32', length + 1) as tf.Tensor2D;
      const kr = tf.randomNormal([3, length], 0, 1, 'float32', length + 2) as tf.Tensor2D;
      const D = tf.randomNormal([3], 0, 1, 'float32', length + 3) as tf.Tensor1D;
      const warm: ReturnType<typeof convKernelSpectrum>[] = [];
      const disposeAll = () => warm.splice(0).forEach(disposeConvSpectrum);
      warm.push(convKernelSpectrum(kf, kr), convKernelSpectrum(kf));
      tf.dispose([convWithSpectrum(u, warm[0]!), convWithSpectrum(u, warm[1]!)]); // builds the cached DFT constants
      disposeAll();
      const before = tf.memory().numTensors;
      const bidir = convKernelSpectrum(kf, kr);
      const causal = convKernelSpectrum(kf);
      expect(tf.memory().numTensors).toBe(before + new Set([bidir.re, bidir.im, causal.re, causal.im]).size); // re = im: one tensor (wasm, webgpu)
      for (let i = 0; i < 2; i++) {
        tf.tidy(() => {
          expectTensorsClose(convWithSpectrum(u, bidir, D), bidirectionalConvReference(u, kf, kr, D), 1e-5, 'bidirectional');
          expectTensorsClose(convWithSpectrum(u, causal), causalConvReference(u, kf), 1e-5, 'causal');
        });
      }
      disposeConvSpectrum(bidir);
      disposeConvSpectrum(causal);
      expect(tf.memory().numTensors).toBe(before);
      tf.dispose([u, kf, kr, D]);
    });
  }

  it('rejects an input of another length', () => {
    const s = convKernelSpectrum(tf.ones([2, 8]) as tf.Tensor2D);
    expect(() => convWithSpectrum(tf.ones([1, 2, 9]) as tf.Tensor3D, s)).toThrow(ShapeError);
    expect(() => convKernelSpectrum(tf.ones([2, 8]) as tf.Tensor2D, tf.ones([2, 7]) as tf.Tensor2D)).toThrow(/kr must have shape \[2, 8\]/);
    disposeConvSpectrum(s);
  });
});

describe('convPairWithSpectra', () => {
  for (const length of [5, 300]) {
    it(`equals two float64 direct sums (bidirectional and causal) at L = ${length}, without leaking tensors`, () => {
      const a = tf.randomNormal([3, 4, length], 0, 1, 'float32', 10 + length) as tf.Tensor3D;
      const b = tf.randomNormal([3, 4, length], 0, 1, 'float32', 11 + length) as tf.Tensor3D;
      const kf = tf.randomNormal([4, length], 0, 1, 'float32', 12 + length) as tf.Tensor2D;
      const kr = tf.randomNormal([4, length], 0, 1, 'float32', 13 + length) as tf.Tensor2D;
      const kf2 = tf.randomNormal([4, length], 0, 1, 'float32', 14 + length) as tf.Tensor2D;
      const da = tf.randomNormal([4], 0, 1, 'float32', 15 + length) as tf.Tensor1D;
      const db = tf.randomNormal([4], 0, 1, 'float32', 16 + length) as tf.Tensor1D;
      const sa = convKernelSpectrum(kf, kr);
      const sb = convKernelSpectrum(kf2);
      tf.dispose(convPairWithSpectra(a, sa, b, sb, da, db)); // builds the cached DFT constants
      const before = tf.memory().numTensors;
      tf.tidy(() => {
        const [ya, yb] = convPairWithSpectra(a, sa, b, sb, da, db);
        expectTensorsClose(ya, bidirectionalConvReference(a, kf, kr, da), 1e-5, 'ya');
        expectTensorsClose(yb, causalConvReference(b, kf2, db), 1e-5, 'yb');
        const [za] = convPairWithSpectra(a, sa, b, sb);
        expectTensorsClose(za, bidirectionalConvReference(a, kf, kr), 1e-5, 'ya without D');
      });
      expect(tf.memory().numTensors).toBe(before);
      disposeConvSpectrum(sa);
      disposeConvSpectrum(sb);
      tf.dispose([a, b, kf, kr, kf2, da, db]);
    });
  }

  it('rejects inputs of different shapes or another length than the spectra', () => {
    const s = convKernelSpectrum(tf.ones([2, 8]) as tf.Tensor2D);
    const x = tf.ones([1, 2, 8]) as tf.Tensor3D;
    expect(() => convPairWithSpectra(x, s, tf.ones([1, 2, 7]) as tf.Tensor3D, s)).toThrow("convPairWithSpectra: b must have a's shape [1, 2, 8], got [1, 2, 7]");
    const other = convKernelSpectrum(tf.ones([2, 9]) as tf.Tensor2D);
    expect(() => convPairWithSpectra(x, s, x, other)).toThrow(/sb must be a spectrum for C = 2, L = 8/);
    disposeConvSpectrum(s);
    disposeConvSpectrum(other);
  });
});

describe('channel chunks (long inputs run the inference convolutions a few channels at a time)', () => {
  it('convKernelSpectrum, convWithSpectrum and convPairWithSpectra in chunks equal the float64 direct sums, without leaking tensors', () => {
    const length = 50;
    const a = tf.randomNormal([2, 5, length], 0, 1, 'float32', 21) as tf.Tensor3D;
    const b = tf.randomNormal([2, 5, length], 0, 1, 'float32', 22) as tf.Tensor3D;
    const kf = tf.randomNormal([5, length], 0, 1, 'float32', 23) as tf.Tensor2D;
    const kr = tf.randomNormal([5, length], 0, 1, 'float32', 24) as tf.Tensor2D;
    const kf2 = tf.randomNormal([5, length], 0, 1, 'float32', 25) as tf.Tensor2D;
    const da = tf.randomNormal([5], 0, 1, 'float32', 26) as tf.Tensor1D;
    const db = tf.randomNormal([5], 0, 1, 'float32', 27) as tf.Tensor1D;
    // One real [B·C, N] part is 2·5·100·4 = 4000 bytes: 1700 bytes per chunk → 3 chunks of 2, 2 and 1 channels.
    const previous = setSpectrumChunkBytes(1700);
    try {
      const sa = convKernelSpectrum(kf, kr);
      const sb = convKernelSpectrum(kf2);
      tf.dispose([convPairWithSpectra(a, sa, b, sb, da, db), convWithSpectrum(a, sa, da)].flat()); // builds the cached DFT constants
      const before = tf.memory().numTensors;
      for (let i = 0; i < 2; i++) {
        tf.tidy(() => {
          const [ya, yb] = convPairWithSpectra(a, sa, b, sb, da, db);
          expectTensorsClose(ya, bidirectionalConvReference(a, kf, kr, da), 1e-5, 'ya');
          expectTensorsClose(yb, causalConvReference(b, kf2, db), 1e-5, 'yb');
          expectTensorsClose(convWithSpectrum(a, sa, da), bidirectionalConvReference(a, kf, kr, da), 1e-5, 'convWithSpectrum');
          expectTensorsClose(convWithSpectrum(b, sb), causalConvReference(b, kf2), 1e-5, 'causal, no D');
        });
      }
      expect(tf.memory().numTensors).toBe(before);
      disposeConvSpectrum(sa);
      disposeConvSpectrum(sb);
    } finally {
      setSpectrumChunkBytes(previous);
      tf.dispose([a, b, kf, kr, kf2, da, db]);
    }
  });
});
