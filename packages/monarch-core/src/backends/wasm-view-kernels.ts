// Copy kernels for the wasm backend that touch only the bytes they return. tfjs-backend-wasm 4.22.0's Slice (and
// SplitV and Unpack, built on it) first reads its WHOLE input out of the wasm heap with readSync, a fresh copy, so
// slicing one row of the [30528, 768] word-embedding table or one block of a weight costs as much as copying the
// whole tensor (toolchain.md §6). These versions copy from a view on the heap straight into the output. GatherV2
// (embedding lookups: 70 ms for 2048 rows of the word table) and Transpose when the last axis moves (the
// channel-first [B, L, d] ↔ [B, d, L] of the long convolution: ~15 ms per [2048, 768]) are also element-by-element
// slow in tfjs-backend-wasm; their replacements copy whole rows (gather) or walk cache-sized tiles (transpose).
import * as tf from '@tensorflow/tfjs-core';
import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { PARALLEL_KERNELS, runParallel } from './wasm-parallel.js';
import { BackendError } from '../errors.js';
import { HeapFull } from './wasm-heap-guard.js';

type HeapArray = Float32Array | Int32Array | Uint8Array;

/** The part of tfjs-backend-wasm's BackendWasm these kernels use. */
interface WasmBackendLike {
  makeOutput(shape: number[], dtype: tf.DataType): TensorInfo;
  typedArrayFromHeap(t: TensorInfo): HeapArray;
  disposeData?(dataId: object): boolean;
  /** The emscripten module (its allocator and heap). */
  wasm?: { _malloc(bytes: number): number; _free(pointer: number): void };
}

/**
 * Copies the box [begin, begin + size) of x (row-major, shape `shape`) into out. Trailing axes taken whole merge
 * into one contiguous run, so a slice of whole rows is a single `set`.
 */
function copyBox(x: HeapArray, shape: number[], begin: number[], size: number[], out: HeapArray): void {
  const rank = shape.length;
  if (rank === 0) {
    out[0] = x[0];
    return;
  }
  const strides = tf.util.computeStrides(shape); // rank − 1 entries
  const stride = (axis: number) => (axis === rank - 1 ? 1 : strides[axis]);
  // Innermost contiguous run: the last axis, extended left while the axes to its right are taken whole.
  let inner = rank - 1;
  let run = size[rank - 1];
  while (inner > 0 && size[inner] === shape[inner]) {
    inner--;
    run *= size[inner];
  }
  let offset = 0;
  for (let axis = 0; axis < rank; axis++) offset += begin[axis] * stride(axis);
  if (inner === 0) {
    out.set(x.subarray(offset, offset + run));
    return;
  }
  // Odometer over the outer axes [0, inner).
  const index = new Array<number>(inner).fill(0);
  let outOffset = 0;
  const total = out.length;
  while (outOffset < total) {
    out.set(x.subarray(offset, offset + run), outOffset);
    outOffset += run;
    for (let axis = inner - 1; axis >= 0; axis--) {
      index[axis]++;
      offset += stride(axis);
      if (index[axis] < size[axis]) break;
      offset -= index[axis] * stride(axis);
      index[axis] = 0;
    }
  }
}

/** Allocates every output first (allocation may grow the heap), then copies each box through fresh heap views. */
function sliceMany(backend: WasmBackendLike, x: TensorInfo, boxes: Array<{ begin: number[]; size: number[]; outShape: number[] }>): TensorInfo[] {
  const outs = boxes.map((b) => backend.makeOutput(b.outShape, x.dtype));
  const xValues = backend.typedArrayFromHeap(x);
  boxes.forEach((b, i) => {
    if (tf.util.sizeFromShape(b.size) > 0) copyBox(xValues, x.shape, b.begin, b.size, backend.typedArrayFromHeap({ ...outs[i]!, shape: b.outShape }));
  });
  return outs;
}

const originals = new Map<string, KernelFunc>();

/** Runs tfjs's own kernel (strings are not stored in the wasm heap). */
function original(name: string, args: Parameters<KernelFunc>[0]): ReturnType<KernelFunc> {
  return originals.get(name)!(args);
}

const slice: KernelFunc = (args) => {
  const { inputs, attrs, backend } = args;
  const x = inputs['x'] as TensorInfo;
  if (x.dtype === 'string') return original(tf.Slice, args);
  const { begin, size } = attrs as unknown as { begin: number | number[]; size: number | number[] };
  const [begin_, size_] = tf.slice_util.parseSliceParams(x as tf.Tensor, begin, size);
  tf.slice_util.assertParamsValid(x as tf.Tensor, begin_, size_);
  return sliceMany(backend as unknown as WasmBackendLike, x, [{ begin: begin_, size: size_, outShape: size_ }])[0]!;
};

