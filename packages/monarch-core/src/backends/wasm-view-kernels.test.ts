// The wasm Slice / SplitV / Unpack replacements against a plain-JS box copy (and tfjs's cpu kernels' semantics):
// odd shapes, partial and whole axes, ints and bools, and their gradients.
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setupBackend } from './setup-backend.js';
import { registerWasmViewKernels, wasmViewKernels } from './wasm-view-kernels.js';

const previous = tf.getBackend();
beforeAll(async () => {
  await setupBackend('wasm', { threads: 1 });
});
afterAll(async () => {
  await tf.setBackend(previous);
});

/** Reference: element-by-element box copy. */
function referenceBox(values: number[], shape: number[], begin: number[], size: number[]): number[] {
  const strides = shape.map((_, i) => shape.slice(i + 1).reduce((a, b) => a * b, 1));
  const out: number[] = [];
  const total = size.reduce((a, b) => a * b, 1);
  for (let flat = 0; flat < total; flat++) {
    let rest = flat;
    let offset = 0;
    for (let axis = size.length - 1; axis >= 0; axis--) {
      const i = rest % size[axis]!;
      rest = Math.floor(rest / size[axis]!);
      offset += (begin[axis]! + i) * strides[axis]!;
    }
    out.push(values[offset]!);
  }
  return out;
}

const values = (n: number) => Array.from({ length: n }, (_, i) => ((i * 7919) % 1000) / 7 - 50);

describe('wasm view kernels', () => {
  it('are registered for wasm by setupBackend', () => {
    expect(registerWasmViewKernels()).toEqual([]);
    for (const [name, f] of Object.entries(wasmViewKernels)) expect(tf.getKernel(name, 'wasm')?.kernelFunc).toBe(f);
  });

  it('slice matches a box copy for partial, whole and contiguous boxes', () => {
    const cases: Array<{ shape: number[]; begin: number[]; size: number[] }> = [
      { shape: [7], begin: [2], size: [4] },
      { shape: [5, 6], begin: [1, 2], size: [3, 3] },
      { shape: [5, 6], begin: [2, 0], size: [2, 6] },
      { shape: [3, 4, 5], begin: [1, 1, 0], size: [2, 2, 5] },
      { shape: [3, 4, 5], begin: [0, 1, 2], size: [3, 3, 2] },
      { shape: [2, 3, 4, 5], begin: [1, 0, 1, 1], size: [1, 3, 2, 3] },
      { shape: [2, 3, 2, 2, 3], begin: [0, 1, 0, 1, 0], size: [2, 2, 2, 1, 3] },
      { shape: [4, 5], begin: [1, 1], size: [0, 3] },
    ];
    for (const c of cases) {
      const n = c.shape.reduce((a, b) => a * b, 1);
      const x = tf.tensor(values(n), c.shape);
      const y = tf.slice(x, c.begin, c.size);
      expect(y.shape).toEqual(c.size);
      expect(Array.from(y.dataSync())).toEqual(referenceBox(values(n).map((v) => Math.fround(v)), c.shape, c.begin, c.size));
      tf.dispose([x, y]);
    }
  });

  it('slices int32 and bool tensors', () => {
    const ints = tf.tensor2d([1, 2, 3, 4, 5, 6], [2, 3], 'int32');
    expect(Array.from(tf.slice(ints, [0, 1], [2, 2]).dataSync())).toEqual([2, 3, 5, 6]);
    const bools = tf.tensor1d([true, false, true, true], 'bool');
    expect(Array.from(tf.slice(bools, [1], [2]).dataSync())).toEqual([0, 1]);
  });

  it('split and unstack match slices on every axis', () => {
    const x = tf.tensor(values(60), [3, 4, 5]);
    const parts = tf.split(x, [1, 3, 1], 2);
    expect(parts.map((p) => p.shape)).toEqual([[3, 4, 1], [3, 4, 3], [3, 4, 1]]);
    expect(Array.from(parts[1]!.dataSync())).toEqual(referenceBox(Array.from(x.dataSync()), [3, 4, 5], [0, 0, 1], [3, 4, 3]));
    const rows = tf.unstack(x, 1);
    expect(rows.map((r) => r.shape)).toEqual([[3, 5], [3, 5], [3, 5], [3, 5]]);
    expect(Array.from(rows[2]!.dataSync())).toEqual(referenceBox(Array.from(x.dataSync()), [3, 4, 5], [0, 2, 0], [3, 1, 5]));
    tf.dispose([x, ...parts, ...rows]);
  });

  it('keeps the gradient of slice (pad of the upstream gradient)', () => {
    const g = tf.grad((x: tf.Tensor) => tf.sum(tf.mul(tf.slice(x, [1, 1], [1, 2]), 3)))(tf.ones([3, 3]));
    expect(Array.from(g.dataSync())).toEqual([0, 0, 0, 0, 3, 3, 0, 0, 0]);
  });
});
