import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { fixtureTensor, readFixture } from '../test/read-fixture.js';
import { ShapeError } from './errors.js';
import { monarchMatmul, monarchMatmulOrderP, monarchProject, monarchToDense } from './monarch.js';
import { svd } from './svd.js';
import {
  expectTensorsClose,
  monarchMatmulOrderPReference,
  monarchMatmulReference,
  numericalGradient,
  relativeL2,
  toFloat64,
} from './testing.js';

const m2 = readFixture('monarch2.safetensors');
const proj = readFixture('projection.safetensors');

describe('monarchMatmul', () => {
  for (const name of ['square', 'rect']) {
    it(`reproduces the golden ${name} output and dense matrix`, () => {
      tf.tidy(() => {
        const [x, w1, w2] = ['x', 'w1', 'w2'].map((k) => fixtureTensor(m2, `${name}.${k}`));
        const y = fixtureTensor(m2, `${name}.y`);
        expectTensorsClose(monarchMatmul(x, w1 as tf.Tensor3D, w2 as tf.Tensor3D), y, 1e-5, `${name}.y`);
        expectTensorsClose(monarchToDense(w1 as tf.Tensor3D, w2 as tf.Tensor3D), fixtureTensor(m2, `${name}.dense`), 1e-5, `${name}.dense`);
        expectTensorsClose(monarchMatmulReference(x, w1, w2), y, 1e-6, `${name} reference`);
      });
    });
  }

  it('keeps leading dims and has gradients matching finite differences', () => {
    const x = tf.randomNormal([2, 48], 0, 1, 'float32', 4);
    const w1 = tf.randomNormal([4, 6, 12], 0, 1, 'float32', 5) as tf.Tensor3D;
    const w2 = tf.randomNormal([6, 5, 4], 0, 1, 'float32', 6) as tf.Tensor3D;
    const probe = tf.randomNormal([2, 30], 0, 1, 'float32', 7);
    const y3 = monarchMatmul(tf.reshape(x, [1, 2, 48]), w1, w2);
    expect(y3.shape).toEqual([1, 2, 30]);
    const grads = tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) =>
      tf.sum(tf.mul(monarchMatmul(a, b as tf.Tensor3D, c as tf.Tensor3D), probe)),
    )([x, w1, w2]);
    const p = toFloat64(probe).data;
    const vals = [x, w1, w2].map((t) => toFloat64(t));
    const loss = (which: number) => (v: Float64Array) => {
      const args = vals.map((t, i) => (i === which ? { shape: t.shape, data: v } : t));
      return monarchMatmulReference(args[0], args[1], args[2]).data.reduce((s, y, i) => s + y * p[i], 0);
    };
    grads.forEach((gr, i) => expectTensorsClose(gr, { shape: vals[i].shape, data: numericalGradient(loss(i), vals[i].data) }, 1e-5, `grad ${i}`));
    tf.dispose([x, w1, w2, probe, y3, ...grads]);
  });

  it('rejects inconsistent factors', () => {
    const x = tf.ones([2, 48]);
    const w1 = tf.ones([4, 6, 12]) as tf.Tensor3D;
    const w2 = tf.ones([5, 5, 4]) as tf.Tensor3D;
    expect(() => monarchMatmul(x, w1, w2)).toThrow(ShapeError);
    expect(() => monarchMatmul(x, w1, w2)).toThrow('monarchMatmul: w2 (Lb, S, R) must have Lb·R = K·Q = 24 (w1 [4, 6, 12]), got [5, 5, 4]');
    const w2ok = tf.ones([6, 5, 4]) as tf.Tensor3D;
    expect(() => monarchMatmul(tf.ones([2, 47]), w1, w2ok)).toThrow(/x last dim must be 48/);
    tf.dispose([x, w1, w2, w2ok]);
  });
});

