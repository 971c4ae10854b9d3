// A block-diagonal matrix product as one tiled WGSL kernel for tfjs-backend-webgpu, with its gradient.
//
// Stock tfjs runs blockDiagMatmul as transpose → BatchMatMul → transpose, and its batched matMul is slow for
// Monarch-sized blocks (toolchain.md §3). Here every block of every row tile is one workgroup of a single
// dispatch: the kernel reads x [rows, nb·bi] and writes y [rows, nb·bo] in their natural layouts, stages
// 16·TM × TK tiles of x and TK × 16·TN tiles of the weights in workgroup memory, and each of its 256 threads
// accumulates a TM × TN register tile.
//
// The same template computes the three products of the forward and backward pass (per block b):
//   forward      y_b  = x_b · W_b          M = rows, N = bo, K = bi
//   inputGrad    dx_b = dy_b · W_bᵀ        M = rows, N = bi, K = bo
//   weightGrad   dW_b = x_bᵀ · dy_b        M = bi,   N = bo, K = rows (split over workgroups, then summed)
// The kernels are also registered for the cpu backend (plain loops), so the op and its gradient run anywhere.
import * as tf from '@tensorflow/tfjs-core';
import type { KernelFunc, Tensor2D, Tensor3D, TensorInfo } from '@tensorflow/tfjs-core';
import { ShapeError } from '../errors.js';
import { workgroupStorageBytes } from './webgpu-limits.js';

/** Kernel names. */
export const BLOCK_DIAG_KERNELS = {
  forward: 'M2BlockDiagMatmul',
  inputGrad: 'M2BlockDiagMatmulInputGrad',
  weightGrad: 'M2BlockDiagMatmulWeightGrad',
} as const;

type Mode = keyof typeof BLOCK_DIAG_KERNELS;

/** Register-tile shape of the WGSL kernel: each thread computes tm × tn outputs; tk is the staged depth. */
export interface BlockDiagTile {
  tm: number;
  tn: number;
  tk: number;
}

/**
 * Tile used by the registered kernels: 128 × 128 outputs per workgroup of 16 × 16 threads, staged 16 deep. The
 * fastest of five on an H200 at M2-BERT-base shapes (bench/results/h200-2026-11-29-blockdiag-kernel.json):
 * 13.8 / 22.3 / 16.6 TFLOP/s forward for [16384, 4·192] × [4, 192, 192 | 768] and [16384, 4·768] × [4, 768, 192].
 */
export const blockDiagTile: BlockDiagTile = { tm: 8, tn: 8, tk: 16 };

/** Problem of one product: C_b [M, N] = A_b [M, K] · B_b [K, N] for b < numBlocks. */
interface Gemm {
  numBlocks: number;
  m: number;
  n: number;
  k: number;
}

/** Sizes of a product in `mode` for x-like [rows, nb·bi] and weights [nb, bi, bo]. */
function gemmOf(mode: Mode, rows: number, numBlocks: number, blockIn: number, blockOut: number): Gemm {
  if (mode === 'forward') return { numBlocks, m: rows, n: blockOut, k: blockIn };
  if (mode === 'inputGrad') return { numBlocks, m: rows, n: blockIn, k: blockOut };
  return { numBlocks, m: blockIn, n: blockOut, k: rows };
}

/**
 * WGSL body (tfjs-webgpu program user code) of one block-diagonal product.
 * Inputs are `A` and `B` (see the table at the top of this file); `uniforms` holds nb, bi, bo, rows, kChunk.
 */
