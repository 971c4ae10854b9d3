// The tall-matMul wrapper, exercised on the cpu backend with a tiny row limit (the webgpu case is the same code
// with 2^18 rows; tooling/gpu/entry.ts checks it on a GPU).
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import { expectTensorsClose, seededUniform } from '../testing.js';
import { describeWebGpu, swiftShaderWebGpu } from '../../test/webgpu-swiftshader.js';
import { groupedAddNKernel, largeSumKernel, largeTransposeKernel, tallMatMulKernel } from './webgpu-tall-matmul.js';

const original = tf.getKernel(tf.BatchMatMul, 'cpu')!;
const originalTranspose = tf.getKernel(tf.Transpose, 'cpu')!;
const originalSum = tf.getKernel(tf.Sum, 'cpu')!;
afterAll(() => {
  tf.unregisterKernel(tf.Sum, 'cpu');
  tf.registerKernel(originalSum);
  tf.unregisterKernel(tf.BatchMatMul, 'cpu');
  tf.registerKernel(original);
  tf.unregisterKernel(tf.Transpose, 'cpu');
  tf.registerKernel(originalTranspose);
});

const random = seededUniform;

/** float64 reference of a · b (or a · bᵀ). */
function reference(a: Float32Array, b: Float32Array, m: number, k: number, n: number, transposeB: boolean) {
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) {
    let s = 0;
    for (let p = 0; p < k; p++) s += a[i * k + p] * (transposeB ? b[j * k + p] : b[p * n + j]);
    out[i * n + j] = s;
  }
  return { shape: [m, n], data: out };
}

describe('tallMatMulKernel', () => {
  it.each([
    [96, 'folds rows into the batch (96 rows = 12 × 8)'],
    [101, 'slices and concatenates rows without a fitting divisor (101 rows)'],
  ])('with %i rows %s, equal to a float64 product, also through its gradient', async (rows) => {
    await tf.setBackend('cpu');
    const calls: number[] = [];
    tf.unregisterKernel(tf.BatchMatMul, 'cpu');
    tf.registerKernel({ ...original, kernelFunc: tallMatMulKernel((args) => {
      calls.push((args.inputs as { a: tf.TensorInfo }).a.shape.at(-2)!);
      return original.kernelFunc(args);
    }, 'cpu', 8) });
    const a = random(rows * 5, 1);
    const b = random(5 * 3, 2);
    const before = { tensors: tf.memory().numTensors, buffers: tf.engine().backend.numDataIds() };
    tf.tidy(() => {
      const y = tf.matMul(tf.tensor2d(a, [rows, 5]), tf.tensor2d(b, [5, 3]));
      expectTensorsClose(y, reference(a, b, rows, 5, 3, false), 1e-6);
      expect(Math.max(...calls)).toBeLessThanOrEqual(8);
      const yt = tf.matMul(tf.tensor2d(a, [rows, 5]), tf.tensor2d(b, [3, 5]), false, true);
      expectTensorsClose(yt, reference(a, b, rows, 5, 3, true), 1e-6);
      // dA = dy · Bᵀ goes through the wrapper again (rows of dy); dB = Aᵀ · dy does not (A transposed).
      const ga = tf.grad((x: tf.Tensor) => tf.sum(tf.matMul(x as tf.Tensor2D, tf.tensor2d(b, [5, 3]))))(tf.tensor2d(a, [rows, 5]));
      const rowSums = Array.from({ length: 5 }, (_, p) => b[p * 3] + b[p * 3 + 1] + b[p * 3 + 2]);
      expectTensorsClose(ga, { shape: [rows, 5], data: Float64Array.from({ length: rows * 5 }, (_, i) => rowSums[i % 5]) }, 1e-6);
    });
    // No tensors and no backend buffers (the wrapper's reshapes, slices and partial products) stay behind.
    expect({ tensors: tf.memory().numTensors, buffers: tf.engine().backend.numDataIds() }).toEqual(before);
  });
});

