// End-to-end check of every fused webgpu kernel together (long convolutions, mixer core, short convolution,
// LayerNorm, GELU gate, block-diagonal products): the tiny-mlm golden fixtures of the original PyTorch M2-BERT
// (test/fixtures/tiny-mlm) run on webgpu through SwiftShader (a CPU Vulkan driver), inference and gradients.
// Skipped, with the reason in the name, where SwiftShader is missing (CI installs it: tooling/system-deps.sh).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { readSafetensors, toFloat32, toInt32 } from '@monarch-mixer/monarch-core';
import type { TensorRecord } from '@monarch-mixer/monarch-core';
import { relativeL2 } from '@monarch-mixer/monarch-core/testing';
import { countDispatches, describeWebGpu, overrideEnv, readTensor, swiftShaderWebGpu } from '../../monarch-core/test/webgpu-swiftshader.js';
import { M2Bert } from './m2-bert.js';

const mlmDir = fileURLToPath(new URL('../test/fixtures/tiny-mlm/', import.meta.url));
const records = (file: string) => readSafetensors(new Uint8Array(readFileSync(join(mlmDir, file)))).tensors;
// Plain arrays: M2Bert.forward then checks the ids without a synchronous read (webgpu in Node has none).
const ints = (r: TensorRecord) => Array.from({ length: r.shape[0]! }, (_, i) => Array.from(toInt32(r).subarray(i * r.shape[1]!, (i + 1) * r.shape[1]!)));
const floats = (r: TensorRecord) => ({ shape: r.shape, data: toFloat32(r) });

const gpu = await swiftShaderWebGpu();

/** Submits the queued work and lets tfjs-webgpu release the buffers whose disposal waited for it. */
async function settle(): Promise<void> {
  for (let i = 0; i < 2; i++) {
    const t = tf.tidy(() => tf.add(tf.zeros([1]), 1));
    await t.data();
    t.dispose();
  }
}

