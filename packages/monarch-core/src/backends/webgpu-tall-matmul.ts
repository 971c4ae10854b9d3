// Tall matrix products on tfjs-backend-webgpu.
//
// tfjs-webgpu dispatches one workgroup row per 32 (packed program) or 8 (small-output program) rows of A in the
// Y dimension, and WebGPU allows at most 65535 workgroups there. A 2-D product with more rows, as the Monarch DFT
// of a long convolution makes at L = 16384 ([768·32768/r, r] · [r, r]), fails with "Dispatch size exceeds WebGPU
// limits in Y or Z dimension". Wrapping the backend's BatchMatMul kernel, we fold such rows into the batch
// dimension instead (a free reshape [M, K] → [c, M/c, K], B broadcast over the batch), or, when M has no fitting
// divisor, run row slices and concatenate them. Likewise a 2-D transpose with a side longer than 16·65535 (tfjs
// runs 2-D transposes as 16 × 16 tiles dispatched in X and Y) runs as the 3-D transpose [1, a, b] → [1, b, a],
// whose dispatch is flat. And a Sum over the rows of a 2-D [B, N] tensor with N longer than that (tfjs transposes
// it to [N, B] internally, bypassing the Transpose kernel) sums the 3-D [B, n1, n2] instead, N = n1·n2.
import * as tf from '@tensorflow/tfjs-core';
import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';

/** Rows of A per dispatch that every tfjs-webgpu matMul program accepts (65535 workgroups × 8 rows, rounded down). */
export const WEBGPU_MAX_MATMUL_ROWS = 2 ** 18;

const WRAPPED = Symbol.for('@monarch-mixer/tall-matmul');

interface MatMulAttrs {
  transposeA: boolean;
  transposeB: boolean;
}

/** Runs another kernel of the same backend directly (inside a kernel, without the engine). */
function runBackendKernel(name: string, backendName: string, args: Parameters<KernelFunc>[0]): TensorInfo {
  const kernel = tf.getKernel(name, backendName);
  if (kernel === undefined) throw new Error(`${backendName} has no ${name} kernel`);
  return kernel.kernelFunc(args) as TensorInfo;
}

/** Smallest c ≥ ⌈rows / maxRows⌉ that divides rows with rows / c ≤ maxRows, or 0 when there is none nearby. */
function foldFactor(rows: number, maxRows: number): number {
  const first = Math.ceil(rows / maxRows);
  for (let c = first; c <= first * 64 && c <= rows; c++) if (rows % c === 0) return c;
  return 0;
}

/**
 * A BatchMatMul kernel that calls `original` on pieces of at most `maxRows` rows of A when A is a single tall
 * matrix (no batch, A not transposed); otherwise it is `original`.
 *
 * @param original - The backend's own BatchMatMul kernel function.
 * @param backendName - Backend whose Reshape / Slice / Concat kernels move the pieces.
 * @param maxRows - Most rows of A per call of `original`.
 * @returns The wrapping kernel function.
 */