describe('largeTransposeKernel', () => {
  it('runs long 2-D transposes as 3-D ones, with the same result', async () => {
    await tf.setBackend('cpu');
    const perms: number[][] = [];
    tf.unregisterKernel(tf.Transpose, 'cpu');
    tf.registerKernel({ ...originalTranspose, kernelFunc: largeTransposeKernel((args) => {
      perms.push((args.attrs as unknown as { perm: number[] }).perm);
      return originalTranspose.kernelFunc(args);
    }, 'cpu', 6) });
    const x = random(4 * 9, 3);
    const expected = Float64Array.from({ length: 36 }, (_, i) => x[(i % 4) * 9 + Math.floor(i / 4)]); // [9, 4]
    const before = tf.engine().backend.numDataIds();
    tf.tidy(() => expectTensorsClose(tf.transpose(tf.tensor2d(x, [4, 9])), { shape: [9, 4], data: expected }, 0));
    tf.tidy(() => expectTensorsClose(tf.transpose(tf.slice(tf.tensor2d(x, [4, 9]), [0, 0], [4, 5])), {
      shape: [5, 4], data: Float64Array.from({ length: 20 }, (_, i) => x[(i % 4) * 9 + Math.floor(i / 4)]) }, 0));
    expect(perms).toEqual([[0, 2, 1], [1, 0]]);
    expect(tf.engine().backend.numDataIds()).toBe(before);
  });
});

describe('largeSumKernel', () => {
  it('sums long rows through a 3-D view, and [1, N] by a reshape, with the same result', async () => {
    await tf.setBackend('cpu');
    const shapes: number[][] = [];
    tf.unregisterKernel(tf.Sum, 'cpu');
    tf.registerKernel({ ...originalSum, kernelFunc: largeSumKernel((args) => {
      shapes.push((args.inputs as { x: tf.TensorInfo }).x.shape);
      return originalSum.kernelFunc(args);
    }, 'cpu', 6) });
    const x = random(3 * 12, 4);
    const colSums = Float64Array.from({ length: 12 }, (_, j) => x[j] + x[12 + j] + x[24 + j]);
    const before = tf.engine().backend.numDataIds();
    tf.tidy(() => {
      expectTensorsClose(tf.sum(tf.tensor2d(x, [3, 12]), 0), { shape: [12], data: colSums }, 1e-6);
      expectTensorsClose(tf.sum(tf.tensor2d(x, [3, 12]), 0, true), { shape: [1, 12], data: colSums }, 1e-6);
      expectTensorsClose(tf.sum(tf.tensor2d(x.subarray(0, 12), [1, 12]), 0), { shape: [12], data: Float64Array.from(x.subarray(0, 12)) }, 0);
      expectTensorsClose(tf.sum(tf.tensor2d(x, [3, 12]), 1), { shape: [3], data: [0, 1, 2].map((r) => x.subarray(r * 12, r * 12 + 12).reduce((a, v) => a + v, 0)) }, 1e-6);
    });
    expect(shapes).toEqual([[3, 3, 4], [3, 3, 4], [3, 12]]);
    expect(tf.engine().backend.numDataIds()).toBe(before);
  });
});

// The same wrappers around tfjs-backend-webgpu's own kernels, executed on webgpu through SwiftShader (a CPU Vulkan
// driver), with tiny limits so that small tensors take the split paths.
const gpu = await swiftShaderWebGpu();