export function blockDiagShader(mode: Mode, tile: BlockDiagTile): string {
  const { tm, tn, tk } = tile;
  const tileM = 16 * tm;
  const tileN = 16 * tn;
  // Global index of operand elements. Row-major buffers: x [rows, nb·bi], dy [rows, nb·bo], W [nb, bi, bo].
  const aIndex = {
    forward: 'm * (uniforms.nb * uniforms.bi) + b * uniforms.bi + k', // x[m, b·bi + k]
    inputGrad: 'm * (uniforms.nb * uniforms.bo) + b * uniforms.bo + k', // dy[m, b·bo + k]
    weightGrad: 'k * (uniforms.nb * uniforms.bi) + b * uniforms.bi + m', // x[k, b·bi + m]
  }[mode];
  const bIndex = {
    forward: '(b * uniforms.bi + k) * uniforms.bo + n', // W[b, k, n]
    inputGrad: '(b * uniforms.bi + n) * uniforms.bo + k', // W[b, n, k]
    weightGrad: 'k * (uniforms.nb * uniforms.bo) + b * uniforms.bo + n', // dy[k, b·bo + n]
  }[mode];
  const cIndex = {
    forward: 'm * (uniforms.nb * uniforms.bo) + b * uniforms.bo + n',
    inputGrad: 'm * (uniforms.nb * uniforms.bi) + b * uniforms.bi + n',
    weightGrad: '((split * uniforms.nb + b) * uniforms.bi + m) * uniforms.bo + n',
  }[mode];
  // Which tile axis is contiguous in memory, so that neighbouring threads load neighbouring floats.
  const aKContiguous = mode !== 'weightGrad';
  const bNContiguous = mode !== 'inputGrad';
  const dims = {
    forward: ['uniforms.rows', 'uniforms.bo', 'uniforms.bi'],
    inputGrad: ['uniforms.rows', 'uniforms.bi', 'uniforms.bo'],
    weightGrad: ['uniforms.bi', 'uniforms.bo', 'uniforms.rows'],
  }[mode];
  // Row strides of the staged tiles, padded by one float when a tile is stored k-major by neighbouring threads
  // (which would otherwise hit one shared-memory bank).
  const strideA = aKContiguous ? tileM + 1 : tileM;
  const strideB = bNContiguous ? tileN : tileN + 1;
  const loadsA = (tileM * tk) / 256;
  const loadsB = (tileN * tk) / 256;
  const range = (count: number) => Array.from({ length: count }, (_, i) => i);
  const accs = range(tm).flatMap((i) => range(tn).map((j) => `acc${i}_${j}`));

  return `
  var<workgroup> As : array<f32, ${tk * strideA}>;
  var<workgroup> Bs : array<f32, ${tk * strideB}>;

  fn readA(b : i32, m : i32, k : i32, dimM : i32, kEnd : i32) -> f32 {
    if (m < dimM && k < kEnd) { return A[${aIndex}]; }
    return 0.0;
  }
  fn readB(b : i32, k : i32, n : i32, dimN : i32, kEnd : i32) -> f32 {
    if (n < dimN && k < kEnd) { return B[${bIndex}]; }
    return 0.0;
  }

  fn main() {
    let tx = i32(localId.x);
    let ty = i32(localId.y);
    let t = i32(localIndex);
    let dimM = ${dims[0]};
    let dimN = ${dims[1]};
    let dimK = ${dims[2]};
    let b = i32(workgroupId.z) % uniforms.nb;
    let split = i32(workgroupId.z) / uniforms.nb;
    let kBegin = split * uniforms.kChunk;
    let kEnd = min(dimK, kBegin + uniforms.kChunk);
    let m0 = i32(workgroupId.y) * ${tileM};
    let n0 = i32(workgroupId.x) * ${tileN};
    ${accs.map((a) => `var ${a} = 0.0;`).join(' ')}

    // The trip count depends on uniforms only, so that the barriers stay in uniform control flow.
    let numTiles = (uniforms.kChunk + ${tk - 1}) / ${tk};
    for (var tileIndex = 0; tileIndex < numTiles; tileIndex = tileIndex + 1) {
      let k0 = kBegin + tileIndex * ${tk};
      ${range(loadsA).map((r) => {
        const e = `(t + ${256 * r})`;
        const [mm, kk] = aKContiguous ? [`${e} / ${tk}`, `${e} % ${tk}`] : [`${e} % ${tileM}`, `${e} / ${tileM}`];
        return `{ let mm = ${mm}; let kk = ${kk}; As[kk * ${strideA} + mm] = readA(b, m0 + mm, k0 + kk, dimM, kEnd); }`;
      }).join('\n      ')}
      ${range(loadsB).map((r) => {
        const e = `(t + ${256 * r})`;
        const [nn, kk] = bNContiguous ? [`${e} % ${tileN}`, `${e} / ${tileN}`] : [`${e} / ${tk}`, `${e} % ${tk}`];
        return `{ let nn = ${nn}; let kk = ${kk}; Bs[kk * ${strideB} + nn] = readB(b, k0 + kk, n0 + nn, dimN, kEnd); }`;
      }).join('\n      ')}
      workgroupBarrier();
      for (var kk = 0; kk < ${tk}; kk = kk + 1) {
        ${range(tm).map((i) => `let a${i} = As[kk * ${strideA} + ty + ${16 * i}];`).join(' ')}
        ${range(tn).map((j) => `let b${j} = Bs[kk * ${strideB} + tx + ${16 * j}];`).join(' ')}
        ${range(tm).flatMap((i) => range(tn).map((j) => `acc${i}_${j} = fma(a${i}, b${j}, acc${i}_${j});`)).join('\n        ')}
      }
      workgroupBarrier();
    }

    ${range(tm).flatMap((i) => range(tn).map((j) => `{ let m = m0 + ty + ${16 * i}; let n = n0 + tx + ${16 * j};
      if (m < dimM && n < dimN) { result[${cIndex}] = acc${i}_${j}; } }`)).join('\n    ')}
  }
  `;
}