describeWebGpu(gpu, 'M2Bert tiny-mlm goldens on webgpu (SwiftShader)', () => {
  let model: M2Bert;
  const io = records('io.safetensors');
  const grads = records('grads.safetensors');
  let restoreEnv = () => {};
  beforeAll(async () => {
    // The channel-first mixer core on webgpu, the layout long sequences use (L = 32 here would run channel-last);
    // M2SequenceMixer reads it only for its fused inference core (webgpu, no gradient tape).
    restoreEnv = overrideEnv({ M2_MIXER_CHANNEL_FIRST: '1' });
    model = await M2Bert.fromPretrained(mlmDir); // on the suite's backend; the first test runs it on wasm first
  });
  afterAll(async () => {
    restoreEnv();
    model?.dispose();
    await tf.setBackend('cpu');
  });
  const inputs = () => ({ inputIds: ints(io.get('input_ids')!), tokenTypeIds: ints(io.get('token_type_ids')!), attentionMask: ints(io.get('attention_mask')!) });

  it('after inference on wasm in the same process, webgpu still gives the golden logits (no cache crosses backends)', async () => {
    const { setupBackend } = await import('@monarch-mixer/monarch-core');
    await setupBackend('wasm', { threads: 1 });
    const given = inputs();
    const onWasm = model.forward(given);
    const wasmLogits = await readTensor(onWasm.logits!);
    tf.dispose(Object.values(onWasm).flat() as tf.Tensor[]);
    await tf.setBackend('webgpu');
    const onGpu = model.forward(given);
    const gpuLogits = await readTensor(onGpu.logits!);
    tf.dispose(Object.values(onGpu).flat() as tf.Tensor[]);
    const golden = floats(io.get('logits')!);
    expect(relativeL2(wasmLogits, golden)).toBeLessThan(1e-4);
    expect(relativeL2(gpuLogits, golden)).toBeLessThan(5e-3); // SwiftShader's sin, as above
  });

  it('logits and every hidden state equal the PyTorch goldens; repeated forwards keep tensors and GPU bytes flat', async () => {
    await tf.setBackend('webgpu');
    const given = inputs();
    const forward = () => model.forward(given, { outputHiddenStates: true });
    tf.dispose(Object.values(forward()).flat() as tf.Tensor[]); // builds the cached spectra and weight slices
    await settle();
    const before = { tensors: tf.memory().numTensors, bytes: (tf.memory() as { numBytesInGPU?: number }).numBytesInGPU };
    const { result: out, byProgram } = countDispatches(forward);
    expect(byProgram.get('LongConvProgram')).toBe(model.layers.length * 2); // per layer: mixer core, GELU gate
    expect(byProgram.get('LayerNormProgram')).toBe(model.layers.length + 2); // per layer, embeddings, MLM head
    const checks: Array<[string, tf.Tensor]> = [['logits', out.logits!], ['last_hidden_state', out.lastHiddenState], ['embeddings_output', out.hiddenStates![0]!],
      ...model.layers.map((_, i): [string, tf.Tensor] => [`layer_${i}_output`, out.hiddenStates![i + 1]!])];
    const values = await Promise.all(checks.map(([, t]) => readTensor(t)));
    tf.dispose(Object.values(out).flat() as tf.Tensor[]);
    // SwiftShader's sin is only as accurate as Vulkan requires (measured |error| 1.9e-4; cpu: 1e-7), which moves the
    // implicit filters' kernels by ~2e-3 (relative L2, stock tf.sin, before any fused kernel): layer outputs and
    // logits differ from the goldens by 1.5–2e-3 here, through the fused kernels and the stock ops alike.
    const L = io.get('input_ids')!.shape[1]!;
    const { filterFn, filterFn2 } = model.layers[0]!.attention.filterKernels(L);
    const kernelError = relativeL2(await readTensor(filterFn.forward), floats(io.get('layer_0_filter_fn_k_fwd')!));
    tf.dispose([filterFn.forward, filterFn.reverse, filterFn2?.forward, filterFn2?.reverse].filter((t): t is tf.Tensor2D => t !== undefined));
    expect(kernelError).toBeLessThan(5e-3);
    const compared = checks.map(([name], i) => {
      if (!io.has(name)) return name;
      expect(relativeL2(values[i]!, floats(io.get(name)!)), name).toBeLessThan(name === 'embeddings_output' ? 1e-6 : 2 * kernelError);
      return '';
    });
    expect(compared.filter(Boolean)).toEqual(['last_hidden_state']); // not in the fixture (the logits cover it)
    for (let i = 0; i < 2; i++) tf.dispose(Object.values(forward()).flat() as tf.Tensor[]);
    await settle();
    expect(tf.memory().numTensors).toBe(before.tensors);
    expect((tf.memory() as { numBytesInGPU?: number }).numBytesInGPU).toBeLessThanOrEqual(before.bytes!);
  });

  it('the MLM loss and the gradients of the mixer and MLP weights equal the PyTorch goldens (tf.variableGrads)', async () => {
    await tf.setBackend('webgpu');
    const given = inputs();
    const labels = ints(grads.get('labels')!);
    const { value, grads: byName } = tf.variableGrads(() => model.forward({ ...given, labels }).loss as tf.Scalar, model.trainableVariables());
    expect(relativeL2(await readTensor(value), floats(grads.get('loss')!))).toBeLessThan(1e-3);
    // Weights whose gradients pass through every fused kernel of a layer (long-conv filters, short conv, in/out
    // linear, the MLP's block-diagonal weights, LayerNorm).
    const keys = [...model.namedWeights().keys()].filter((key) => key.startsWith('bert.encoder.layer.0.') &&
      /(short_filter|in_linear|out_linear|filter_fn\.bias|filter_fn\.implicit_filter\.0|gated_layers|wo\.weight|layernorm)/.test(key));
    expect(keys.length).toBeGreaterThanOrEqual(8);
    for (const key of keys) {
      const grad = byName[model.namedWeights().get(key)!.name]!;
      // BlockdiagLinear weights are [block, in, out] here and (block, out, in) in PyTorch.
      const actual = key.endsWith('gated_layers.weight') || key.endsWith('wo.weight') ? tf.transpose(grad, [0, 2, 1]) : grad;
      // 2–4e-3 on SwiftShader (its sin, as above), through the fused kernels and through stock ops alike; cpu: < 1e-3.
      expect(relativeL2(await readTensor(actual), floats(grads.get(`grad.${key}`)!)), key).toBeLessThan(1e-2);
      if (actual !== grad) actual.dispose();
    }
    tf.dispose([value, ...Object.values(byName)]);
  });

  it('takes token ids computed on the GPU (no synchronous read); masked-LM labels there fail in one line', async () => {
    await tf.setBackend('webgpu');
    const given = inputs();
    const expected = model.forward(given);
    const want = await readTensor(expected.logits!);
    tf.dispose(Object.values(expected).flat() as tf.Tensor[]);
    // The same ids, made by GPU kernels (≥ 1000 elements: tfjs-webgpu runs smaller ops on host values on the CPU).
    const [B, L] = [given.inputIds.length, given.inputIds[0]!.length];
    const onGpu = tf.tidy(() => {
      const tiled = tf.tile(tf.tensor2d(given.inputIds, undefined, 'float32'), [Math.ceil(1000 / (B * L)), 1]);
      return tf.cast(tf.slice(tf.add(tiled, 0), [0, 0], [B, L]), 'int32');
    }) as tf.Tensor2D;
    expect(() => onGpu.dataSync()).toThrow(); // on the GPU: no synchronous read in Node
    const out = model.forward({ ...given, inputIds: onGpu });
    expect(relativeL2(await readTensor(out.logits!), want)).toBeLessThan(1e-6);
    tf.dispose(Object.values(out).flat() as tf.Tensor[]);
    const labels = tf.tidy(() => tf.cast(tf.sub(tf.cast(onGpu, 'float32'), 0), 'int32'));
    expect(() => model.forward({ ...given, labels })).toThrow(/^M2Bert\.forward: masked-LM labels on the GPU cannot be read back synchronously on webgpu in Node \(.*\); give them as number\[\]\[\]\.$/);
    tf.dispose([onGpu, labels]);
  });
});