const splitV: KernelFunc = (args) => {
  const { inputs, attrs, backend } = args;
  const x = inputs['x'] as TensorInfo;
  if (x.dtype === 'string') return original(tf.SplitV, args);
  const { numOrSizeSplits, axis } = attrs as unknown as { numOrSizeSplits: number | number[]; axis: number };
  const $axis = tf.util.parseAxisParam(axis, x.shape)[0]!;
  const sizes = tf.backend_util.prepareSplitSize(x as tf.Tensor, numOrSizeSplits, $axis);
  let start = 0;
  const boxes = sizes.map((s) => {
    const begin = x.shape.map(() => 0);
    begin[$axis] = start;
    start += s;
    const size = [...x.shape];
    size[$axis] = s;
    return { begin, size, outShape: size };
  });
  return sliceMany(backend as unknown as WasmBackendLike, x, boxes);
};

const unpack: KernelFunc = (args) => {
  const { inputs, attrs, backend } = args;
  const value = inputs['value'] as TensorInfo;
  if (value.dtype === 'string') return original(tf.Unpack, args);
  let { axis } = attrs as unknown as { axis: number };
  if (axis < 0) axis += value.shape.length;
  const outShape = value.shape.filter((_, i) => i !== axis);
  const boxes = Array.from({ length: value.shape[axis]! }, (_, i) => {
    const begin = value.shape.map(() => 0);
    begin[axis] = i;
    const size = [...value.shape];
    size[axis] = 1;
    return { begin, size, outShape };
  });
  return sliceMany(backend as unknown as WasmBackendLike, value, boxes);
};

/**
 * GatherV2 with batchDims 0: out[o, i…, j] = x[o, indices[i…], j] (o = axes before `axis`, j = axes after it), one
 * contiguous row copy per index. Throws on an index outside [0, x.shape[axis]) like tfjs's cpu kernel.
 */
const gatherV2: KernelFunc = (args) => {
  const { inputs, attrs, backend } = args;
  const x = inputs['x'] as TensorInfo;
  const indices = inputs['indices'] as TensorInfo;
  const { axis, batchDims = 0 } = attrs as unknown as { axis: number; batchDims?: number };
  if (x.dtype === 'string' || batchDims !== 0 || indices.dtype !== 'int32') return original(tf.GatherV2, args);
  const wasm = backend as unknown as WasmBackendLike;
  const $axis = tf.util.parseAxisParam(axis, x.shape)[0]!;
  const outer = tf.util.sizeFromShape(x.shape.slice(0, $axis));
  const axisSize = x.shape[$axis]!;
  const inner = tf.util.sizeFromShape(x.shape.slice($axis + 1));
  const count = tf.util.sizeFromShape(indices.shape);
  const outShape = [...x.shape.slice(0, $axis), ...indices.shape, ...x.shape.slice($axis + 1)];
  const out = wasm.makeOutput(outShape, x.dtype);
  const ids = wasm.typedArrayFromHeap(indices);
  for (let i = 0; i < count; i++) {
    const id = ids[i]!;
    if (!(id >= 0 && id < axisSize)) {
      wasm.disposeData?.(out.dataId);
      throw new Error(`GatherV2: the index value ${id} is not in [0, ${axisSize - 1}]`);
    }
  }
  const xValues = wasm.typedArrayFromHeap(x); // views taken after makeOutput (allocation may grow the heap)
  const outValues = wasm.typedArrayFromHeap({ ...out, shape: outShape });
  const idValues = wasm.typedArrayFromHeap(indices);
  for (let o = 0; o < outer; o++) {
    const from = o * axisSize * inner;
    const to = o * count * inner;
    for (let i = 0; i < count; i++) {
      const start = from + idValues[i]! * inner;
      outValues.set(xValues.subarray(start, start + inner), to + i * inner);
    }
  }
  return out;
};

/** Transpose tile edge (elements): a 32 × 32 float tile is 4 KiB, so both its rows and columns stay in L1. */
const TILE = 32;

/** Minimum tile sides for the tiled transpose (tfjs's XNNPACK transpose is faster on smaller tiles). */
const MIN_SIDE = 32;

/**
 * Whether the tiled transpose runs: the last axis moves, and both x's last axis (read contiguously) and the axis that
 * becomes the output's last (written contiguously) have ≥ MIN_SIDE entries.
 */
function isTiledTranspose(shape: number[], perm: number[]): boolean {
  const last = shape.length - 1;
  return last >= 1 && perm[last] !== last && shape[last]! >= MIN_SIDE && shape[perm[last]!]! >= MIN_SIDE;
}

/**
 * Transpose where the last axis moves between two large axes (isTiledTranspose; tfjs's own kernel runs the other
 * permutations). The output's last axis and the axis that reads x contiguously (x's last) are walked in TILE × TILE
 * tiles, the other axes by an odometer.
 */
