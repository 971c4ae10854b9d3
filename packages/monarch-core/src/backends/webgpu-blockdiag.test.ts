// The block-diagonal kernels' semantics and gradient wiring, on the cpu backend (plain-loop kernels). The WGSL
// versions run below on webgpu through SwiftShader (and on the H200 in tooling/gpu/entry.ts).
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { ShapeError } from '../errors.js';
import { blockDiagMatmulReference, expectTensorsClose, seededUniform } from '../testing.js';
import { describeWebGpu, readTensor, swiftShaderWebGpu } from '../../test/webgpu-swiftshader.js';
import { blockDiagMatmulKernel, blockDiagShader, blockDiagTile, blockDiagWorkgroupBytes, runBlockDiagWebGpu } from './webgpu-blockdiag.js';

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

// The WGSL kernels themselves, executed on webgpu through SwiftShader (a CPU Vulkan driver).
const gpu = await swiftShaderWebGpu();

describeWebGpu(gpu, "blockDiagMatmulKernel's WGSL on webgpu (SwiftShader)", () => {
  const [rows, nb, bi, bo] = [37, 3, 20, 12]; // no multiple of any tile
  const x = random(rows * nb * bi, 11);
  const w = random(nb * bi * bo, 12);
  const dy = random(rows * nb * bo, 13);
  const wt = new Float64Array(nb * bo * bi); // W_bᵀ as blocks [nb, bo, bi]
  for (let k = 0; k < nb; k++) for (let i = 0; i < bi; i++) for (let o = 0; o < bo; o++) wt[(k * bo + o) * bi + i] = w[(k * bi + i) * bo + o];
  const dw = new Float64Array(nb * bi * bo);
  for (let r = 0; r < rows; r++) for (let k = 0; k < nb; k++) for (let i = 0; i < bi; i++) for (let o = 0; o < bo; o++) {
    dw[(k * bi + i) * bo + o] += x[r * nb * bi + k * bi + i] * dy[r * nb * bo + k * bo + o];
  }
  const forward = blockDiagMatmulReference({ shape: [rows, nb * bi], data: x }, { shape: [nb, bi, bo], data: w });
  const inputGrad = blockDiagMatmulReference({ shape: [rows, nb * bo], data: dy }, { shape: [nb, bo, bi], data: wt });

  it('forward (default tile, through blockDiagMatmulKernel) equals a float64 reference', async () => {
    await tf.setBackend('webgpu');
    const [xt, wt3] = [tf.tensor2d(x, [rows, nb * bi]), tf.tensor3d(w, [nb, bi, bo])];
    const y = blockDiagMatmulKernel(xt, wt3);
    const yv = await readTensor(y);
    tf.dispose([xt, wt3, y]);
    await tf.setBackend('cpu');
    expectTensorsClose(yv, forward, 1e-6);
  });

  it('input and weight gradients (a small tile: SwiftShader compiles the unrolled default tile slowly) equal float64 references', async () => {
    await tf.setBackend('webgpu');
    const backend = tf.backend();
    const tile = { tm: 2, tn: 2, tk: 8 };
    const [xt, wt3, dyt] = [tf.tensor2d(x, [rows, nb * bi]), tf.tensor3d(w, [nb, bi, bo]), tf.tensor2d(dy, [rows, nb * bo])];
    const gx = tf.engine().makeTensorFromTensorInfo(runBlockDiagWebGpu(backend, 'inputGrad', dyt, wt3, { nb, bi, bo }, tile));
    const gw = tf.engine().makeTensorFromTensorInfo(runBlockDiagWebGpu(backend, 'weightGrad', xt, dyt, { nb, bi, bo }, tile));
    const [gxv, gwv] = await Promise.all([gx, gw].map(readTensor));
    tf.dispose([xt, wt3, dyt, gx, gw]);
    await tf.setBackend('cpu');
    expectTensorsClose(gxv!, inputGrad, 1e-6);
    expectTensorsClose(gwv!, { shape: [nb, bi, bo], data: dw }, 1e-6);
  });

  it('the 8 KiB fallback tile (devices with 16 KiB of workgroup memory) gives the same products', async () => {
    await tf.setBackend('webgpu');
    const backend = tf.backend();
    const [xt, wt3] = [tf.tensor2d(x, [rows, nb * bi]), tf.tensor3d(w, [nb, bi, bo])];
    const info = runBlockDiagWebGpu(backend, 'forward', xt, wt3, { nb, bi, bo }, { tm: 8, tn: 8, tk: 8 });
    const y = tf.engine().makeTensorFromTensorInfo(info);
    const yv = await readTensor(y);
    tf.dispose([xt, wt3, y]);
    await tf.setBackend('cpu');
    expectTensorsClose(yv, forward, 1e-6);
  });
});
