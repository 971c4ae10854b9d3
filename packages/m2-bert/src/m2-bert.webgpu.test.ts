// M2Bert (tiny preset) on webgpu through SwiftShader: the fused WGSL path (mixer core, LayerNorm, GELU gate, long
// convolutions) gives the same MLM logits as the same model through stock tfjs-webgpu ops, and as the cpu backend up
// to SwiftShader's transcendental functions. Skipped, with the reason in the name, where SwiftShader is missing.
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import { relativeL2 } from '@monarch-mixer/monarch-core/testing';
import { countDispatches, readTensor, swiftShaderWebGpu } from '../../monarch-core/test/webgpu-swiftshader.js';
import { M2Bert } from './index.js';

const gpu = await swiftShaderWebGpu();
afterAll(() => tf.setBackend('cpu'));

describe.skipIf(!gpu.available)(`M2Bert on webgpu (SwiftShader)${gpu.available ? '' : ` (SKIPPED: ${gpu.reason})`}`, () => {
  it('MLM logits of the fused path equal the stock-op path and the cpu backend', async () => {
    await tf.setBackend('cpu');
    const model = new M2Bert({ preset: 'tiny', hiddenDropout: 0 });
    const ids = [[101, 7, 8, 9, 10, 11, 12, 102], [101, 20, 21, 22, 23, 24, 25, 102]];
    const logits = async () => {
      const out = model.forward({ inputIds: ids });
      const value = await readTensor(out.logits!);
      tf.dispose(out as unknown as tf.Tensor[]);
      return value;
    };
    const cpu = await logits();
    await tf.setBackend('webgpu');
    await logits(); // builds the cached kernel spectra and weight slices
    const { result, total } = countDispatches(logits);
    const fused = await result;
    process.env.M2_FUSED_LONG_CONV = '0';
    const stock = countDispatches(logits);
    const stockLogits = await stock.result;
    delete process.env.M2_FUSED_LONG_CONV;
    await tf.setBackend('cpu');
    model.dispose();
    expect(total).toBeLessThan(stock.total / 2);
    expect(relativeL2(fused, stockLogits)).toBeLessThan(1e-5);
    expect(relativeL2(fused, cpu)).toBeLessThan(5e-3); // SwiftShader's sin/exp in the implicit filters
  });
});