describe('monarchMatmulOrderP', () => {
  it('matches the float64 reference and its dense matrix, mixed block sizes', () => {
    tf.tidy(() => {
      const factors = [2, 3, 4].map((b, i) => tf.randomNormal([24 / b, b, b], 0, 1, 'float32', 10 + i) as tf.Tensor3D);
      const x = tf.randomNormal([3, 24], 0, 1, 'float32', 20);
      const ref = monarchMatmulOrderPReference(x, factors);
      expectTensorsClose(monarchMatmulOrderP(x, factors), ref, 1e-5, 'order 3');
      const dense = monarchToDense(factors);
      expectTensorsClose(tf.matMul(x, dense, false, true), ref, 1e-5, 'dense');
    });
  });

  it('order 2 with square blocks equals the classic monarchMatmul', () => {
    tf.tidy(() => {
      const w1 = tf.randomNormal([8, 8, 8], 0, 1, 'float32', 30) as tf.Tensor3D;
      const w2 = tf.randomNormal([8, 8, 8], 0, 1, 'float32', 31) as tf.Tensor3D;
      const x = tf.randomNormal([2, 64], 0, 1, 'float32', 32);
      expectTensorsClose(monarchMatmulOrderP(x, [w1, w2]), monarchMatmulReference(x, w1, w2), 1e-5, 'order 2');
    });
  });

  it('rejects block sizes that do not multiply to N', () => {
    const x = tf.ones([1, 24]);
    const f = tf.ones([12, 2, 2]) as tf.Tensor3D;
    const g = tf.ones([8, 3, 3]) as tf.Tensor3D;
    expect(() => monarchMatmulOrderP(x, [f, g])).toThrow('monarchMatmulOrderP: factor block sizes must multiply to x last dim 24, got 2·3 = 6');
    expect(() => monarchMatmulOrderP(x, [tf.ones([4, 2, 3]) as tf.Tensor3D])).toThrow(/factors\[0\] must have shape \(N\/b, b, b\)/);
    tf.dispose([x, f, g]);
  });
});

describe('monarchProject', () => {
  for (const name of ['dense', 'monarch', 'rect48']) {
    it(`reproduces fly's projection of ${name}.M`, () => {
      tf.tidy(() => {
        const { w1, w2 } = monarchProject(fixtureTensor(proj, `${name}.M`) as tf.Tensor2D);
        expect(w1.shape).toEqual(proj.get(`${name}.w1`)!.shape);
        expect(w2.shape).toEqual(proj.get(`${name}.w2`)!.shape);
        expectTensorsClose(monarchToDense(w1, w2), fixtureTensor(proj, `${name}.M_proj`), 1e-5, `${name}.M_proj`);
      });
    });
  }

  it('round-trips a Monarch matrix', () => {
    tf.tidy(() => {
      const m = fixtureTensor(proj, 'monarch.M') as tf.Tensor2D;
      const { w1, w2 } = monarchProject(m);
      expect(relativeL2(monarchToDense(w1, w2), m)).toBeLessThan(1e-5);
    });
  });

  it('svd reconstructs a matrix with orthonormal factors', () => {
    const m = 5;
    const n = 3;
    const a = Float64Array.from({ length: m * n }, (_, i) => Math.sin(i * 1.7) + 0.1 * i);
    for (const [rows, cols, mat] of [
      [m, n, a],
      [n, m, Float64Array.from({ length: m * n }, (_, i) => a[(i % m) * n + Math.floor(i / m)])],
    ] as const) {
      const { u, s, v } = svd(mat, rows, cols);
      const k = Math.min(rows, cols);
      for (let i = 1; i < k; i++) expect(s[i]).toBeLessThanOrEqual(s[i - 1]);
      let err = 0;
      for (let i = 0; i < rows; i++) {
        for (let j = 0; j < cols; j++) {
          let acc = 0;
          for (let t = 0; t < k; t++) acc += u[i * k + t] * s[t] * v[j * k + t];
          err = Math.max(err, Math.abs(acc - mat[i * cols + j]));
        }
      }
      expect(err).toBeLessThan(1e-12);
    }
  });

  it('rejects a non-square matrix', () => {
    const d = tf.ones([4, 6]) as tf.Tensor2D;
    expect(() => monarchProject(d)).toThrow('monarchProject: dense must be square [n, n], got [4, 6]');
    d.dispose();
  });
});
