// Parity with the original PyTorch M2-BERT (golden fixtures from HazyResearch/m2 staging, fp64 → F32).
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { M2Error, readSafetensors, registerWasmTrainingKernels, toFloat32, toInt32 } from '@monarch-mixer/monarch-core';
import type { TensorRecord } from '@monarch-mixer/monarch-core';
import { relativeL2 } from '@monarch-mixer/monarch-core/testing';
import { M2Bert } from './m2-bert.js';

const fixtures = fileURLToPath(new URL('../test/fixtures/', import.meta.url));
const mlmDir = join(fixtures, 'tiny-mlm');
const clsDir = join(fixtures, 'tiny-cls');

function readRecords(path: string): Map<string, TensorRecord> {
  return readSafetensors(new Uint8Array(readFileSync(path))).tensors;
}
const ints = (r: TensorRecord) => tf.tensor2d(toInt32(r), r.shape as [number, number], 'int32');
const floats = (r: TensorRecord) => ({ shape: r.shape, data: toFloat32(r) });

interface Golden {
  io: Map<string, TensorRecord>;
  inputs: { inputIds: tf.Tensor2D; tokenTypeIds: tf.Tensor2D; attentionMask: tf.Tensor2D };
}
function golden(dir: string): Golden {
  const io = readRecords(join(dir, 'io.safetensors'));
  return {
    io,
    inputs: { inputIds: ints(io.get('input_ids')!), tokenTypeIds: ints(io.get('token_type_ids')!), attentionMask: ints(io.get('attention_mask')!) },
  };
}

/** Every golden tensor the model reproduces, with its relative L2 error. */
function compareAll(model: M2Bert, g: Golden): Record<string, number> {
  const errors: Record<string, number> = {};
  const out = model.forward(g.inputs, { outputHiddenStates: true });
  const check = (name: string, actual: tf.Tensor | undefined) => {
    const expected = g.io.get(name);
    if (!expected) return;
    expect(actual, name).toBeDefined();
    errors[name] = relativeL2(actual!, floats(expected));
  };
  check('embeddings_output', out.hiddenStates![0]);
  check('last_hidden_state', out.lastHiddenState);
  check('pooler_output', out.poolerOutput);
  check('logits', out.logits);
  model.layers.forEach((layer, i) => {
    check(`layer_${i}_output`, out.hiddenStates![i + 1]);
    const mixed = layer.attention.forward(out.hiddenStates![i]!);
    check(`layer_${i}_mixer_output`, mixed);
    mixed.dispose();
  });
  const L = g.inputs.inputIds.shape[1];
  const { filterFn, filterFn2 } = model.layers[0]!.attention.filterKernels(L);
  check('layer_0_filter_fn_k_fwd', filterFn.forward);
  check('layer_0_filter_fn_k_rev', filterFn.reverse);
  check('layer_0_filter_fn2_k_fwd', filterFn2?.forward);
  check('layer_0_filter_fn2_k_rev', filterFn2?.reverse);
  tf.dispose([filterFn.forward, filterFn.reverse, filterFn2?.forward, filterFn2?.reverse].filter((t): t is tf.Tensor2D => t !== undefined));
  tf.dispose([out.lastHiddenState, out.poolerOutput, out.logits, ...(out.hiddenStates ?? [])].filter((t): t is tf.Tensor => t !== undefined));
  const floatNames = [...g.io.keys()].filter((k) => !['input_ids', 'token_type_ids', 'attention_mask'].includes(k));
  expect(Object.keys(errors).sort()).toEqual(floatNames.sort());
  return errors;
}

function expectAllBelow(errors: Record<string, number>, tolerance: number) {
  for (const [name, error] of Object.entries(errors)) expect(error, name).toBeLessThan(tolerance);
}

