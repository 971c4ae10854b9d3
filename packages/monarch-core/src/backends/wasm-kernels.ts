// Kernels that training needs but tfjs-backend-wasm 4.22.0 lacks (toolchain.md §2), written in JavaScript over
// the backend's memory: read the inputs with readSync, compute, hand the result to makeOutput. They are plain
// loops (about 0.3–1 GFLOP/s): right for embeddings and short convolutions, not for large convolutions.
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

/** Convolution geometry from tfjs's own helper (NHWC), for the filter/input gradients below. */
function convGeometry(xShape: number[], attrs: Record<string, unknown>, depthwise: boolean) {
  const { strides, dilations = 1, pad, dimRoundingMode, filterShape, dataFormat = 'NHWC' } = attrs as {
    strides: [number, number] | number; dilations?: [number, number] | number; pad: 'valid' | 'same' | number;
    dimRoundingMode?: 'floor' | 'round' | 'ceil'; filterShape: [number, number, number, number]; dataFormat?: string;
  };
  if (dataFormat !== 'NHWC') throw new Error(`monarch-core's wasm convolution gradients support NHWC only, got ${dataFormat}`);
  const info = tf.backend_util.computeConv2DInfo(xShape as [number, number, number, number], filterShape, strides, dilations,
    pad, dimRoundingMode, depthwise);
  if (info.dilationHeight !== 1 || info.dilationWidth !== 1) throw new Error('convolution gradients need dilation 1');
  return info;
}

/**
 * Filter gradient of conv2d (also what conv1d's filter gradient calls), NHWC:
 * dW[r, c, i, o] = Σ_{b, y, x} X[b, y·sh − top + r, x·sw − left + c, i] · dy[b, y, x, o] (zero outside X).
 *
 * Shapes: x [B, H, W, Ci], dy [B, OH, OW, Co] → [FH, FW, Ci, Co]
 */
const conv2DBackpropFilter: KernelFunc = ({ inputs, backend, attrs }) => {
  const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo };
  const wasm = backend as unknown as WasmBackendLike;
  const g = convGeometry(x.shape, attrs as Record<string, unknown>, false);
  const xv = wasm.readSync(x.dataId) as Float32Array;
  const dyv = wasm.readSync(dy.dataId) as Float32Array;
  const { batchSize, inHeight, inWidth, inChannels: ci, outHeight, outWidth, outChannels: co, filterHeight, filterWidth } = g;
  const dw = new Float32Array(filterHeight * filterWidth * ci * co);
  for (let b = 0; b < batchSize; b++) for (let y = 0; y < outHeight; y++) for (let xo = 0; xo < outWidth; xo++) {
    const dyBase = ((b * outHeight + y) * outWidth + xo) * co;
    for (let r = 0; r < filterHeight; r++) {
      const xr = y * g.strideHeight - g.padInfo.top + r;
      if (xr < 0 || xr >= inHeight) continue;
      for (let c = 0; c < filterWidth; c++) {
        const xc = xo * g.strideWidth - g.padInfo.left + c;
        if (xc < 0 || xc >= inWidth) continue;
        const xBase = ((b * inHeight + xr) * inWidth + xc) * ci;
        const wBase = (r * filterWidth + c) * ci * co;
        for (let i = 0; i < ci; i++) {
          const xvi = xv[xBase + i];
          if (xvi === 0) continue;
          const w = wBase + i * co;
          for (let o = 0; o < co; o++) dw[w + o] += xvi * dyv[dyBase + o];
        }
      }
    }
  }
  return wasm.makeOutput([filterHeight, filterWidth, ci, co], 'float32', undefined, dw);
};

/**
 * Filter and input gradients of depthwiseConv2d, NHWC, channel multiplier m (output channel d·m + q):
 * dW[r, c, d, q] = Σ X[b, y·sh − top + r, x·sw − left + c, d] · dy[b, y, x, d·m + q];
 * dX[b, y·sh − top + r, x·sw − left + c, d] += Σ_q W[r, c, d, q] · dy[b, y, x, d·m + q].
 */
function depthwiseGrad(which: 'filter' | 'input'): KernelFunc {
  return ({ inputs, backend, attrs }) => {
    const wasm = backend as unknown as WasmBackendLike;
    const { dy } = inputs as { dy: TensorInfo };
    const xShape = which === 'filter' ? (inputs as { x: TensorInfo }).x.shape : (attrs as { inputShape: number[] }).inputShape;
    const filterShape = which === 'filter' ? (attrs as { filterShape: number[] }).filterShape : (inputs as { filter: TensorInfo }).filter.shape;
    const g = convGeometry(xShape, { ...attrs, filterShape }, true);
    const other = wasm.readSync((which === 'filter' ? (inputs as { x: TensorInfo }).x : (inputs as { filter: TensorInfo }).filter).dataId) as Float32Array;
    const dyv = wasm.readSync(dy.dataId) as Float32Array;
    const { batchSize, inHeight, inWidth, inChannels: ci, outHeight, outWidth, outChannels: co, filterHeight, filterWidth } = g;
    const m = co / ci;
    const out = new Float32Array(which === 'filter' ? filterHeight * filterWidth * co : batchSize * inHeight * inWidth * ci);
    for (let b = 0; b < batchSize; b++) for (let y = 0; y < outHeight; y++) for (let xo = 0; xo < outWidth; xo++) {
      const dyBase = ((b * outHeight + y) * outWidth + xo) * co;
      for (let r = 0; r < filterHeight; r++) {
        const xr = y * g.strideHeight - g.padInfo.top + r;
        if (xr < 0 || xr >= inHeight) continue;
        for (let c = 0; c < filterWidth; c++) {
          const xc = xo * g.strideWidth - g.padInfo.left + c;
          if (xc < 0 || xc >= inWidth) continue;
          const xBase = ((b * inHeight + xr) * inWidth + xc) * ci;
          const wBase = (r * filterWidth + c) * co; // W [FH, FW, Ci, m] flattened: (r, c, d, q) → wBase + d·m + q
          for (let d = 0; d < ci; d++) for (let q = 0; q < m; q++) {
            const k = d * m + q;
            if (which === 'filter') out[wBase + k] += other[xBase + d] * dyv[dyBase + k];
            else out[xBase + d] += other[wBase + k] * dyv[dyBase + k];
          }
        }
      }
    }
    const shape = which === 'filter' ? filterShape : xShape;
    return wasm.makeOutput(shape, 'float32', undefined, out);
  };
}

/** Kernel configs monarch-core adds to the `wasm` backend. */
export const wasmTrainingKernels: readonly KernelConfig[] = [
  { kernelName: tf.UnsortedSegmentSum, backendName: 'wasm', kernelFunc: unsortedSegmentSum },
  { kernelName: tf.Conv2DBackpropFilter, backendName: 'wasm', kernelFunc: conv2DBackpropFilter },
  { kernelName: tf.DepthwiseConv2dNativeBackpropFilter, backendName: 'wasm', kernelFunc: depthwiseGrad('filter') },
  { kernelName: tf.DepthwiseConv2dNativeBackpropInput, backendName: 'wasm', kernelFunc: depthwiseGrad('input') },
];

/**
 * Registers {@link wasmTrainingKernels} for the `wasm` backend, skipping any that exist already.
 *
 * @returns The names of the kernels this call registered.
 * @example
 * registerWasmTrainingKernels(); // → ['UnsortedSegmentSum', 'Conv2DBackpropFilter', …] the first time, [] afterwards
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
