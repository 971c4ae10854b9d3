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

/** Reference transpose: out[i] = x[Σ idx_a · stride_in(perm[a])]. */
function referenceTranspose(values: number[], shape: number[], perm: number[]): number[] {
  const outShape = perm.map((p) => shape[p]!);
  const strides = shape.map((_, i) => shape.slice(i + 1).reduce((a, b) => a * b, 1));
  const total = shape.reduce((a, b) => a * b, 1);
  const out: number[] = [];
  for (let flat = 0; flat < total; flat++) {
    let rest = flat;
    let offset = 0;
    for (let a = outShape.length - 1; a >= 0; a--) {
      const i = rest % outShape[a]!;
      rest = Math.floor(rest / outShape[a]!);
      offset += i * strides[perm[a]!]!;
    }
    out.push(values[offset]!);
  }
  return out;
}

describe('wasm GatherV2 and Transpose replacements', () => {
  it('gather copies rows on axis 0 and 1, with repeated indices and 2-D indices', () => {
    const x = tf.tensor(values(4 * 5 * 3), [4, 5, 3]);
    const xv = Array.from(x.dataSync());
    const rows = tf.gather(x, tf.tensor1d([3, 0, 3], 'int32'));
    expect(rows.shape).toEqual([3, 5, 3]);
    expect(Array.from(rows.dataSync())).toEqual([...xv.slice(45, 60), ...xv.slice(0, 15), ...xv.slice(45, 60)]);
    const cols = tf.gather(x, tf.tensor2d([[4, 1], [0, 0]], [2, 2], 'int32'), 1);
    expect(cols.shape).toEqual([4, 2, 2, 3]);
    const expected: number[] = [];
    for (let o = 0; o < 4; o++) for (const id of [4, 1, 0, 0]) expected.push(...xv.slice(o * 15 + id * 3, o * 15 + id * 3 + 3));
    expect(Array.from(cols.dataSync())).toEqual(expected);
    const ints = tf.gather(tf.tensor2d([1, 2, 3, 4], [2, 2], 'int32'), tf.tensor1d([1], 'int32'));
    expect(Array.from(ints.dataSync())).toEqual([3, 4]);
    tf.dispose([x, rows, cols, ints]);
  });

  it('gather rejects an index out of range without leaking', () => {
    const x = tf.ones([3, 2]);
    const ids = tf.tensor1d([0, 3], 'int32');
    const before = tf.memory().numTensors;
    expect(() => tf.gather(x, ids)).toThrow(/index value 3 is not in \[0, 2\]/);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([x, ids]);
  });

  it('keeps the gradient of gather (UnsortedSegmentSum)', () => {
    const g = tf.grad((x: tf.Tensor) => tf.sum(tf.gather(x, tf.tensor1d([1, 1, 0], 'int32'))))(tf.ones([3, 2]));
    expect(Array.from(g.dataSync())).toEqual([1, 1, 2, 2, 0, 0]);
  });

  it('transpose matches the reference on tiled and untiled permutations, odd sizes, int32', () => {
    const cases: Array<{ shape: number[]; perm: number[] }> = [
      { shape: [33, 45], perm: [1, 0] },
      { shape: [2, 70, 37], perm: [0, 2, 1] },
      { shape: [35, 3, 40], perm: [2, 1, 0] },
      { shape: [34, 5, 33], perm: [1, 2, 0] },
      { shape: [3, 33, 2, 40], perm: [0, 3, 2, 1] },
      { shape: [4, 5, 6], perm: [2, 0, 1] },
      { shape: [4, 5, 6], perm: [1, 0, 2] },
    ];
    for (const c of cases) {
      const n = c.shape.reduce((a, b) => a * b, 1);
      const x = tf.tensor(values(n), c.shape);
      const y = tf.transpose(x, c.perm);
      expect(y.shape).toEqual(c.perm.map((p) => c.shape[p]));
      expect(Array.from(y.dataSync())).toEqual(referenceTranspose(Array.from(x.dataSync()), c.shape, c.perm));
      tf.dispose([x, y]);
    }
    const ints = tf.tensor2d(Array.from({ length: 40 * 33 }, (_, i) => i), [40, 33], 'int32');
    expect(Array.from(tf.transpose(ints).dataSync())).toEqual(referenceTranspose(Array.from(ints.dataSync()), [40, 33], [1, 0]));
  });
});
