// M2Vision.classifyBatch on webgpu (SwiftShader, a CPU Vulkan driver): the finite-pixel check reads asynchronously
// there (webgpu in Node has no synchronous read), and the predictions are the cpu backend's. Skipped, with the reason
// in the name, where SwiftShader is missing.
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, expect, it } from 'vitest';
import { M2Error } from '@monarch-mixer/monarch-core';
import { describeWebGpu, swiftShaderWebGpu } from '../../monarch-core/test/webgpu-swiftshader.js';
import { M2Vision } from './m2-vision.js';

const gpu = await swiftShaderWebGpu();
const previousBackend = tf.getBackend();
afterAll(async () => {
  await tf.setBackend(previousBackend);
});

describeWebGpu(gpu, 'M2Vision.classifyBatch on webgpu (SwiftShader)', () => {
  it('gives the cpu predictions, and rejects NaN / Infinity pixels in one line', async () => {
    await tf.setBackend('cpu');
    const model = new M2Vision({ imageSize: 8, channels: 1, patchSize: 2, modelDim: 16, numLayers: 1, filterOrder: 8, numClasses: 3, labels: ['a', 'b', 'c'] }, { seed: 1 });
    const pixels = Float32Array.from({ length: 2 * 64 }, (_, i) => ((i * 37) % 64) / 64);
    const images = () => tf.tensor4d(pixels, [2, 8, 8, 1]);
    const onCpu = images();
    const expected = await model.classifyBatch(onCpu, { topK: 3 });
    onCpu.dispose();
    try {
      await tf.setBackend('webgpu');
      const onGpu = images();
      const got = await model.classifyBatch(onGpu, { topK: 3 });
      onGpu.dispose();
      got.forEach((row, b) => row.forEach((p, k) => {
        expect(p.index, `image ${b} rank ${k}`).toBe(expected[b]![k]!.index);
        expect(Math.abs(p.probability - expected[b]![k]!.probability)).toBeLessThan(1e-4); // float32 round-off: 1.1e-5 seen
      }));
      for (const bad of [NaN, Infinity]) {
        // A pixel made on the GPU (≥ 1000 elements: tfjs-webgpu runs smaller ops on host values on the CPU).
        const x = tf.tidy(() => tf.slice(tf.mul(tf.fill([20, 8, 8, 1], bad), tf.ones([20, 8, 8, 1])), [0, 0, 0, 0], [2, 8, 8, 1])) as tf.Tensor4D;
        const error = await model.classifyBatch(x).then(() => undefined, (e: unknown) => e);
        x.dispose();
        expect(M2Error.isInstance(error), String(error)).toBe(true);
        expect((error as Error).message).toBe('m2-vision.classify: images contain NaN or Infinity; give finite pixel values in [0, 1].');
      }
    } finally {
      await tf.setBackend('cpu');
      model.dispose();
    }
  }, 120_000);
});