export function tallMatMulKernel(original: KernelFunc, backendName: string, maxRows = WEBGPU_MAX_MATMUL_ROWS): KernelFunc {
  return (args) => {
    const { a, b } = args.inputs as { a: TensorInfo; b: TensorInfo };
    const { transposeA, transposeB } = args.attrs as unknown as MatMulAttrs;
    const rows = a.shape[a.shape.length - 2];
    const batchA = tf.util.sizeFromShape(a.shape.slice(0, -2));
    const batchB = tf.util.sizeFromShape(b.shape.slice(0, -2));
    if (transposeA || batchA !== 1 || batchB !== 1 || rows <= maxRows) return original(args);
    const backend = args.backend as tf.KernelBackend;
    const inner = a.shape[a.shape.length - 1];
    const cols = transposeB ? b.shape[b.shape.length - 2] : b.shape[b.shape.length - 1];
    const outShape = [...a.shape.slice(0, -2), rows, cols];
    const temporaries: TensorInfo[] = [];
    const reshape = (x: TensorInfo, shape: number[], temporary = true) => {
      const y = runBackendKernel(tf.Reshape, backendName, { inputs: { x }, backend, attrs: { shape } });
      if (temporary) temporaries.push(y);
      return y;
    };
    const release = (...extra: TensorInfo[]) => {
      for (const t of [...temporaries, ...extra]) backend.disposeData(t.dataId);
    };
    const c = foldFactor(rows, maxRows);
    if (c > 0) {
      // [rows, K] → [c, rows/c, K]: a batch of c products with the same B (broadcast).
      const product = original({ ...args, inputs: { a: reshape(a, [c, rows / c, inner]), b } }) as TensorInfo;
      const out = reshape(product, outShape, false);
      release(product);
      return out;
    }
    const a2 = reshape(a, [rows, inner]);
    const parts: TensorInfo[] = [];
    for (let start = 0; start < rows; start += maxRows) {
      const size = Math.min(maxRows, rows - start);
      const piece = runBackendKernel(tf.Slice, backendName, { inputs: { x: a2 }, backend, attrs: { begin: [start, 0], size: [size, inner] } });
      parts.push(original({ ...args, inputs: { a: reshape(piece, [1, size, inner]), b } }) as TensorInfo);
      backend.disposeData(piece.dataId);
    }
    const pieces2d = parts.map((p) => reshape(p, [p.shape[p.shape.length - 2], cols]));
    const joined = runBackendKernel(tf.Concat, backendName, { inputs: pieces2d as unknown as tf.NamedTensorInfoMap, backend, attrs: { axis: 0 } });
    const out = reshape(joined, outShape, false);
    release(joined, ...parts);
    return out;
  };
}

/**
 * Replaces `backendName`'s BatchMatMul kernel with {@link tallMatMulKernel} around it, once.
 *
 * @param backendName - Usually `webgpu`.
 * @param maxRows - Most rows of A per call of the original kernel.
 * @returns True if the kernel was wrapped now, false if it was already or the backend has none.
 * @example
 * registerTallMatMul('webgpu'); // matMul of [3_000_000, 32] · [32, 32] now runs on webgpu
 */
export function registerTallMatMul(backendName = 'webgpu', maxRows = WEBGPU_MAX_MATMUL_ROWS): boolean {
  const config = tf.getKernel(tf.BatchMatMul, backendName) as (KernelConfig & { [WRAPPED]?: true }) | undefined;
  if (config === undefined || config[WRAPPED]) return false;
  tf.unregisterKernel(tf.BatchMatMul, backendName);
  tf.registerKernel({ ...config, kernelFunc: tallMatMulKernel(config.kernelFunc, backendName, maxRows), [WRAPPED]: true } as KernelConfig);
  return true;
}

/** Longest side of a 2-D transpose that tfjs-webgpu's tiled (16 × 16, X and Y dispatch) program accepts. */
export const WEBGPU_MAX_TRANSPOSE_SIDE = 16 * 65535;

/**
 * A Transpose kernel that runs 2-D transposes with a side longer than `maxSide` as a 3-D transpose through
 * `original`; otherwise it is `original`.
 *
 * @param original - The backend's own Transpose kernel function.
 * @param backendName - Backend whose Reshape kernel re-labels the shapes.
 * @param maxSide - Longest side `original` handles in 2-D.
 * @returns The wrapping kernel function.
 */