async function withWasm<T>(run: () => T | Promise<T>): Promise<T> {
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  const require = createRequire(import.meta.url);
  wasm.setWasmPaths(dirname(require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm')) + '/');
  const previous = tf.getBackend();
  await tf.setBackend('wasm');
  registerWasmTrainingKernels(); // gradients of gather (embeddings) and of the short depthwise conv on wasm
  try {
    return await run();
  } finally {
    await tf.setBackend(previous);
  }
}

describe('M2-BERT golden parity (tiny-mlm, tiny-cls)', () => {
  let mlm: M2Bert;
  let cls: M2Bert;
  let mlmGolden: Golden;
  let clsGolden: Golden;
  beforeAll(async () => {
    mlm = await M2Bert.fromPretrained(mlmDir);
    cls = await M2Bert.fromPretrained(clsDir);
    mlmGolden = golden(mlmDir);
    clsGolden = golden(clsDir);
  });
  afterAll(() => {
    mlm.dispose();
    cls.dispose();
  });

  it('tiny-mlm from model.safetensors: every io tensor within relative L2 1e-4 (cpu)', () => {
    expect(mlm.config.head).toBe('masked-lm');
    expectAllBelow(compareAll(mlm, mlmGolden), 1e-4);
  });

  it('tiny-mlm from pytorch_model.bin (shared storages, position_ids): every io tensor within 1e-4', async () => {
    const fromBin = await M2Bert.fromPretrained(mlmDir, { weightsFile: 'pytorch_model.bin' });
    try {
      expectAllBelow(compareAll(fromBin, mlmGolden), 1e-4);
    } finally {
      fromBin.dispose();
    }
  });

  it('tiny-cls: pooler output, logits and last hidden state within 1e-4 (cpu)', () => {
    expect(cls.config.head).toBe('sequence-classification');
    expectAllBelow(compareAll(cls, clsGolden), 1e-4);
  });

  it('the same on the wasm backend', async () => {
    await withWasm(() => {
      expectAllBelow(compareAll(mlm, mlmGolden), 1e-4);
      expectAllBelow(compareAll(cls, clsGolden), 1e-4);
    });
    expect(tf.getBackend()).toBe(process.env.M2_TEST_BACKEND ?? 'cpu');
  });

  /** Loss and every `grad.*` of grads.safetensors through tf.variableGrads; shared tensors get one summed gradient. */
  function checkGradients(): void {
    const grads = readRecords(join(mlmDir, 'grads.safetensors'));
    const labels = ints(grads.get('labels')!);
    const { value, grads: byName } = tf.variableGrads(() => mlm.forward({ ...mlmGolden.inputs, labels }).loss as tf.Scalar, mlm.trainableVariables());
    expect(relativeL2(value, floats(grads.get('loss')!))).toBeLessThan(1e-3);
    let compared = 0;
    for (const [key, variable] of mlm.namedWeights()) {
      const expected = grads.get(`grad.${key}`);
      if (!variable.trainable) {
        expect(expected, key).toBeUndefined();
        continue;
      }
      expect(expected, key).toBeDefined();
      const grad = byName[variable.name]!;
      // BlockdiagLinear weights are [block, in, out] here and (block, out, in) in PyTorch.
      const actual = key.endsWith('gated_layers.weight') || key.endsWith('wo.weight') ? tf.transpose(grad, [0, 2, 1]) : grad;
      expect(relativeL2(actual, floats(expected!)), key).toBeLessThan(1e-3);
      if (actual !== grad) actual.dispose();
      compared += 1;
    }
    expect(compared).toBe(121);
    tf.dispose([value, labels, ...Object.values(byName)]);
  }

  it('reproduces the MLM loss and every parameter gradient through tf.variableGrads (rel L2 1e-3, cpu)', () => {
    checkGradients();
  });

  it('reproduces the loss and gradients on the wasm backend', async () => {
    await withWasm(checkGradients);
  });

  it('does not leak tensors across repeated forward passes', () => {
    const run = () => tf.dispose(Object.values(cls.forward(clsGolden.inputs)).filter((t) => t instanceof tf.Tensor) as tf.Tensor[]);
    run();
    const before = tf.memory().numTensors;
    run();
    run();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('save() writes the original state_dict (keys, layouts, aliases) and loads back to the same outputs', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'm2-bert-save-'));
    try {
      await mlm.save(dir);
      const saved = readRecords(join(dir, 'model.safetensors'));
      const original = readRecords(join(mlmDir, 'model.safetensors'));
      expect([...saved.keys()].sort()).toEqual([...original.keys(), 'bert.embeddings.position_ids'].sort());
      for (const [key, record] of original) {
        expect(saved.get(key)!.shape, key).toEqual(record.shape);
        expect(saved.get(key)!.data, key).toEqual(record.data);
      }
      expect(readSafetensors(new Uint8Array(readFileSync(join(dir, 'model.safetensors')))).metadata).toEqual({ format: 'pt' });
      const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
      expect(config.architectures).toEqual(['BertForMaskedLM']);
      const reloaded = await M2Bert.fromPretrained(dir);
      try {
        expectAllBelow(compareAll(reloaded, mlmGolden), 1e-4);
      } finally {
        reloaded.dispose();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('rejects inputs longer than max_position_embeddings and ids outside the vocabulary, in one line', () => {
    const oneLine = (fn: () => unknown, pattern: RegExp) => {
      try {
        fn();
      } catch (error) {
        expect(M2Error.isInstance(error)).toBe(true);
        expect((error as Error).message).toMatch(pattern);
        expect((error as Error).message).not.toContain('\n');
        return;
      }
      throw new Error('expected an error');
    };
    const before = tf.memory().numTensors;
    oneLine(() => mlm.forward({ inputIds: [Array.from({ length: 33 }, () => 5)] }), /input length 33 is longer than the model's max length 32/);
    oneLine(() => mlm.forward({ inputIds: [[101, 1024, 102]] }), /token id 1024 at position 1 of row 0 is outside the vocabulary \[0, 1024\)/);
    oneLine(() => mlm.forward({ inputIds: [[101, -1, 102]] }), /outside the vocabulary/);
    oneLine(() => mlm.forward({ inputIds: [[1, 2]], tokenTypeIds: [[0, 2]] }), /tokenTypeIds value 2 is outside \[0, 2\)/);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('rejects corrupt or truncated weights and a config that does not match the weights, in one line', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'm2-bert-bad-'));
    const expectOneLine = async (pattern: RegExp) => {
      const error = await M2Bert.fromPretrained(dir).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(M2Error.isInstance(error), String(error)).toBe(true);
      expect((error as Error).message).toMatch(pattern);
      expect((error as Error).message).not.toContain('\n');
    };
    try {
      copyFileSync(join(mlmDir, 'config.json'), join(dir, 'config.json'));
      const safetensors = readFileSync(join(mlmDir, 'model.safetensors'));
      writeFileSync(join(dir, 'model.safetensors'), safetensors.subarray(0, safetensors.length - 1000));
      await expectOneLine(/model\.safetensors/);
      writeFileSync(join(dir, 'model.safetensors'), Buffer.from('garbage that is not a checkpoint'));
      await expectOneLine(/model\.safetensors/);
      rmSync(join(dir, 'model.safetensors'));
      const bin = readFileSync(join(mlmDir, 'pytorch_model.bin'));
      writeFileSync(join(dir, 'pytorch_model.bin'), bin.subarray(0, bin.length >> 1));
      await expectOneLine(/pytorch_model\.bin/);
      copyFileSync(join(mlmDir, 'model.safetensors'), join(dir, 'model.safetensors'));
      const config = JSON.parse(readFileSync(join(mlmDir, 'config.json'), 'utf8'));
      writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...config, hidden_size: 128, intermediate_size: 512 }));
      await expectOneLine(/checkpoint does not match config\.json: .*wrong shape.*bert\.embeddings\.word_embeddings\.weight expected \[1024, 128\] got \[1024, 64\].*and \d+ more/);
      writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...config, num_hidden_layers: 3 }));
      await expectOneLine(/missing \d+ tensor\(s\): bert\.encoder\.layer\.2\./);
      writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...config, num_hidden_layers: 1 }));
      await expectOneLine(/unexpected \d+ tensor\(s\): encoder\.layer\.1\./);
      writeFileSync(join(dir, 'config.json'), '{ not json');
      await expectOneLine(/config\.json: not valid JSON/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
