// The wasm block-diagonal / Monarch kernels (wasm-gemm-source.ts, wasm-gemm-kernel.ts) against float64 references:
// several block counts and sizes, rectangular (GLU-like) blocks, odd row counts and widths that are not multiples of
// the 8-column panel, split over one and two threads; gradients against the stock per-block matMul path
// (M2_WASM_MONARCH_KERNEL=0); and no growth of tensors or bytes over repeated calls. The committed binary must be its
// source compiled by wabt.
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { blockDiagMatmul } from '../blockdiag.js';
import { clearMonarchCache, monarchMatmul } from '../monarch.js';
import { blockDiagMatmulReference, expectTensorsClose, monarchMatmulReference } from '../testing.js';
import { compileGemmWat } from '../../scripts/wasm-simd-compile.js';
import { expectMonarchMatchesReference } from '../../test/monarch-cases.js';
import type { MonarchCase } from '../../test/monarch-cases.js';
import { setupBackend } from './setup-backend.js';
import { GEMM_WASM_PLAIN, GEMM_WASM_SHARED } from './wasm-gemm-binary.js';
import { useWasmBlockGemm, wasmGemmEnabled } from './wasm-gemm-kernel.js';
import { useWasmHelpers, wasmHelperThreads } from './wasm-parallel.js';

const previous = tf.getBackend();
beforeAll(async () => {
  await setupBackend('wasm', { threads: 2 }); // stays at 1 thread where the wasm backend was set up already
});
afterAll(async () => {
  clearMonarchCache();
  await tf.setBackend(previous);
});

/** Runs `f` with the helper threads off and (where they run) on. */
function onEveryThreadCount(f: (threads: number) => void): void {
  const counts = wasmHelperThreads() > 1 ? [1, wasmHelperThreads()] : [1];
  for (const threads of counts) {
    const before = useWasmHelpers(threads > 1);
    try {
      f(threads);
    } finally {
      useWasmHelpers(before);
    }
  }
}

/** Runs `f` with the gemm kernels switched off (the per-block matMul path). */
function withKernelOff<T>(f: () => T): T {
  const before = process.env.M2_WASM_MONARCH_KERNEL;
  process.env.M2_WASM_MONARCH_KERNEL = '0';
  try {
    return f();
  } finally {
    if (before === undefined) delete process.env.M2_WASM_MONARCH_KERNEL;
    else process.env.M2_WASM_MONARCH_KERNEL = before;
  }
}

