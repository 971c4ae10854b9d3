// Kernels of the pure-JavaScript cpu backend that tfjs-backend-cpu runs far slower than they need to.
//
// UnsortedSegmentSum is the gradient of tf.gather (embedding lookups, M2-BERT's labelled-row gather): tfjs's kernel
// runs equal → cast → multiply → sum over the whole input once per segment, O(segments × rows × width). With the
// 30 522-row word embedding and a [2048, 768] gradient that is ~30 000 full passes: a training step's backward pass
// spent most of its time there. Here: one pass over the rows, O(rows × width).
import * as tf from '@tensorflow/tfjs-core';
import type { KernelConfig, NamedAttrMap, NamedTensorInfoMap, TensorInfo, TypedArray } from '@tensorflow/tfjs-core';

interface CpuBackendLike {
  readSync(dataId: unknown): TypedArray;
  makeTensorInfo(shape: number[], dtype: tf.DataType, values: TypedArray): TensorInfo;
}

/** UnsortedSegmentSum in one pass: out[s] = Σ_{r: ids[r] = s} x[r] (ids outside [0, numSegments) are skipped). */
function unsortedSegmentSum({ inputs, backend, attrs }: { inputs: NamedTensorInfoMap; backend: unknown; attrs?: NamedAttrMap }): TensorInfo {
  const { x, segmentIds } = inputs as { x: TensorInfo; segmentIds: TensorInfo };
  const numSegments = (attrs as { numSegments: number }).numSegments;
  const cpu = backend as CpuBackendLike;
  const values = cpu.readSync(x.dataId);
  const ids = cpu.readSync(segmentIds.dataId);
  const rows = ids.length;
  const width = rows === 0 ? 0 : values.length / rows; // x is [...segmentIds.shape, ...inner]
  const inner = x.shape.slice(segmentIds.shape.length);
  const out = new Float32Array(numSegments * width); // float32 for int32 x too, as tfjs-backend-cpu's kernel
  for (let r = 0; r < rows; r++) {
    const s = ids[r]!;
    if (s < 0 || s >= numSegments) continue;
    const src = r * width;
    const dst = s * width;
    for (let j = 0; j < width; j++) out[dst + j]! += values[src + j]!;
  }
  return cpu.makeTensorInfo([numSegments, ...inner], 'float32', out);
}

const FAST_CPU_KERNELS: KernelConfig[] = [{ kernelName: tf.UnsortedSegmentSum, backendName: 'cpu', kernelFunc: unsortedSegmentSum as unknown as KernelConfig['kernelFunc'] }];

/**
 * Replaces tfjs-backend-cpu kernels that are orders of magnitude slower than a plain loop (UnsortedSegmentSum, the
 * gradient of tf.gather). Same results. Idempotent; `setupBackend('cpu')` calls it.
 *
 * @returns Whether anything was (re)registered.
 */
export function registerCpuKernels(): boolean {
  let changed = false;
  for (const config of FAST_CPU_KERNELS) {
    const existing = tf.getKernel(config.kernelName, 'cpu');
    if (existing?.kernelFunc === config.kernelFunc) continue;
    if (existing) tf.unregisterKernel(config.kernelName, 'cpu');
    tf.registerKernel(config);
    changed = true;
  }
  return changed;
}
