// The webgpu device's limits as the fused kernels read them (one place for the lookups and WebGPU's defaults).
import * as tf from '@tensorflow/tfjs-core';
import { BackendError } from '../errors.js';

/** WebGPU's guaranteed workgroup memory per workgroup (`maxComputeWorkgroupStorageSize` of every device). */
export const DEFAULT_WORKGROUP_STORAGE_BYTES = 16384;

/**
 * The device limits of a tfjs-backend-webgpu backend (tfjs keeps its GPUDevice as `device`).
 *
 * @param backend - The backend; default the active one.
 * @returns The limits, or undefined when the backend has no device (not webgpu).
 * @example
 * webGpuLimits()?.maxStorageBufferBindingSize; // → 2147483648 on an H200 (undefined on cpu)
 */
export function webGpuLimits(backend: object = tf.backend()): GPUSupportedLimits | undefined {
  return (backend as { device?: GPUDevice }).device?.limits;
}

/**
 * Bytes of workgroup memory one workgroup may use on the device (WebGPU's 16 KiB when unknown).
 *
 * @param backend - The backend; default the active one.
 * @returns `maxComputeWorkgroupStorageSize`, or 16384.
 * @example
 * workgroupStorageBytes(); // → 32768 on SwiftShader and an H200
 */
export function workgroupStorageBytes(backend: object = tf.backend()): number {
  return webGpuLimits(backend)?.maxComputeWorkgroupStorageSize ?? DEFAULT_WORKGROUP_STORAGE_BYTES;
}

/**
 * Throws a one-line BackendError when a float32 tensor of `shape` would not fit one storage binding of the active
 * webgpu device (`maxStorageBufferBindingSize`, 2 GiB on most devices): tfjs-webgpu would allocate it, but every
 * kernel that binds it fails asynchronously and leaves garbage. Does nothing on other backends.
 *
 * @param op - Who asks, for the message (`M2Bert`).
 * @param what - The tensor, for the message (`MLM logits`).
 * @param shape - Its shape.
 * @param hint - What to do instead, appended to the message.
 * @throws BackendError when it does not fit.
 * @example
 * checkWebGpuBinding('M2Bert', 'MLM logits', [32768, 30528], 'pass labels with outputLogits: false'); // throws on webgpu
 */
export function checkWebGpuBinding(op: string, what: string, shape: readonly number[], hint = ''): void {
  if (tf.getBackend() !== 'webgpu') return;
  const limit = webGpuLimits()?.maxStorageBufferBindingSize;
  const bytes = 4 * shape.reduce((a, b) => a * b, 1);
  if (limit === undefined || bytes <= limit) return;
  throw new BackendError(
    `${op}: the [${shape.join(', ')}] ${what} (${(bytes / 2 ** 30).toFixed(2)} GiB) exceed this webgpu device's storage-binding limit of ${(limit / 2 ** 30).toFixed(2)} GiB${hint ? `; ${hint}` : ''}.`,
    { parameter: what, value: shape },
  );
}