/** A tfjs-webgpu program (duck-typed WebGPUProgram) for one product. */
class BlockDiagProgram {
  readonly variableNames = ['A', 'B'];
  readonly uniforms = 'nb : i32, bi : i32, bo : i32, rows : i32, kChunk : i32,';
  readonly workgroupSize: [number, number, number] = [16, 16, 1];
  readonly dispatchLayout: { x: number[]; y: number[]; z?: number[] };
  readonly dispatch: [number, number, number];
  readonly shaderKey: string;
  readonly outputShape: number[];

  constructor(
    private readonly mode: Mode,
    gemm: Gemm,
    outputShape: number[],
    readonly splits: number,
    private readonly tile: BlockDiagTile,
  ) {
    this.outputShape = outputShape;
    this.dispatchLayout = outputShape.length === 2 ? { x: [1], y: [0] } : { x: [3], y: [2], z: [0, 1] };
    this.dispatch = [Math.ceil(gemm.n / (16 * tile.tn)), Math.ceil(gemm.m / (16 * tile.tm)), gemm.numBlocks * splits];
    this.shaderKey = `m2BlockDiag_${mode}_${tile.tm}_${tile.tn}_${tile.tk}_padded`;
  }

  getUserCode(): string {
    return blockDiagShader(this.mode, this.tile);
  }
}

/** The parts of tfjs-backend-webgpu's backend used here. */
interface WebGpuBackendLike {
  runWebGPUProgram(program: object, inputs: TensorInfo[], outputDtype: tf.DataType,
    uniforms?: Array<{ type: string; data: number[] }>): TensorInfo;
  disposeData(dataId: object): boolean;
}

/** Splits of the rows reduction of weightGrad, so that about 512 workgroups run. */
function weightGradSplits(gemm: Gemm, tile: BlockDiagTile): number {
  const workgroups = gemm.numBlocks * Math.ceil(gemm.m / (16 * tile.tm)) * Math.ceil(gemm.n / (16 * tile.tn));
  return Math.max(1, Math.min(Math.ceil(512 / workgroups), Math.ceil(gemm.k / 256)));
}

/** Bytes of workgroup memory the kernel of `mode` stages with `tile` (the two padded tiles of blockDiagShader). */
export function blockDiagWorkgroupBytes(mode: Mode, tile: BlockDiagTile): number {
  const strideA = mode !== 'weightGrad' ? 16 * tile.tm + 1 : 16 * tile.tm;
  const strideB = mode !== 'inputGrad' ? 16 * tile.tn : 16 * tile.tn + 1;
  return 4 * tile.tk * (strideA + strideB);
}

/** Tile staged half as deep (8 KiB of workgroup memory) for devices at WebGPU's default 16 KiB limit. */
const shallowTile: BlockDiagTile = { tm: 8, tn: 8, tk: 8 };

