// Loader rules on checkpoint variants built from the golden tiny models: prefixes, flashfft buffers, missing
// buffers, other float storages, retrieval configs, the 80M model's extra LayerNorms, shared-tensor checks.
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { afterEach, describe, expect, it } from 'vitest';
import { readSafetensors, toFloat32, toInt32, writeSafetensors } from '@monarch-mixer/monarch-core';
import type { TensorRecord } from '@monarch-mixer/monarch-core';
import { relativeL2 } from '@monarch-mixer/monarch-core/testing';
import { configForWeights, stateDictRecords, stateDictRecordsAsync } from './checkpoint.js';
import { configFromHuggingFace } from './m2-bert-config.js';
import { M2Bert } from './m2-bert.js';

const fixtures = fileURLToPath(new URL('../test/fixtures/', import.meta.url));
const records = (path: string) => readSafetensors(new Uint8Array(readFileSync(path))).tensors;
const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

/** A model folder with the given config and weights. */
function folder(config: Record<string, unknown>, weights: Map<string, TensorRecord>): string {
  const dir = mkdtempSync(join(tmpdir(), 'm2-bert-ckpt-'));
  dirs.push(dir);
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
  writeFileSync(join(dir, 'model.safetensors'), writeSafetensors(weights));
  return dir;
}

const goldenConfig = (name: string) => JSON.parse(readFileSync(join(fixtures, name, 'config.json'), 'utf8')) as Record<string, unknown>;

/** Runs the golden inputs and returns the relative L2 error of `name` against the golden output. */
function errorOf(model: M2Bert, name: 'logits' | 'pooler_output' | 'last_hidden_state', golden: string): number {
  const io = records(join(fixtures, golden, 'io.safetensors'));
  const ids = (k: string) => tf.tensor2d(toInt32(io.get(k)!), io.get(k)!.shape as [number, number], 'int32');
  const inputs = { inputIds: ids('input_ids'), tokenTypeIds: ids('token_type_ids') };
  const out = model.forward(inputs);
  const actual = name === 'logits' ? out.logits! : name === 'pooler_output' ? out.poolerOutput! : out.lastHiddenState;
  const error = relativeL2(actual, { shape: io.get(name)!.shape, data: toFloat32(io.get(name)!) });
  tf.dispose([inputs.inputIds, inputs.tokenTypeIds, out.lastHiddenState, out.logits, out.poolerOutput].filter((t): t is tf.Tensor => !!t));
  return error;
}

function toBf16(record: TensorRecord): TensorRecord {
  const f = toFloat32(record);
  const bits = new Uint32Array(f.buffer, f.byteOffset, f.length);
  return { dtype: 'BF16', shape: record.shape, data: Uint16Array.from(bits, (b) => (b + 0x7fff + ((b >> 16) & 1)) >>> 16) };
}

