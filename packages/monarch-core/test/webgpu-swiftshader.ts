// Test-only: the webgpu backend on this machine's CPU through SwiftShader's Vulkan driver (Debian's chromium
// package ships it in /usr/lib/chromium; the Vulkan loader is libvulkan1). WGSL kernels then really execute, so
// their results can be compared with the cpu backend and float64 references. Slow: test small shapes.
import { existsSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { describe } from 'vitest';
import { setupBackend } from '../src/backends/setup-backend.js';

/** SwiftShader's Vulkan ICD as the chromium package installs it. */
export const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';

/** Whether webgpu runs here, and why not. */
export type WebGpuAvailability = { available: true; adapter: string } | { available: false; reason: string };

let availability: Promise<WebGpuAvailability> | undefined;

/**
 * Sets up the webgpu backend on SwiftShader (unless VK_DRIVER_FILES already names a driver), once per test file,
 * and leaves the cpu backend active: tests switch with `tf.setBackend('webgpu')` / `tf.setBackend('cpu')`.
 *
 * @returns `{ available, adapter }` or `{ available: false, reason }` (one line).
 */
export function swiftShaderWebGpu(): Promise<WebGpuAvailability> {
  availability ??= (async (): Promise<WebGpuAvailability> => {
    if (process.env.VK_DRIVER_FILES === undefined && process.env.VK_ICD_FILENAMES === undefined) {
      if (!existsSync(SWIFTSHADER_ICD)) return { available: false, reason: `no SwiftShader Vulkan driver at ${SWIFTSHADER_ICD} (install chromium and libvulkan1: tooling/system-deps.sh)` };
      process.env.VK_DRIVER_FILES = SWIFTSHADER_ICD;
    }
    const previous = tf.getBackend();
    try {
      const info = await setupBackend('webgpu');
      return { available: true, adapter: info.description };
    } catch (error) {
      return { available: false, reason: (error instanceof Error ? error.message : String(error)).split('\n')[0]! };
    } finally {
      await tf.setBackend(previous);
    }
  })();
  return availability;
}

/**
 * A webgpu test suite: `describe` where webgpu runs, else skipped with the reason in its name (so that the test
 * report says why).
 *
 * @param gpu - From {@link swiftShaderWebGpu}.
 * @param title - The suite's name.
 * @param body - The suite.
 */
export function describeWebGpu(gpu: WebGpuAvailability, title: string, body: () => void): void {
  describe.skipIf(!gpu.available)(`${title}${gpu.available ? '' : ` (SKIPPED: ${gpu.reason})`}`, body);
}

/**
 * Sets environment switches (undefined: unset) and returns the function that restores their previous values; call
 * it in a `finally` or an `afterAll`.
 *
 * @param vars - Switches to set, e.g. `{ M2_MIXER_CHANNEL_FIRST: '1' }`.
 * @returns The restore function.
 */
export function overrideEnv(vars: Record<string, string | undefined>): () => void {
  const set = (values: Record<string, string | undefined>) => {
    for (const [name, value] of Object.entries(values)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  };
  const previous = Object.fromEntries(Object.keys(vars).map((name) => [name, process.env[name]]));
  set(vars);
  return () => set(previous);
}

/** Reads a tensor (any backend, asynchronously: webgpu in Node has no synchronous read) as shape + float32 data. */
export async function readTensor(t: tf.Tensor): Promise<{ shape: number[]; data: Float32Array }> {
  return { shape: t.shape, data: (await t.data()) as Float32Array };
}

/**
 * Counts the WGSL programs the webgpu backend dispatches while `f` runs (tfjs-backend-webgpu's runWebGPUProgram),
 * by kernel program name.
 *
 * @returns The result of f and the dispatch counts.
 */
export function countDispatches<T>(f: () => T): { result: T; total: number; byProgram: Map<string, number> } {
  const backend = tf.findBackend('webgpu') as unknown as { runWebGPUProgram: (program: object, ...rest: unknown[]) => unknown };
  const original = backend.runWebGPUProgram;
  const byProgram = new Map<string, number>();
  let total = 0;
  backend.runWebGPUProgram = function (this: unknown, program: object, ...rest: unknown[]) {
    total++;
    const name = program.constructor.name;
    byProgram.set(name, (byProgram.get(name) ?? 0) + 1);
    return original.call(this, program, ...rest);
  };
  try {
    return { result: f(), total, byProgram };
  } finally {
    backend.runWebGPUProgram = original;
  }
}
