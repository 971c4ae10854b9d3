// GPU memory of the webgpu backend: tfjs-backend-webgpu keeps every buffer it ever allocated in a pool and never
// gives one back, and WebGPU reports out-of-memory and validation errors asynchronously instead of throwing (a
// failed allocation leaves an invalid buffer, and every command that uses it is dropped: silent garbage). These
// helpers let a long-running program (bench, training at several lengths) free the pool and notice such errors.
import * as tf from '@tensorflow/tfjs-core';

interface BufferPool {
  freeBuffers?: Map<string, GPUBuffer[]>;
  numFreeBuffers: number;
  numBytesAllocated: number;
}

function bufferPool(): BufferPool | undefined {
  return (tf.backend() as unknown as { bufferManager?: BufferPool }).bufferManager;
}

/**
 * Bytes of GPU memory the active webgpu backend holds (in use plus pooled): after a step, its high-water mark.
 *
 * @returns The bytes, or undefined on another backend.
 * @example
 * webGpuBytesAllocated(); // → 10200547328 after an M2-BERT-base training step at L = 8192 with gradient checkpointing
 */
export function webGpuBytesAllocated(): number | undefined {
  return tf.getBackend() === 'webgpu' ? bufferPool()?.numBytesAllocated : undefined;
}

/**
 * Destroys the GPU buffers in tfjs-webgpu's pool of free buffers, so that what one workload allocated (a long
 * sequence, a failed attempt) is given back before the next. Waits for the queue first (tiny reads), so no
 * pending command uses them. Does nothing on another backend.
 */
export async function releaseWebGpuBufferPool(): Promise<void> {
  if (tf.getBackend() !== 'webgpu') return;
  // tfjs-webgpu returns a disposed tensor's buffer to the pool once the commands that used it are done: two tiny
  // reads, so that those of the last submission are back too.
  for (let i = 0; i < 2; i++) {
    const probe = tf.tidy(() => tf.add(tf.zeros([1]), 1));
    await probe.data();
    probe.dispose();
  }
  const pool = bufferPool();
  if (pool?.freeBuffers === undefined) return;
  // Empty each size's list but keep the keys: tfjs-webgpu treats an empty map as a disposed manager.
  for (const buffers of pool.freeBuffers.values()) {
    for (const buffer of buffers) {
      pool.numBytesAllocated -= buffer.size;
      buffer.destroy();
    }
    buffers.length = 0;
  }
  pool.numFreeBuffers = 0;
}

/**
 * Runs `run` under WebGPU out-of-memory and validation error scopes and returns its value and the first error
 * (what it threw, else what the device reported), as one line. On another backend only what `run` throws counts.
 * `run` should read its results back (`await t.data()`), so that its commands have run when the scopes close.
 *
 * @param run - The work.
 * @returns `{ value }`, or `{ error }` with a one-line message (≤ 200 characters).
 * @example
 * const { error } = await withWebGpuErrors(async () => { await model.forward(batch).lastHiddenState.data(); });
 */
export async function withWebGpuErrors<T>(run: () => Promise<T> | T): Promise<{ value?: T; error?: string }> {
  const device = tf.getBackend() === 'webgpu' ? (tf.backend() as unknown as { device: GPUDevice }).device : undefined;
  device?.pushErrorScope('out-of-memory');
  device?.pushErrorScope('validation');
  let value: T | undefined;
  let thrown: string | undefined;
  try {
    value = await run();
  } catch (error) {
    thrown = error instanceof Error ? error.message : String(error);
  }
  const validation = await device?.popErrorScope();
  const memory = await device?.popErrorScope();
  const message = thrown ?? validation?.message ?? memory?.message;
  return message === undefined ? { value } : { error: message.split('\n')[0]!.slice(0, 200) };
}