describe('fromPretrained loader rules', () => {
  it('strips model./module. prefixes, skips flashfft keys, recomputes missing buffers, reads F64 storages', async () => {
    const weights = new Map<string, TensorRecord>();
    for (const [key, record] of records(join(fixtures, 'tiny-mlm', 'model.safetensors'))) {
      if (/pos_emb\.t$|modulation\.deltas$/.test(key)) continue; // context-extended checkpoints lack them
      weights.set(`model.module.${key}`, { dtype: 'F64', shape: record.shape, data: Float64Array.from(toFloat32(record)) });
    }
    const junk: TensorRecord = { dtype: 'BF16', shape: [2, 2], data: new Uint16Array(4) };
    weights.set('model.bert.encoder.flashfft.f', junk);
    weights.set('model.bert.encoder.layer.0.attention.filter_fn.flashfft.twiddle', junk);
    const model = await M2Bert.fromPretrained(folder(goldenConfig('tiny-mlm'), weights));
    try {
      expect(errorOf(model, 'logits', 'tiny-mlm')).toBeLessThan(1e-4);
    } finally {
      model.dispose();
    }
  });

  it('reads BF16 storages: the same model as F32 weights holding the bf16-rounded values', async () => {
    const golden = records(join(fixtures, 'tiny-cls', 'model.safetensors'));
    const bf16 = new Map([...golden].map(([k, r]) => [k, toBf16(r)] as const));
    const widened = new Map(
      [...bf16].map(([k, r]) => [k, { dtype: 'F32', shape: r.shape, data: new Float32Array(Uint32Array.from(r.data as Uint16Array, (h) => h << 16).buffer) }] as const),
    );
    const [a, b] = await Promise.all([M2Bert.fromPretrained(folder(goldenConfig('tiny-cls'), bf16)), M2Bert.fromPretrained(folder(goldenConfig('tiny-cls'), widened))]);
    try {
      const pa = a.forward({ inputIds: [[1, 2, 3, 4]] }).poolerOutput!;
      const pb = b.forward({ inputIds: [[1, 2, 3, 4]] }).poolerOutput!;
      expect(Array.from(pa.dataSync())).toEqual(Array.from(pb.dataSync()));
      tf.dispose([pa, pb]);
      // bf16 rounding (8-bit mantissa) of every weight moves the output, but it stays the same model.
      expect(errorOf(a, 'pooler_output', 'tiny-cls')).toBeLessThan(0.5);
    } finally {
      a.dispose();
      b.dispose();
    }
  });

  it('loads a retrieval checkpoint (BertForSequenceClassification → BertForTextEncoding, no classifier) as encoder + pooler', async () => {
    const weights = records(join(fixtures, 'tiny-cls', 'model.safetensors'));
    weights.delete('classifier.weight');
    weights.delete('classifier.bias');
    const { id2label: _a, label2id: _b, monarch_mixer_sequence_mixing: _c, use_flash_fft: _d, use_flash_mm: _e, ...rest } = goldenConfig('tiny-cls');
    const config = { ...rest, auto_map: { AutoModelForSequenceClassification: 'bert_layers.BertForTextEncoding' } };
    const model = await M2Bert.fromPretrained(folder(config, weights));
    try {
      expect(model.config.head).toBe('text-encoding');
      expect(errorOf(model, 'pooler_output', 'tiny-cls')).toBeLessThan(1e-4);
    } finally {
      model.dispose();
    }
    // The same without auto_map: no classifier in the weights → text-encoding.
    expect(configForWeights(configFromHuggingFace(goldenConfig('tiny-cls')), weights.keys()).head).toBe('text-encoding');
  });

  it("detects the 80M model's mixer LayerNorms from the weights (hyena_training_additions)", async () => {
    const weights = records(join(fixtures, 'tiny-mlm', 'model.safetensors'));
    const d = 64;
    for (const i of [0, 1]) {
      weights.set(`bert.encoder.layer.${i}.attention.layernorm.weight`, { dtype: 'F32', shape: [d], data: new Float32Array(d).fill(1) });
      weights.set(`bert.encoder.layer.${i}.attention.layernorm.bias`, { dtype: 'F32', shape: [d], data: new Float32Array(d) });
    }
    const config = { ...goldenConfig('tiny-mlm'), hyena_training_additions: false };
    const model = await M2Bert.fromPretrained(folder(config, weights));
    try {
      expect(model.config.hyenaTrainingAdditions).toBe(true);
      expect(model.namedWeights().has('bert.encoder.layer.1.attention.layernorm.weight')).toBe(true);
      // The extra LayerNorm normalises the mixer input, so the outputs differ from the model without it.
      expect(errorOf(model, 'logits', 'tiny-mlm')).toBeGreaterThan(1e-3);
    } finally {
      model.dispose();
    }
  });

  it('loads a shared tensor once, and rejects aliases whose values disagree, in one line', async () => {
    const weights = records(join(fixtures, 'tiny-mlm', 'model.safetensors'));
    weights.delete('bert.embeddings.word_embeddings.weight'); // only the tied decoder copy is left
    const model = await M2Bert.fromPretrained(folder(goldenConfig('tiny-mlm'), weights));
    try {
      expect(errorOf(model, 'logits', 'tiny-mlm')).toBeLessThan(1e-4);
    } finally {
      model.dispose();
    }
    const key = 'bert.encoder.layer.1.attention.filter_fn2.implicit_filter_rev.5.freq';
    const freq = weights.get(key)!;
    weights.set(key, { ...freq, data: toFloat32(freq).map((v) => v + 1) });
    const dir = folder(goldenConfig('tiny-mlm'), weights);
    await expect(M2Bert.fromPretrained(dir)).rejects.toThrow(/shared tensors differ from the tensor they alias: .*filter_fn2\.implicit_filter_rev\.5\.freq/);
    copyFileSync(join(fixtures, 'tiny-mlm', 'pytorch_model.bin'), join(dir, 'weights.pt'));
    const fromPt = await M2Bert.fromPretrained(dir, { weightsFile: 'weights.pt' });
    fromPt.dispose();
  });
});

describe('stateDictRecordsAsync', () => {
  it('gives the original state_dict (every PyTorch tensor of the golden file, same values) and what stateDictRecords gives, leaking nothing', async () => {
    const model = await M2Bert.fromPretrained(join(fixtures, 'tiny-mlm'));
    const before = tf.memory().numTensors;
    const asyncRecords = await stateDictRecordsAsync(model);
    expect(tf.memory().numTensors).toBe(before);
    const syncRecords = stateDictRecords(model);
    expect([...asyncRecords.keys()]).toEqual([...syncRecords.keys()]);
    for (const [key, record] of syncRecords) expect(asyncRecords.get(key), key).toEqual(record);
    const golden = records(join(fixtures, 'tiny-mlm', 'model.safetensors'));
    let compared = 0;
    for (const [key, record] of golden) {
      if (key.includes('flashfft')) continue;
      const ours = asyncRecords.get(key);
      expect(ours, key).toBeDefined();
      expect(ours!.shape, key).toEqual(record.shape);
      if (record.dtype === 'I64') expect(Array.from(toInt32(ours!)), key).toEqual(Array.from(toInt32(record)));
      else expect(Array.from(ours!.data as Float32Array), key).toEqual(Array.from(toFloat32(record)));
      compared++;
    }
    expect(compared).toBeGreaterThan(50);
    model.dispose();
  });
});
