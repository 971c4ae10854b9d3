// Copy kernels for the wasm backend that touch only the bytes they return. tfjs-backend-wasm 4.22.0's Slice (and
// SplitV and Unpack, built on it) first reads its WHOLE input out of the wasm heap with readSync, a fresh copy, so
// slicing one row of the [30528, 768] word-embedding table or one block of a weight costs as much as copying the
// whole tensor (toolchain.md §6). These versions copy from a view on the heap straight into the output.
import * as tf from '@tensorflow/tfjs-core';
import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';

type HeapArray = Float32Array | Int32Array | Uint8Array;

/** The part of tfjs-backend-wasm's BackendWasm these kernels use. */
interface WasmBackendLike {
  makeOutput(shape: number[], dtype: tf.DataType): TensorInfo;
  typedArrayFromHeap(t: TensorInfo): HeapArray;
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

/** The replacement kernels, by name. */
export const wasmViewKernels: Record<string, KernelFunc> = { [tf.Slice]: slice, [tf.SplitV]: splitV, [tf.Unpack]: unpack };

/**
 * Replaces the wasm backend's Slice, SplitV and Unpack with versions that copy only the output's bytes (same
 * results, gradients unchanged: they are registered per kernel name). Call after the wasm backend is registered.
 * Idempotent.
 *
 * @returns The kernel names replaced by this call ([] if already done or the wasm backend is absent).
 * @example
 * registerWasmViewKernels(); // → ['Slice', 'SplitV', 'Unpack'] the first time
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