export function largeTransposeKernel(original: KernelFunc, backendName: string, maxSide = WEBGPU_MAX_TRANSPOSE_SIDE): KernelFunc {
  return (args) => {
    const { x } = args.inputs as { x: TensorInfo };
    const { perm } = args.attrs as unknown as { perm: number[] };
    if (x.shape.length !== 2 || perm[0] !== 1 || Math.max(...x.shape) <= maxSide) return original(args);
    const backend = args.backend as tf.KernelBackend;
    const [rows, cols] = x.shape;
    const reshape = (t: TensorInfo, shape: number[]) => runBackendKernel(tf.Reshape, backendName, { inputs: { x: t }, backend, attrs: { shape } });
    const x3 = reshape(x, [1, rows, cols]);
    const y3 = original({ ...args, inputs: { x: x3 }, attrs: { perm: [0, 2, 1] } }) as TensorInfo;
    const out = reshape(y3, [cols, rows]);
    backend.disposeData(x3.dataId);
    backend.disposeData(y3.dataId);
    return out;
  };
}

/**
 * Wraps `backendName`'s Transpose kernel with {@link largeTransposeKernel}, once.
 *
 * @param backendName - Usually `webgpu`.
 * @param maxSide - Longest side of a 2-D transpose left to the original kernel.
 * @returns True if the kernel was wrapped now.
 * @example
 * registerLargeTranspose('webgpu');
 */
export function registerLargeTranspose(backendName = 'webgpu', maxSide = WEBGPU_MAX_TRANSPOSE_SIDE): boolean {
  const config = tf.getKernel(tf.Transpose, backendName) as (KernelConfig & { [WRAPPED]?: true }) | undefined;
  if (config === undefined || config[WRAPPED]) return false;
  tf.unregisterKernel(tf.Transpose, backendName);
  tf.registerKernel({ ...config, kernelFunc: largeTransposeKernel(config.kernelFunc, backendName, maxSide), [WRAPPED]: true } as KernelConfig);
  return true;
}

/**
 * A Sum kernel that sums a 2-D [B, N] tensor over axis 0 with N longer than `maxSide` as the 3-D [B, n1, n2]
 * (N = n1·n2), so that the transpose tfjs-webgpu makes inside Sum is 3-D; [1, N] is a reshape. Otherwise `original`.
 *
 * @param original - The backend's own Sum kernel function.
 * @param backendName - Backend whose Reshape kernel re-labels the shapes.
 * @param maxSide - Longest side of a 2-D transpose the backend handles.
 * @returns The wrapping kernel function.
 */
export function largeSumKernel(original: KernelFunc, backendName: string, maxSide = WEBGPU_MAX_TRANSPOSE_SIDE): KernelFunc {
  return (args) => {
    const { x } = args.inputs as { x: TensorInfo };
    const { axis, keepDims } = args.attrs as unknown as { axis: number | number[]; keepDims: boolean };
    if (x.shape.length !== 2) return original(args);
    const axes = tf.util.parseAxisParam(axis, x.shape);
    const [rows, cols] = x.shape;
    if (axes.length !== 1 || axes[0] !== 0 || cols <= maxSide) return original(args);
    const backend = args.backend as tf.KernelBackend;
    const reshape = (t: TensorInfo, shape: number[]) => runBackendKernel(tf.Reshape, backendName, { inputs: { x: t }, backend, attrs: { shape } });
    const outShape = keepDims ? [1, cols] : [cols];
    if (rows === 1) return reshape(x, outShape);
    let split = Math.floor(Math.sqrt(cols));
    while (split > 1 && cols % split !== 0) split--;
    if (split === 1) return original(args);
    const x3 = reshape(x, [rows, split, cols / split]);
    const summed = original({ ...args, inputs: { x: x3 }, attrs: { axis: [0], keepDims: false } }) as TensorInfo;
    const out = reshape(summed, outShape);
    backend.disposeData(x3.dataId);
    backend.disposeData(summed.dataId);
    return out;
  };
}

/**
 * Wraps `backendName`'s Sum kernel with {@link largeSumKernel}, once.
 *
 * @param backendName - Usually `webgpu`.
 * @param maxSide - Longest side of a 2-D transpose the backend handles.
 * @returns True if the kernel was wrapped now.
 * @example
 * registerLargeSum('webgpu');
 */