/**
 * Runs one product on the webgpu backend with `tile`. The default tile needs just over 16 KiB of workgroup memory
 * (WebGPU's guaranteed minimum); on a device that grants no more, the kernel stages 8 deep instead.
 */
export function runBlockDiagWebGpu(backend: object, mode: Mode, a: TensorInfo, b: TensorInfo,
  blockShape: { nb: number; bi: number; bo: number }, tile?: BlockDiagTile): TensorInfo {
  if (tile === undefined) {
    tile = blockDiagWorkgroupBytes(mode, blockDiagTile) <= workgroupStorageBytes(backend) ? blockDiagTile : shallowTile;
  }
  const gpu = backend as WebGpuBackendLike;
  const { nb, bi, bo } = blockShape;
  const rows = a.shape[0];
  const gemm = gemmOf(mode, rows, nb, bi, bo);
  const splits = mode === 'weightGrad' ? weightGradSplits(gemm, tile) : 1;
  const kChunk = Math.ceil(Math.ceil(gemm.k / splits) / tile.tk) * tile.tk;
  const outputShape = mode === 'forward' ? [rows, nb * bo] : mode === 'inputGrad' ? [rows, nb * bi] : [splits, nb, bi, bo];
  const program = new BlockDiagProgram(mode, gemm, outputShape, splits, tile);
  const uniforms = [nb, bi, bo, rows, kChunk].map((v) => ({ type: 'int32', data: [v] }));
  const out = gpu.runWebGPUProgram(program, [a, b], 'float32', uniforms);
  if (mode !== 'weightGrad') return out;
  // Sum the split partial products: [splits, nb, bi, bo] → [nb, bi, bo], with the backend's own Sum kernel.
  const sum = tf.getKernel(tf.Sum, 'webgpu');
  if (sum === undefined) throw new Error('tfjs-backend-webgpu has no Sum kernel');
  const summed = sum.kernelFunc({ inputs: { x: out }, backend: backend as tf.KernelBackend, attrs: { axis: [0], keepDims: false } }) as TensorInfo;
  gpu.disposeData(out.dataId);
  return summed;
}

/** Plain-loop version of the three products (cpu backend), the reference semantics of the kernels. */
function runBlockDiagLoops(mode: Mode, a: Float32Array, b: Float32Array, rows: number,
  nb: number, bi: number, bo: number): Float32Array {
  if (mode === 'forward') {
    const y = new Float32Array(rows * nb * bo);
    for (let r = 0; r < rows; r++) for (let k = 0; k < nb; k++) for (let i = 0; i < bi; i++) {
      const xv = a[r * nb * bi + k * bi + i];
      for (let o = 0; o < bo; o++) y[r * nb * bo + k * bo + o] += xv * b[(k * bi + i) * bo + o];
    }
    return y;
  }
  if (mode === 'inputGrad') {
    const dx = new Float32Array(rows * nb * bi);
    for (let r = 0; r < rows; r++) for (let k = 0; k < nb; k++) for (let i = 0; i < bi; i++) {
      let s = 0;
      for (let o = 0; o < bo; o++) s += a[r * nb * bo + k * bo + o] * b[(k * bi + i) * bo + o];
      dx[r * nb * bi + k * bi + i] = s;
    }
    return dx;
  }
  const dw = new Float32Array(nb * bi * bo);
  for (let r = 0; r < rows; r++) for (let k = 0; k < nb; k++) for (let i = 0; i < bi; i++) {
    const xv = a[r * nb * bi + k * bi + i];
    for (let o = 0; o < bo; o++) dw[(k * bi + i) * bo + o] += xv * b[r * nb * bo + k * bo + o];
  }
  return dw;
}

/** Attributes of the three kernels: the block shape [numBlocks, blockIn, blockOut]. */
interface BlockShapeAttrs {
  numBlocks: number;
  blockIn: number;
  blockOut: number;
}

