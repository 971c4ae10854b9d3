// Kernels that training needs but tfjs-backend-wasm 4.22.0 lacks (toolchain.md §2), written in JavaScript over
// the backend's memory: read the inputs with readSync, compute, hand the result to makeOutput.
import * as tf from '@tensorflow/tfjs-core';
import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';

/** The part of tfjs-backend-wasm's BackendWasm these kernels use. */
interface WasmBackendLike {
  readSync(dataId: object): tf.backend_util.BackendValues;
  makeOutput(shape: number[], dtype: tf.DataType, memoryOffset?: number, values?: tf.backend_util.BackendValues): TensorInfo;
}

/**
 * UnsortedSegmentSum: out[s, …] = Σ over i with segmentIds[i] = s of x[i, …]. Ids outside [0, numSegments) are
 * dropped, as in TensorFlow. It is what `tf.grad` through `tf.gather` (embedding lookups) calls.
 *
 * Shapes: x [...idShape, ...inner], segmentIds idShape (int32) → [numSegments, ...inner]
 */
const unsortedSegmentSum: KernelFunc = ({ inputs, backend, attrs }) => {
  const { x, segmentIds } = inputs as { x: TensorInfo; segmentIds: TensorInfo };
  const { numSegments } = attrs as unknown as { numSegments: number };
  const wasm = backend as unknown as WasmBackendLike;
  const innerShape = x.shape.slice(segmentIds.shape.length);
  const inner = tf.util.sizeFromShape(innerShape);
  const ids = wasm.readSync(segmentIds.dataId) as Int32Array;
  const values = wasm.readSync(x.dataId) as Float32Array | Int32Array;
  const out = x.dtype === 'int32' ? new Int32Array(numSegments * inner) : new Float32Array(numSegments * inner);
  for (let i = 0; i < ids.length; i++) {
    const segment = ids[i];
    if (segment < 0 || segment >= numSegments) continue;
    const from = i * inner;
    const to = segment * inner;
    for (let j = 0; j < inner; j++) out[to + j] += values[from + j];
  }
  return wasm.makeOutput([numSegments, ...innerShape], x.dtype, undefined, out);
};

/** Kernel configs monarch-core adds to the `wasm` backend. */
export const wasmTrainingKernels: readonly KernelConfig[] = [
  { kernelName: tf.UnsortedSegmentSum, backendName: 'wasm', kernelFunc: unsortedSegmentSum },
];

/**
 * Registers {@link wasmTrainingKernels} for the `wasm` backend, skipping any that exist already.
 *
 * @returns The names of the kernels this call registered.
 * @example
 * registerWasmTrainingKernels(); // → ['UnsortedSegmentSum'] the first time, [] afterwards
 */
export function registerWasmTrainingKernels(): string[] {
  const added: string[] = [];
  for (const config of wasmTrainingKernels) {
    if (tf.getKernel(config.kernelName, config.backendName) !== undefined) continue;
    tf.registerKernel(config);
    added.push(config.kernelName);
  }
  return added;
}