describeWebGpu(gpu, 'dispatch guards around the webgpu kernels (SwiftShader)', () => {
  it('tall matMul (slices of 8 rows), long transpose (3-D) and long-row Sum (3-D view) give the stock results', async () => {
    await tf.setBackend('webgpu');
    const kernels = [tf.BatchMatMul, tf.Transpose, tf.Sum].map((name) => tf.getKernel(name, 'webgpu')!);
    const [matMul, transpose, sum] = kernels;
    tf.unregisterKernel(tf.BatchMatMul, 'webgpu');
    const pieces: number[] = [];
    tf.registerKernel({ ...matMul!, kernelFunc: tallMatMulKernel((args) => {
      pieces.push((args.inputs as { a: tf.TensorInfo }).a.shape.at(-2)!);
      return matMul!.kernelFunc(args);
    }, 'webgpu', 8) });
    tf.unregisterKernel(tf.Transpose, 'webgpu');
    tf.registerKernel({ ...transpose!, kernelFunc: largeTransposeKernel(transpose!.kernelFunc, 'webgpu', 6) });
    tf.unregisterKernel(tf.Sum, 'webgpu');
    tf.registerKernel({ ...sum!, kernelFunc: largeSumKernel(sum!.kernelFunc, 'webgpu', 6) });
    try {
      const [rows, k, n] = [101, 5, 3];
      const a = random(rows * k, 1);
      const b = random(k * n, 2);
      const x = random(4 * 9, 3);
      const outputs = tf.tidy(() => [
        tf.matMul(tf.tensor2d(a, [rows, k]), tf.tensor2d(b, [k, n])),
        tf.transpose(tf.tensor2d(x, [4, 9])),
        tf.sum(tf.tensor2d(x, [3, 12]), 0),
      ]);
      const [y, t, s] = await Promise.all(outputs.map(async (o) => ({ shape: o.shape, data: await o.data() })));
      tf.dispose(outputs);
      expectTensorsClose(y!, reference(a, b, rows, k, n, false), 1e-6);
      expect(Math.max(...pieces)).toBeLessThanOrEqual(8);
      expectTensorsClose(t!, { shape: [9, 4], data: Float64Array.from({ length: 36 }, (_, i) => x[(i % 4) * 9 + Math.floor(i / 4)]!) }, 0);
      expectTensorsClose(s!, { shape: [12], data: Float64Array.from({ length: 12 }, (_, j) => x[j]! + x[12 + j]! + x[24 + j]!) }, 1e-6);
    } finally {
      for (const config of kernels) {
        tf.unregisterKernel(config.kernelName, 'webgpu');
        tf.registerKernel(config);
      }
      await tf.setBackend('cpu');
    }
  });
});

describe('groupedAddNKernel', () => {
  it('adds 1 … 20 inputs at most 3 per call, with the stock sums, and frees its partial sums (cpu)', async () => {
    const stock = tf.getKernel(tf.AddN, 'cpu')!;
    const widths: number[] = [];
    tf.unregisterKernel(tf.AddN, 'cpu');
    tf.registerKernel({ ...stock, kernelFunc: groupedAddNKernel((args) => {
      widths.push(Object.keys(args.inputs).length);
      return stock.kernelFunc(args);
    }, 3) });
    try {
      for (const count of [1, 2, 3, 4, 7, 20]) {
        const terms = Array.from({ length: count }, (_, i) => tf.tensor1d(random(5, 10 + i)));
        const before = tf.memory().numTensors;
        const dataBefore = (tf.backend() as unknown as { numDataIds(): number }).numDataIds();
        const sum = tf.addN(terms);
        expect(tf.memory().numTensors).toBe(before + 1);
        expect((tf.backend() as unknown as { numDataIds(): number }).numDataIds()).toBe(dataBefore + 1);
        const want = Float64Array.from({ length: 5 }, (_, j) => terms.reduce((acc, t) => acc + t.dataSync()[j]!, 0));
        expectTensorsClose({ shape: [5], data: sum.dataSync() }, { shape: [5], data: want }, 1e-6);
        tf.dispose([sum, ...terms]);
      }
      expect(Math.max(...widths)).toBeLessThanOrEqual(3);
    } finally {
      tf.unregisterKernel(tf.AddN, 'cpu');
      tf.registerKernel(stock);
    }
  });
});

describeWebGpu(gpu, 'AddN over many inputs on webgpu (SwiftShader)', () => {
  it('tf.addN of 20 tensors (more than one dispatch binds) equals their sum: setupBackend wraps the kernel', async () => {
    await tf.setBackend('webgpu');
    try {
      const values = Array.from({ length: 20 }, (_, i) => random(64, 40 + i));
      const sum = tf.tidy(() => tf.addN(values.map((v) => tf.tensor1d(v))));
      const got = await sum.data();
      sum.dispose();
      const want = Float64Array.from({ length: 64 }, (_, j) => values.reduce((acc, v) => acc + v[j]!, 0));
      expectTensorsClose({ shape: [64], data: got }, { shape: [64], data: want }, 1e-6);
    } finally {
      await tf.setBackend('cpu');
    }
  });
});
