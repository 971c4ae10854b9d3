// The block-diagonal kernels' semantics and gradient wiring, on the cpu backend (plain-loop kernels). The WGSL
// versions are checked against these on the H200 by tooling/gpu/entry.ts.
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { ShapeError } from '../errors.js';
import { blockDiagMatmulReference, expectTensorsClose, seededUniform } from '../testing.js';
import { blockDiagMatmulKernel, blockDiagShader, blockDiagTile, blockDiagWorkgroupBytes } from './webgpu-blockdiag.js';

const random = seededUniform;

describe('blockDiagMatmulKernel', () => {
  const [rows, nb, bi, bo] = [7, 3, 5, 4];
  const x = random(rows * nb * bi, 1);
  const w = random(nb * bi * bo, 2);
  const dy = random(rows * nb * bo, 3);

  it('multiplies by the block-diagonal matrix (float64 reference)', async () => {
    await tf.setBackend('cpu');
    const y = blockDiagMatmulKernel(tf.tensor2d(x, [rows, nb * bi]), tf.tensor3d(w, [nb, bi, bo]));
    expectTensorsClose(y, blockDiagMatmulReference({ shape: [rows, nb * bi], data: x }, { shape: [nb, bi, bo], data: w }), 1e-6);
  });

  it('has the gradients dx = dy·Wᵀ and dW = xᵀ·dy per block (float64 references)', async () => {
    await tf.setBackend('cpu');
    const before = tf.memory().numTensors;
    const [gx, gw] = tf.tidy(() => {
      const dyt = tf.tensor2d(dy, [rows, nb * bo]);
      return tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(blockDiagMatmulKernel(a as tf.Tensor2D, b as tf.Tensor3D), dyt)))(
        [tf.tensor2d(x, [rows, nb * bi]), tf.tensor3d(w, [nb, bi, bo])]);
    });
    const wt = new Float64Array(nb * bo * bi); // W_bᵀ as blocks [nb, bo, bi]
    for (let k = 0; k < nb; k++) for (let i = 0; i < bi; i++) for (let o = 0; o < bo; o++) wt[(k * bo + o) * bi + i] = w[(k * bi + i) * bo + o];
    expectTensorsClose(gx, blockDiagMatmulReference({ shape: [rows, nb * bo], data: dy }, { shape: [nb, bo, bi], data: wt }), 1e-6);
    const dw = new Float64Array(nb * bi * bo);
    for (let r = 0; r < rows; r++) for (let k = 0; k < nb; k++) for (let i = 0; i < bi; i++) for (let o = 0; o < bo; o++) {
      dw[(k * bi + i) * bo + o] += x[r * nb * bi + k * bi + i] * dy[r * nb * bo + k * bo + o];
    }
    expectTensorsClose(gw, { shape: [nb, bi, bo], data: dw }, 1e-6);
    tf.dispose([gx, gw]);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('rejects mismatched shapes in one line', () => {
    const call = () => blockDiagMatmulKernel(tf.zeros([2, 9]) as tf.Tensor2D, tf.zeros([2, 4, 3]) as tf.Tensor3D);
    expect(call).toThrow(ShapeError);
    expect(call).toThrow('blockDiagMatmulKernel: x must be [rows, 2·4] for blocks [2, 4, 3], got x [2, 9]');
  });

  it('generates WGSL whose barriers sit in uniform control flow for every mode', () => {
    for (const mode of ['forward', 'inputGrad', 'weightGrad'] as const) {
      const code = blockDiagShader(mode, { tm: 4, tn: 4, tk: 16 });
      expect(code).toContain('let numTiles = (uniforms.kChunk + 15) / 16;');
      expect(code.match(/workgroupBarrier\(\)/g)).toHaveLength(2);
      expect(code.match(/= fma\(/g)).toHaveLength(16);
    }
  });

  it('counts the workgroup memory the shaders declare; the fallback tile fits WebGPU\'s default 16 KiB', () => {
    for (const mode of ['forward', 'inputGrad', 'weightGrad'] as const) {
      for (const tile of [blockDiagTile, { tm: 8, tn: 8, tk: 8 }, { tm: 4, tn: 4, tk: 32 }]) {
        const declared = [...blockDiagShader(mode, tile).matchAll(/var<workgroup> \w+ : array<f32, (\d+)>/g)].map((m) => Number(m[1]));
        expect(declared).toHaveLength(2);
        expect(blockDiagWorkgroupBytes(mode, tile)).toBe(4 * (declared[0]! + declared[1]!));
      }
      expect(blockDiagWorkgroupBytes(mode, { tm: 8, tn: 8, tk: 8 })).toBeLessThanOrEqual(16384);
    }
    // The default tile's forward and input-gradient kernels pad one tile by a float per row: 16 448 bytes.
    expect(blockDiagWorkgroupBytes('forward', blockDiagTile)).toBe(16 * (129 + 128) * 4);
  });
});
