// GPU memory helpers of the webgpu backend (SwiftShader): the pool's bytes, giving them back, error scopes, and the
// storage-binding check.
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, expect, it } from 'vitest';
import { describeWebGpu, swiftShaderWebGpu } from '../../test/webgpu-swiftshader.js';
import { BackendError } from '../errors.js';
import { checkWebGpuBinding, webGpuLimits } from './webgpu-limits.js';
import { releaseWebGpuBufferPool, webGpuBytesAllocated, withWebGpuErrors } from './webgpu-memory.js';

const gpu = await swiftShaderWebGpu();
afterAll(() => tf.setBackend('cpu'));

it('on cpu: no GPU bytes, nothing to release, no binding limit; withWebGpuErrors reports what run throws', async () => {
  await tf.setBackend('cpu');
  expect(webGpuBytesAllocated()).toBeUndefined();
  await releaseWebGpuBufferPool();
  expect(() => checkWebGpuBinding('test', 'logits', [2 ** 20, 2 ** 12])).not.toThrow();
  expect(await withWebGpuErrors(() => 7)).toEqual({ value: 7 });
  expect(await withWebGpuErrors(() => { throw new Error('bad shape\nsecond line'); })).toEqual({ error: 'bad shape' });
});

describeWebGpu(gpu, 'webgpu memory helpers (SwiftShader)', () => {
  it('the pool keeps a disposed tensor\'s buffer until releaseWebGpuBufferPool gives it back', async () => {
    await tf.setBackend('webgpu');
    await releaseWebGpuBufferPool();
    const before = webGpuBytesAllocated()!;
    const t = tf.tidy(() => tf.add(tf.zeros([1 << 20]), 1)); // 4 MiB (and its input)
    await t.data();
    t.dispose();
    await tf.tidy(() => tf.zeros([1])).data();
    expect(webGpuBytesAllocated()! - before).toBeGreaterThanOrEqual(4 << 20); // freed to the pool, still allocated
    await releaseWebGpuBufferPool();
    expect(webGpuBytesAllocated()! - before).toBeLessThan(1 << 20);
  });

  it('checkWebGpuBinding throws one line naming the tensor, its size and the device limit', async () => {
    await tf.setBackend('webgpu');
    const limit = webGpuLimits()!.maxStorageBufferBindingSize;
    const rows = Math.ceil(limit / 4 / 1024) + 1;
    expect(() => checkWebGpuBinding('M2Bert', 'MLM logits', [rows - 2, 1024])).not.toThrow();
    expect(() => checkWebGpuBinding('M2Bert', 'MLM logits', [rows, 1024], 'use a shorter input')).toThrow(BackendError);
    expect(() => checkWebGpuBinding('M2Bert', 'MLM logits', [rows, 1024], 'use a shorter input')).toThrow(
      new RegExp(`^M2Bert: the \\[${rows}, 1024\\] MLM logits \\([0-9.]+ GiB\\) exceed this webgpu device's storage-binding limit of [0-9.]+ GiB; use a shorter input\\.$`),
    );
  });

  it('withWebGpuErrors returns the device\'s validation error of a bad command as one line', async () => {
    await tf.setBackend('webgpu');
    const device = (tf.backend() as unknown as { device: GPUDevice }).device;
    const ok = await withWebGpuErrors(async () => (await tf.tidy(() => tf.add(tf.ones([4]), 1)).data())[0]);
    expect(ok).toEqual({ value: 2 });
    // A buffer with mapping flags WebGPU forbids together: a validation error, reported asynchronously, not thrown.
    const bad = await withWebGpuErrors(() => {
      device.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.MAP_WRITE });
    });
    expect(bad.error).toBeDefined();
    expect(bad.error).not.toContain('\n');
  });
});