export function registerLargeSum(backendName = 'webgpu', maxSide = WEBGPU_MAX_TRANSPOSE_SIDE): boolean {
  const config = tf.getKernel(tf.Sum, backendName) as (KernelConfig & { [WRAPPED]?: true }) | undefined;
  if (config === undefined || config[WRAPPED]) return false;
  tf.unregisterKernel(tf.Sum, backendName);
  tf.registerKernel({ ...config, kernelFunc: largeSumKernel(config.kernelFunc, backendName, maxSide), [WRAPPED]: true } as KernelConfig);
  return true;
}

/**
 * tfjs-webgpu's AddN binds every input as a storage buffer of one dispatch. Past the device's
 * `maxStorageBuffersPerShaderStage` − 1 inputs (7 on SwiftShader) the pipeline is invalid and the result is whatever
 * the output buffer held; Dawn may also drop the whole batched command buffer. The wrapper adds at most that many
 * inputs per dispatch and then adds the partial sums the same way.
 *
 * @param original - The backend's AddN kernel.
 * @param maxInputs - Inputs one dispatch may bind (default: the device's limit − 1 for the output).
 * @returns A kernel function with the same results.
 */
export function groupedAddNKernel(original: KernelFunc, maxInputs?: number): KernelFunc {
  return (args) => {
    const backend = args.backend as { disposeData(dataId: unknown): void; device?: GPUDevice };
    const limit = Math.max(2, maxInputs ?? (backend.device?.limits.maxStorageBuffersPerShaderStage ?? 8) - 1);
    let terms = Object.values(args.inputs) as TensorInfo[];
    let owned = new Set<TensorInfo>(); // partial sums made here (the inputs belong to the caller)
    while (terms.length > limit) {
      const next: TensorInfo[] = [];
      const nextOwned = new Set<TensorInfo>();
      for (let i = 0; i < terms.length; i += limit) {
        const group = terms.slice(i, i + limit);
        if (group.length === 1) {
          next.push(group[0]!);
          if (owned.has(group[0]!)) nextOwned.add(group[0]!);
          continue;
        }
        const partial = original({ ...args, inputs: group as unknown as typeof args.inputs }) as TensorInfo;
        next.push(partial);
        nextOwned.add(partial);
        for (const t of group) if (owned.has(t)) backend.disposeData(t.dataId);
      }
      owned = nextOwned;
      terms = next;
    }
    const out = original({ ...args, inputs: terms as unknown as typeof args.inputs }) as TensorInfo;
    for (const t of owned) backend.disposeData(t.dataId);
    return out;
  };
}

/**
 * Wraps `backendName`'s AddN kernel with {@link groupedAddNKernel}, once.
 *
 * @param backendName - Usually `webgpu`.
 * @param maxInputs - Inputs per dispatch (default: from the device's limits).
 * @returns True if the kernel was wrapped now.
 */
export function registerGroupedAddN(backendName = 'webgpu', maxInputs?: number): boolean {
  const config = tf.getKernel(tf.AddN, backendName) as (KernelConfig & { [WRAPPED]?: true }) | undefined;
  if (config === undefined || config[WRAPPED]) return false;
  tf.unregisterKernel(tf.AddN, backendName);
  tf.registerKernel({ ...config, kernelFunc: groupedAddNKernel(config.kernelFunc, maxInputs), [WRAPPED]: true } as KernelConfig);
  return true;
}

/**
 * Installs every guard of this file for `backendName` (tall matMul, long 2-D transpose, Sum over long rows, AddN
 * over many inputs).
 *
 * @param backendName - Usually `webgpu`.
 * @example
 * registerWebGpuDispatchGuards(); // after tf.setBackend('webgpu')
 */
export function registerWebGpuDispatchGuards(backendName = 'webgpu'): void {
  registerTallMatMul(backendName);
  registerLargeTranspose(backendName);
  registerLargeSum(backendName);
  registerGroupedAddN(backendName);
}