function kernelFor(mode: Mode, backendName: 'webgpu' | 'cpu'): KernelFunc {
  return ({ inputs, backend, attrs }) => {
    const { a, b } = inputs as { a: TensorInfo; b: TensorInfo };
    const { numBlocks: nb, blockIn: bi, blockOut: bo } = attrs as unknown as BlockShapeAttrs;
    if (backendName === 'webgpu') return runBlockDiagWebGpu(backend, mode, a, b, { nb, bi, bo });
    const cpu = backend as unknown as {
      readSync(id: object): Float32Array;
      makeTensorInfo(shape: number[], dtype: tf.DataType, values: Float32Array): TensorInfo;
    };
    const rows = a.shape[0];
    const values = runBlockDiagLoops(mode, cpu.readSync(a.dataId), cpu.readSync(b.dataId), rows, nb, bi, bo);
    const shape = mode === 'forward' ? [rows, nb * bo] : mode === 'inputGrad' ? [rows, nb * bi] : [nb, bi, bo];
    return cpu.makeTensorInfo(shape, 'float32', values);
  };
}

function blockShapeAttrs(blocks: Tensor3D): tf.NamedAttrMap {
  const [numBlocks, blockIn, blockOut] = blocks.shape;
  return { numBlocks, blockIn, blockOut } satisfies BlockShapeAttrs as unknown as tf.NamedAttrMap;
}

let registered = false;

/**
 * Registers the block-diagonal kernels (webgpu: WGSL; cpu: plain loops) and their gradient, once.
 *
 * @example
 * registerBlockDiagKernels();
 * blockDiagMatmulKernel(tf.ones([8, 12]), tf.ones([4, 3, 5])).shape; // → [8, 20]
 */
export function registerBlockDiagKernels(): void {
  if (registered) return;
  registered = true;
  for (const backendName of ['webgpu', 'cpu'] as const) {
    for (const mode of Object.keys(BLOCK_DIAG_KERNELS) as Mode[]) {
      const kernelName = BLOCK_DIAG_KERNELS[mode];
      if (tf.getKernel(kernelName, backendName) === undefined) {
        tf.registerKernel({ kernelName, backendName, kernelFunc: kernelFor(mode, backendName) });
      }
    }
  }
  tf.registerGradient({
    kernelName: BLOCK_DIAG_KERNELS.forward,
    inputsToSave: ['a', 'b'],
    gradFunc: (dy, saved) => {
      const [x, w] = saved as [Tensor2D, Tensor3D];
      const attrs = blockShapeAttrs(w);
      return {
        a: () => tf.engine().runKernel(BLOCK_DIAG_KERNELS.inputGrad, { a: dy as Tensor2D, b: w }, attrs) as tf.Tensor,
        b: () => tf.engine().runKernel(BLOCK_DIAG_KERNELS.weightGrad, { a: x, b: dy as Tensor2D }, attrs) as tf.Tensor,
      };
    },
  });
}

/**
 * Block-diagonal product through the registered kernels (one WGSL dispatch on webgpu), differentiable.
 *
 * Shapes: x [rows, nb·bi] × blocks [nb, bi, bo] → [rows, nb·bo]
 * @param x - Input rows (float32, 2-D).
 * @param blocks - The diagonal blocks (float32).
 * @returns x times the block-diagonal matrix.
 * @throws ShapeError if the shapes do not fit.
 * @example
 * blockDiagMatmulKernel(tf.ones([2, 8]), tf.ones([4, 2, 3])).shape; // → [2, 12]
 */
export function blockDiagMatmulKernel(x: Tensor2D, blocks: Tensor3D): Tensor2D {
  if (x.rank !== 2 || blocks.rank !== 3 || x.shape[1] !== blocks.shape[0] * blocks.shape[1]) {
    throw new ShapeError(`blockDiagMatmulKernel: x must be [rows, ${blocks.shape[0]}·${blocks.shape[1]}] for blocks [${blocks.shape.join(', ')}], got x [${x.shape.join(', ')}]`, { parameter: 'x', value: x.shape });
  }
  registerBlockDiagKernels();
  return tf.engine().runKernel(BLOCK_DIAG_KERNELS.forward, { a: x, b: blocks }, blockShapeAttrs(blocks)) as Tensor2D;
}
