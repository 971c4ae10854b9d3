// Test-only: monarchMatmul on seeded random operands against the float64 reference, case by case (shared by the wasm
// tests of the per-block matMul path and of the gemm kernels).
import * as tf from '@tensorflow/tfjs-core';
import { monarchMatmul } from '../src/monarch.js';
import { expectTensorsClose, monarchMatmulReference } from '../src/testing.js';

/** One case: x's shape and the factors' shapes w1 (K, Q, P), w2 (Lb, S, R) with K·P = x's last dim, K·Q = Lb·R. */
export interface MonarchCase {
  x: number[];
  w1: [number, number, number];
  w2: [number, number, number];
}

/**
 * Checks monarchMatmul against monarchMatmulReference (float64) to 1e-5 for each case, with normal operands drawn
 * from consecutive seeds (x, w1, w2 per case), and disposes them.
 *
 * Shapes: x [..., K·P] × w1 (K, Q, P) × w2 (Lb, S, R) → [..., Lb·S]
 * @param cases - The shapes.
 * @param seed - The first seed.
 * @param label - Added to each failure message after the case.
 * @returns The next unused seed.
 */
export function expectMonarchMatchesReference(cases: MonarchCase[], seed: number, label = ''): number {
  for (const c of cases) {
    const x = tf.randomNormal(c.x, 0, 1, 'float32', seed++);
    const w1 = tf.randomNormal(c.w1, 0, 1, 'float32', seed++) as tf.Tensor3D;
    const w2 = tf.randomNormal(c.w2, 0, 1, 'float32', seed++) as tf.Tensor3D;
    const y = monarchMatmul(x, w1, w2);
    const ref = monarchMatmulReference(x, w1, w2);
    expectTensorsClose(y, { shape: [...c.x.slice(0, -1), c.w2[0] * c.w2[1]], data: ref.data }, 1e-5, `monarch ${JSON.stringify(c)}${label}`);
    tf.dispose([x, w1, w2, y]);
  }
  return seed;
}
