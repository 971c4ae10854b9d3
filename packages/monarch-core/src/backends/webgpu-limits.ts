// The webgpu device's limits as the fused kernels read them (one place for the lookups and WebGPU's defaults).
import * as tf from '@tensorflow/tfjs-core';

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
