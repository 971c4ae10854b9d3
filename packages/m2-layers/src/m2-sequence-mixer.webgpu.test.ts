// M2SequenceMixer on webgpu (through SwiftShader, a CPU Vulkan driver) equals the cpu backend: at inference the
// mixer core runs as monarch-core's fused WGSL kernel (webGpuMixerCore), under a gradient tape as fused long
// convolutions. Skipped, with the reason in the name, where SwiftShader is missing.
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, expect, it } from 'vitest';
import { countDispatches, describeWebGpu, readTensor, swiftShaderWebGpu } from '../../monarch-core/test/webgpu-swiftshader.js';
import { relativeL2 } from '@monarch-mixer/monarch-core/testing';
import { M2SequenceMixer } from './index.js';

const gpu = await swiftShaderWebGpu();
afterAll(() => tf.setBackend('cpu'));

describeWebGpu(gpu, 'M2SequenceMixer on webgpu (SwiftShader)', () => {
  it.each([
    [{ bidirectional: true, preNorm: true, residualLongConv: true }, '1'],
    [{ bidirectional: false, preNorm: false, residualLongConv: false }, '0'],
  ])('inference (one fused mixer dispatch) and gradients equal the stock-op path (%o, M2_MIXER_CHANNEL_FIRST=%s)', async (options, layout) => {
    process.env.M2_MIXER_CHANNEL_FIRST = layout;
    await tf.setBackend('cpu');
    const mixer = new M2SequenceMixer({ modelDim: 8, maxLength: 40, filterOrder: 4, embDim: 3, ...options });
    const x = tf.randomNormal([2, 40, 8], 0, 1, 'float32', 3) as tf.Tensor3D;
    const run = () => mixer.apply(x) as tf.Tensor;
    const gradient = () => tf.grad((input: tf.Tensor) => tf.sum(tf.square(mixer.apply(input) as tf.Tensor)))(x);
    const read = (ts: tf.Tensor[]) => Promise.all(ts.map(readTensor)).finally(() => tf.dispose(ts));
    try {
      const expected = await read([run(), gradient()]);
      await tf.setBackend('webgpu');
      run().dispose(); // the kernel spectra are cached by the first inference
      const { result: y, byProgram } = countDispatches(run);
      expect(byProgram.get('LongConvProgram')).toBe(1);
      const training = countDispatches(gradient);
      expect(training.byProgram.get('LongConvProgram')).toBe(options.residualLongConv ? 11 : 7); // per long conv: spectrum, conv, du, dkernel; short conv: forward, dz, dw
      const got = await read([y, training.result]);
      // Repeated fused inference and gradient calls leave no tensors behind.
      const before = tf.memory().numTensors;
      for (let i = 0; i < 3; i++) await read([run(), gradient()]);
      expect(tf.memory().numTensors).toBe(before);
      process.env.M2_FUSED_LONG_CONV = '0';
      const unfused = await read([run(), gradient()]);
      delete process.env.M2_FUSED_LONG_CONV;
      await tf.setBackend('cpu');
      // The fused kernels vs the same layer through stock tfjs-webgpu ops (the Monarch path): same numbers.
      expect(relativeL2(got[0]!, unfused[0]!)).toBeLessThan(1e-5);
      expect(relativeL2(got[1]!, unfused[1]!)).toBeLessThan(1e-4);
      // vs the cpu backend: SwiftShader's transcendental functions (the implicit filter's sin and exp) alone differ by
      // ~1e-3 here (the unfused webgpu path differs from cpu by as much).
      expect(relativeL2(got[0]!, expected[0]!)).toBeLessThan(5e-3);
      expect(relativeL2(got[1]!, expected[1]!)).toBeLessThan(5e-3);
    } finally {
      delete process.env.M2_FUSED_LONG_CONV;
      delete process.env.M2_MIXER_CHANNEL_FIRST;
      await tf.setBackend('cpu');
      mixer.dispose();
      x.dispose();
    }
  });
});