const transpose: KernelFunc = (args) => {
  const { inputs, attrs, backend } = args;
  const x = inputs['x'] as TensorInfo;
  const { perm } = attrs as unknown as { perm: number[] };
  // float32 only, so that the copy loop stays monomorphic (V8 slows down a loop that has seen several array types).
  if (x.dtype !== 'float32' || !isTiledTranspose(x.shape, perm)) return original(tf.Transpose, args);
  const wasm = backend as unknown as WasmBackendLike;
  const rank = x.shape.length;
  const outShape = perm.map((p) => x.shape[p]!);
  const out = wasm.makeOutput(outShape, x.dtype);
  const inStrides = [...tf.util.computeStrides(x.shape), 1];
  const outStrides = [...tf.util.computeStrides(outShape), 1];
  const last = rank - 1;
  const q = perm.indexOf(last); // the output axis that reads x contiguously
  // Start offsets (in x and out) of every [rows, cols] plane: an odometer over the other output axes.
  const others = outShape.map((_, a) => a).filter((a) => a !== q && a !== last);
  const planes = others.reduce((n, a) => n * outShape[a]!, 1);
  const inBases = new Int32Array(planes);
  const outBases = new Int32Array(planes);
  const index = new Array<number>(others.length).fill(0);
  for (let plane = 0, inBase = 0, outBase = 0; plane < planes; plane++) {
    inBases[plane] = inBase;
    outBases[plane] = outBase;
    for (let k = others.length - 1; k >= 0; k--) {
      const a = others[k]!;
      index[k]!++;
      inBase += inStrides[perm[a]!]!;
      outBase += outStrides[a]!;
      if (index[k]! < outShape[a]!) break;
      inBase -= index[k]! * inStrides[perm[a]!]!;
      outBase -= index[k]! * outStrides[a]!;
      index[k] = 0;
    }
  }
  const rows = outShape[q]!;
  const rowTiles = Math.ceil(rows / TILE);
  const bases: number[] = [];
  for (let plane = 0; plane < planes; plane++) bases.push(inBases[plane]!, outBases[plane]!);
  // Units = (plane, tile of rows), split over the helper threads (wasm-parallel.ts); same loop as transposePlanes.
  // The bases also go into the heap for the WebAssembly loop (a scratch block of the module's own allocator). Every
  // heap view is taken after that allocation: growing an unshared heap detaches the views taken before it.
  const module = wasm.wasm;
  let basesPtr = 0;
  try {
    basesPtr = module === undefined ? 0 : module._malloc(bases.length * 4); // unsigned through the heap guard
  } catch (error) {
    if (!(error instanceof HeapFull)) throw error;
    throw new BackendError(`wasm backend out of memory: no room for Transpose's ${bases.length * 4}-byte scratch block of [${x.shape.join(', ')}]; the wasm heap is a 32-bit address space of at most 4 GiB. Use shorter sequences or smaller batches, or the webgpu/tensorflow backend.`, { parameter: 'shape', value: x.shape });
  }
  try {
    const src = wasm.typedArrayFromHeap(x) as Float32Array;
    const dst = wasm.typedArrayFromHeap({ ...out, shape: outShape }) as Float32Array;
    if (basesPtr !== 0) new Int32Array(src.buffer, basesPtr, bases.length).set(bases);
    const loopArgs = [src.byteOffset / 4, dst.byteOffset / 4, rows, outShape[last]!, outStrides[q]!, inStrides[perm[last]!]!, TILE, rowTiles, basesPtr, ...bases];
    runParallel(PARALLEL_KERNELS.transpose, loopArgs, planes * rowTiles, new Float32Array(src.buffer, 0, src.buffer.byteLength / 4), src.length);
  } finally {
    if (basesPtr !== 0) module!._free(basesPtr);
  }
  return out;
};

/** The replacement kernels, by name. */
export const wasmViewKernels: Record<string, KernelFunc> = {
  [tf.Slice]: slice,
  [tf.SplitV]: splitV,
  [tf.Unpack]: unpack,
  [tf.GatherV2]: gatherV2,
  [tf.Transpose]: transpose,
};

/**
 * Replaces the wasm backend's Slice, SplitV and Unpack with versions that copy only the output's bytes, and GatherV2
 * and Transpose with faster copies (same results, gradients unchanged: they are registered per kernel name). Call after the wasm backend is registered.
 * Idempotent.
 *
 * @returns The kernel names replaced by this call ([] if already done or the wasm backend is absent).
 * @example
 * registerWasmViewKernels(); // → ['Slice', 'SplitV', 'Unpack', 'GatherV2', 'Transpose'] the first time
 */
export function registerWasmViewKernels(): string[] {
  const replaced: string[] = [];
  for (const [name, kernelFunc] of Object.entries(wasmViewKernels)) {
    const current = tf.getKernel(name, 'wasm');
    if (current === undefined || current.kernelFunc === kernelFunc) continue;
    originals.set(name, current.kernelFunc);
    tf.unregisterKernel(name, 'wasm');
    tf.registerKernel({ kernelName: name, backendName: 'wasm', kernelFunc } satisfies KernelConfig);
    replaced.push(name);
  }
  return replaced;
}