describe('wasm gemm kernels', () => {
  it('binary matches its source (regenerate: node --import tsx packages/monarch-core/scripts/build-wasm-simd.ts)', async () => {
    const base64 = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes));
    expect(base64(await compileGemmWat(false))).toBe(GEMM_WASM_PLAIN);
    expect(base64(await compileGemmWat(true))).toBe(GEMM_WASM_SHARED);
  });

  it('run on the wasm backend for several blocks up to 128 × 128, and switch off with M2_WASM_MONARCH_KERNEL=0', () => {
    expect(wasmGemmEnabled()).toBe(true);
    expect([useWasmBlockGemm(4, 32, 32), useWasmBlockGemm(1, 32, 32), useWasmBlockGemm(4, 192, 768)]).toEqual([true, false, false]);
    expect(withKernelOff(() => wasmGemmEnabled())).toBe(false);
  });

  it('blockDiagMatmul matches the float64 reference (block counts, rectangular blocks, odd rows and widths)', () => {
    const cases: Array<{ rows: number[]; blocks: [number, number, number]; split?: boolean }> = [
      { rows: [5], blocks: [4, 6, 24] }, // GLU in, scaled down: d → 2I
      { rows: [2, 9], blocks: [4, 24, 6] }, // GLU out: I → d
      { rows: [130], blocks: [2, 8, 8] }, // several row chunks, whole panels
      { rows: [67], blocks: [3, 5, 13] }, // partial panels, odd everything
      { rows: [1], blocks: [8, 3, 1] },
      { rows: [33], blocks: [4, 12, 20], split: true }, // pre-split blocks
      { rows: [201], blocks: [4, 32, 44] }, // large enough to wake the helper thread
      { rows: [3], blocks: [2, 130, 130] }, // above WASM_GEMM_MAX_BLOCK: per-block XNNPACK matMuls
    ];
    let seed = 1;
    onEveryThreadCount((threads) => {
      for (const c of cases) {
        const [nb, bi] = c.blocks;
        const x = tf.randomNormal([...c.rows, nb * bi], 0, 1, 'float32', seed++);
        const w = tf.randomNormal(c.blocks, 0, 1, 'float32', seed++) as tf.Tensor3D;
        const blocks = c.split ? (tf.unstack(w) as tf.Tensor2D[]) : w;
        const y = blockDiagMatmul(x, blocks);
        expectTensorsClose(y, blockDiagMatmulReference(x, w), 1e-5, `blockDiag ${JSON.stringify(c)}, ${threads} thread(s)`);
        tf.dispose([x, w, y, ...(c.split ? (blocks as tf.Tensor[]) : [])]);
      }
    });
  });

  it('monarchMatmul matches the float64 reference (square and rectangular factors, odd rows)', () => {
    const cases: MonarchCase[] = [
      { x: [5, 64], w1: [8, 8, 8], w2: [8, 8, 8] },
      { x: [2, 3, 256], w1: [16, 16, 16], w2: [16, 16, 16] },
      { x: [37, 24], w1: [4, 8, 6], w2: [8, 3, 4] }, // K·Q = Lb·R = 32, rectangular, odd S
      { x: [70, 48], w1: [4, 5, 12], w2: [4, 9, 5] }, // Q not a multiple of 8, R odd
      { x: [99, 256], w1: [16, 16, 16], w2: [16, 16, 16] }, // large enough to wake the helper thread
      { x: [9, 20], w1: [5, 8, 4], w2: [20, 3, 2] }, // Lb = 20: one full group of 16 blocks and a partial one
    ];
    let seed = 100;
    onEveryThreadCount((threads) => {
      seed = expectMonarchMatchesReference(cases, seed, `, ${threads} thread(s)`);
    });
  });

  it('blockDiagMatmul gradients equal the per-block matMul path', () => {
    const x = tf.randomNormal([7, 4 * 6], 0, 1, 'float32', 11);
    const w = tf.randomNormal([4, 6, 10], 0, 1, 'float32', 12) as tf.Tensor3D;
    const probe = tf.randomNormal([7, 40], 0, 1, 'float32', 13);
    const loss = (a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(blockDiagMatmul(a, b as tf.Tensor3D), probe));
    const [dx, dw] = tf.grads(loss)([x, w]);
    const [dxRef, dwRef] = withKernelOff(() => tf.grads(loss)([x, w]));
    expectTensorsClose(dx!, dxRef!, 1e-5, 'dx');
    expectTensorsClose(dw!, dwRef!, 1e-5, 'dw');
    const blocks = tf.unstack(w) as tf.Tensor2D[];
    const splitLoss = (...bs: tf.Tensor[]) => tf.sum(tf.mul(blockDiagMatmul(x, bs as tf.Tensor2D[]), probe));
    const splitGrads = tf.grads(splitLoss)(blocks);
    expectTensorsClose(tf.stack(splitGrads), dwRef!, 1e-5, 'pre-split dW');
    const monarchLoss = (a: tf.Tensor, f: tf.Tensor) => tf.sum(tf.square(monarchMatmul(a, f as tf.Tensor3D, f as tf.Tensor3D)));
    const xm = tf.randomNormal([3, 16], 0, 1, 'float32', 14);
    const wm = tf.randomNormal([4, 4, 4], 0, 1, 'float32', 15);
    const gm = tf.grads(monarchLoss)([xm, wm]);
    const gmRef = withKernelOff(() => tf.grads(monarchLoss)([xm, wm]));
    expectTensorsClose(gm[0]!, gmRef[0]!, 1e-5, 'monarch dx');
    expectTensorsClose(gm[1]!, gmRef[1]!, 1e-5, 'monarch dw');
    tf.dispose([x, w, probe, dx!, dw!, dxRef!, dwRef!, ...blocks, ...splitGrads, xm, wm, ...gm, ...gmRef]);
  });

  it('keeps tensors and bytes flat over repeated calls, and follows a weight whose values change', () => {
    const x = tf.randomNormal([9, 32], 0, 1, 'float32', 21);
    const w = tf.variable(tf.randomNormal([4, 8, 12], 0, 1, 'float32', 22)) as tf.Variable<tf.Rank.R3>;
    const w1 = tf.variable(tf.randomNormal([4, 4, 8], 0, 1, 'float32', 23)) as tf.Variable<tf.Rank.R3>;
    const w2 = tf.randomNormal([4, 4, 4], 0, 1, 'float32', 24) as tf.Tensor3D;
    const xBig = tf.randomNormal([3, 260], 0, 1, 'float32', 27);
    const wBig = tf.variable(tf.randomNormal([2, 130, 130], 0, 1, 'float32', 28)) as tf.Variable<tf.Rank.R3>; // XNNPACK path, split once
    const run = () => tf.dispose([blockDiagMatmul(x, w), monarchMatmul(x, w1, w2), blockDiagMatmul(xBig, wBig)]);
    run();
    const before = tf.memory();
    for (let i = 0; i < 4; i++) run();
    expect(tf.memory().numTensors).toBe(before.numTensors);
    expect(tf.memory().numBytes).toBe(before.numBytes);
    const next = [tf.randomNormal([4, 8, 12], 0, 1, 'float32', 25), tf.randomNormal([4, 4, 8], 0, 1, 'float32', 26), tf.randomNormal([2, 130, 130], 0, 1, 'float32', 29)];
    w.assign(next[0] as tf.Tensor3D);
    w1.assign(next[1] as tf.Tensor3D);
    wBig.assign(next[2] as tf.Tensor3D);
    tf.dispose(next); // the variables hold the data now
    const y = blockDiagMatmul(x, w);
    const ym = monarchMatmul(x, w1, w2);
    const yBig = blockDiagMatmul(xBig, wBig);
    expectTensorsClose(y, blockDiagMatmulReference(x, w), 1e-5, 'blockDiag after assign');
    expectTensorsClose(ym, monarchMatmulReference(x, w1, w2), 1e-5, 'monarch after assign');
    expectTensorsClose(yBig, blockDiagMatmulReference(xBig, wBig), 1e-4, 'blockDiag (large blocks) after assign');
    expect(tf.memory().numTensors).toBe(before.numTensors + 3); // the stale packs and splits were replaced, not added
    tf.dispose([x, w, w1, w2, xBig, wBig, y, ym, yBig]);
  });
});
