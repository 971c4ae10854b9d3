// Loading and saving M2-BERT checkpoints in the original HuggingFace folder layout (m2-architecture.md §2.8):
// config.json + model.safetensors | pytorch_model.bin | model.bin | *.pt (composer, weights under state.model).
//
// Loader rules: strip `model.`/`module.`/`bert.` prefixes; skip every `flashfft` key; recompute a missing
// `position_ids`, `pos_emb.t` or `modulation.deltas` (the layers already hold those values) but never `z`; load
// each shared tensor once (tied decoder; the 6 `freq` keys of a filter, which must agree); transpose BlockdiagLinear
// weights from PyTorch (block, out, in) to [block, in, out]; accept F32/F64/F16/BF16 storages.
import * as tf from '@tensorflow/tfjs-core';
import { ConfigError, FileFormatError, readSafetensors, readTorchStateDict, toFloat32, writeSafetensors } from '@monarch-mixer/monarch-core';
import type { TensorRecord } from '@monarch-mixer/monarch-core';
import { configFromHuggingFace, configToHuggingFace, resolveM2BertConfig } from './m2-bert-config.js';
import type { M2BertConfig } from './m2-bert-config.js';
import { M2Bert } from './m2-bert.js';
import { m2BertStateDict, normalizeKey, originalKey } from './state-dict.js';

/** Weight files looked for in a model folder, in order (then any `*.pt`). */
export const WEIGHT_FILES = ['model.safetensors', 'pytorch_model.bin', 'model.bin'] as const;

const FLOAT_DTYPES = new Set(['F32', 'F64', 'F16', 'BF16']);
const MAX_LISTED = 8;

/** Lists at most {@link MAX_LISTED} items, then "… and N more". */
function list(items: readonly string[]): string {
  const shown = items.slice(0, MAX_LISTED).join(', ');
  return items.length > MAX_LISTED ? `${shown}, … and ${items.length - MAX_LISTED} more` : shown;
}

/** Reads a checkpoint file's tensors by magic bytes: a zip (PyTorch) or safetensors. */
export function readStateDict(bytes: Uint8Array, file: string): Map<string, TensorRecord> {
  const isZip = bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 0x03 && bytes[3] === 0x04;
  return isZip ? readTorchStateDict(bytes, { file }) : readSafetensors(bytes, { file }).tensors;
}

/**
 * Adapts a config to what the weights say: the 80M model's extra mixer LayerNorms (`hyena_training_additions`) are
 * on iff `…attention.layernorm.weight` keys exist, and a `BertForSequenceClassification` checkpoint without a
 * classifier (the retrieval models) loads as encoder + pooler (`text-encoding`).
 *
 * @param config - Config from config.json.
 * @param keys - The checkpoint's keys (any prefixes).
 * @returns The adapted config.
 */
export function configForWeights(config: M2BertConfig, keys: Iterable<string>): M2BertConfig {
  const normalized = [...keys].filter((k) => !k.includes('flashfft')).map(normalizeKey);
  const hyenaTrainingAdditions = normalized.some((k) => /^encoder\.layer\.\d+\.attention\.layernorm\.weight$/.test(k));
  const hasClassifier = normalized.includes('classifier.weight');
  const head = config.head === 'sequence-classification' && !hasClassifier ? 'text-encoding' : config.head;
  if (hyenaTrainingAdditions === config.hyenaTrainingAdditions && head === config.head) return config;
  return resolveM2BertConfig({ ...config, hyenaTrainingAdditions, head });
}

/**
 * Copies a state dict into a model, after checking it completely: every missing tensor, every wrong shape and every
 * unexpected encoder key is reported in ONE error line.
 *
 * @param model - The model to fill.
 * @param records - Checkpoint tensors under their original keys (any `model.`/`module.`/`bert.` prefixes).
 * @param file - File name for messages.
 * @throws FileFormatError listing missing / wrongly shaped / non-float / unexpected tensors, or shared tensors whose
 *   copies disagree.
 */
export function loadStateDict(model: M2Bert, records: Map<string, TensorRecord>, file: string): void {
  const config = model.config;
  const byKey = new Map<string, TensorRecord>();
  for (const [key, record] of records) {
    if (!key.includes('flashfft')) byKey.set(normalizeKey(key), record);
  }
  const layout = m2BertStateDict(config);
  const known = new Set(layout.map((e) => e.key));
  const missing: string[] = [];
  const wrong: string[] = [];
  const values = new Map<string, Float32Array>();
  const shapeOf = (r: TensorRecord) => `[${r.shape.join(', ')}]`;
  for (const entry of layout) {
    const record = byKey.get(entry.key);
    const name = originalKey(config, entry.key);
    if (!record) {
      if (!entry.recomputable && !entry.aliasOf && !layout.some((e) => e.aliasOf === entry.key && byKey.has(e.key))) missing.push(name);
      continue;
    }
    if (!tf.util.arraysEqual(record.shape, entry.shape as number[])) {
      wrong.push(`${name} expected [${entry.shape.join(', ')}] got ${shapeOf(record)}`);
    } else if (entry.kind !== 'index' && !FLOAT_DTYPES.has(record.dtype)) {
      wrong.push(`${name} has dtype ${record.dtype}, expected a float`);
    }
  }
  const unexpected = [...byKey.keys()].filter(
    (k) => !known.has(k) && (k.startsWith('embeddings.') || k.startsWith('encoder.')),
  );
  if (missing.length + wrong.length + unexpected.length > 0) {
    const parts = [
      missing.length ? `missing ${missing.length} tensor(s): ${list(missing)}` : '',
      wrong.length ? `wrong shape or dtype: ${list(wrong)}` : '',
      unexpected.length ? `unexpected ${unexpected.length} tensor(s): ${list(unexpected)}` : '',
    ].filter(Boolean);
    throw new FileFormatError(`${file}: checkpoint does not match config.json: ${parts.join('; ')}.`, { parameter: file });
  }
  // Shared tensors: take the canonical key, else the first alias present; all copies must agree.
  const disagree: string[] = [];
  for (const entry of layout) {
    if (entry.kind === 'index') continue;
    const canonical = entry.aliasOf ?? entry.key;
    const record = byKey.get(entry.key);
    if (!record) continue;
    const data = toFloat32(record);
    const existing = values.get(canonical);
    if (!existing) values.set(canonical, data);
    else if (!sameValues(existing, data)) disagree.push(originalKey(config, entry.key));
  }
  if (disagree.length > 0) {
    throw new FileFormatError(`${file}: shared tensors differ from the tensor they alias: ${list(disagree)}.`, { parameter: file });
  }
  const named = model.namedWeights();
  for (const entry of layout) {
    const data = values.get(entry.key);
    if (entry.kind === 'index' || entry.aliasOf || !data) continue;
    const variable = named.get(originalKey(config, entry.key))!;
    tf.tidy(() => {
      const value = tf.tensor(data, entry.shape as number[], 'float32');
      variable.assign(entry.blockWeight ? tf.transpose(value, [0, 2, 1]) : value);
    });
  }
}

function sameValues(a: Float32Array, b: Float32Array): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i += 1) if (a[i] !== b[i] && !(Number.isNaN(a[i]) && Number.isNaN(b[i]))) return false;
  return true;
}

/**
 * The model's state_dict as the original PyTorch module has it: original key names, PyTorch layouts, every alias
 * (tied decoder, 6 `freq` keys per filter) as its own entry, buffers included, `position_ids` as I64.
 * Reads the weights back synchronously: on webgpu in Node, which has no synchronous read, use
 * {@link stateDictRecordsAsync}.
 *
 * @param model - The model.
 * @returns Key → F32 record (I64 for position_ids), in module order.
 * @example
 * stateDictRecords(model).get('bert.embeddings.word_embeddings.weight')?.shape; // → [1024, 64] (tiny preset)
 */
export function stateDictRecords(model: M2Bert): Map<string, TensorRecord> {
  const records = new Map<string, TensorRecord>();
  for (const [name, entry] of stateDictEntries(model)) {
    if (typeof entry !== 'function') {
      records.set(name, entry);
      continue;
    }
    const value = entry();
    records.set(name, { dtype: 'F32', shape: [...value.shape], data: Float32Array.from(value.dataSync() as Float32Array) });
    value.dispose();
  }
  return records;
}

/**
 * {@link stateDictRecords} with the weights read back asynchronously (`await tensor.data()`, one weight at a time),
 * so it runs on every backend, webgpu in Node included. {@link savePretrained} uses it.
 *
 * @param model - The model.
 * @returns Key → F32 record (I64 for position_ids), in module order.
 * @example
 * (await stateDictRecordsAsync(model)).get('bert.embeddings.position_ids')?.dtype; // → 'I64'
 */
export async function stateDictRecordsAsync(model: M2Bert): Promise<Map<string, TensorRecord>> {
  const records = new Map<string, TensorRecord>();
  for (const [name, entry] of stateDictEntries(model)) {
    if (typeof entry !== 'function') {
      records.set(name, entry);
      continue;
    }
    const value = entry();
    try {
      // Awaited before the dispose: webgpu caches the values it read on the tensor's own record.
      records.set(name, { dtype: 'F32', shape: [...value.shape], data: Float32Array.from((await value.data()) as Float32Array) });
    } finally {
      value.dispose();
    }
  }
  return records;
}

/**
 * The state_dict in module order: each weight as a function returning it in PyTorch's layout (a new tensor the caller
 * disposes), `position_ids` as its I64 record.
 */
function* stateDictEntries(model: M2Bert): Generator<[string, TensorRecord | (() => tf.Tensor)]> {
  const config = model.config;
  const named = model.namedWeights();
  for (const entry of m2BertStateDict(config)) {
    const name = originalKey(config, entry.key);
    if (entry.kind === 'index') {
      const data = new BigInt64Array(entry.shape[1]!);
      for (let i = 0; i < data.length; i += 1) data[i] = BigInt(i);
      yield [name, { dtype: 'I64', shape: [...entry.shape], data }];
      continue;
    }
    const variable = named.get(name)!;
    yield [name, () => (entry.blockWeight ? tf.transpose(variable, [0, 2, 1]) : tf.clone(variable))];
  }
}

/** Options of {@link fromPretrained}. */
export interface FromPretrainedOptions {
  /** Weights file inside the folder to use instead of the first of {@link WEIGHT_FILES} found. */
  weightsFile?: string;
}

/**
 * Loads an M2-BERT model folder (HuggingFace layout): `config.json` plus `model.safetensors`, `pytorch_model.bin`,
 * `model.bin` or a composer `*.pt` (first found). Node only.
 *
 * @param dir - The folder.
 * @param options - `weightsFile` to pick a file.
 * @returns The model, with the head selected by `architectures` (see {@link configForWeights} for the adaptations).
 * @throws ConfigError for an unreadable or unsupported config.json.
 * @throws FileFormatError if no weights file exists, or it is corrupt, truncated, or does not match the config.
 * @example
 * const model = await fromPretrained('m2-bert-80M-2k-retrieval');
 * model.config.head; // → 'text-encoding'
 */
export async function fromPretrained(dir: string, options: FromPretrainedOptions = {}): Promise<M2Bert> {
  const { readFile, readdir } = await import('node:fs/promises');
  const { join } = await import('node:path');
  const configPath = join(dir, 'config.json');
  let json: unknown;
  try {
    json = JSON.parse(await readFile(configPath, 'utf8'));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'not found' : code ? code : `not valid JSON (${(error as Error).message.replace(/\s+/g, ' ')})`;
    throw new ConfigError(`${configPath}: ${why}; an M2-BERT folder needs config.json.`, { parameter: configPath });
  }
  const baseConfig = configFromHuggingFace(json as Record<string, unknown>);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (error) {
    throw new FileFormatError(`${dir}: cannot list the folder (${(error as Error).message}).`);
  }
  const weightsName =
    options.weightsFile ?? WEIGHT_FILES.find((f) => names.includes(f)) ?? names.filter((n) => n.endsWith('.pt')).sort()[0];
  if (!weightsName) {
    throw new FileFormatError(`${dir}: no weights file; expected one of ${WEIGHT_FILES.join(', ')} or a composer *.pt.`, { parameter: dir });
  }
  const weightsPath = join(dir, weightsName);
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await readFile(weightsPath));
  } catch (error) {
    throw new FileFormatError(`${weightsPath}: cannot read the weights file (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}).`);
  }
  const records = readStateDict(bytes, weightsPath);
  const config = configForWeights(baseConfig, records.keys());
  const model = new M2Bert(config);
  try {
    loadStateDict(model, records, weightsPath);
  } catch (error) {
    model.dispose();
    throw error;
  }
  return model;
}

/**
 * Saves a model as a HuggingFace M2-BERT folder: `config.json` and `model.safetensors` with the ORIGINAL key names
 * and layouts (aliases written as separate copies, `position_ids` included), so the original PyTorch code loads it.
 * Node only.
 *
 * @param model - The model.
 * @param dir - Target folder (created if needed; existing files are replaced).
 * @example
 * await savePretrained(model, 'out/my-m2-bert');
 */
export async function savePretrained(model: M2Bert, dir: string): Promise<void> {
  const { mkdir, writeFile, rename } = await import('node:fs/promises');
  const { join } = await import('node:path');
  await mkdir(dir, { recursive: true });
  const atomic = async (name: string, data: string | Uint8Array) => {
    const tmp = join(dir, `.${name}.${process.pid}.tmp`);
    await writeFile(tmp, data);
    await rename(tmp, join(dir, name));
  };
  await atomic('model.safetensors', writeSafetensors(await stateDictRecordsAsync(model), { format: 'pt' }));
  await atomic('config.json', `${JSON.stringify(configToHuggingFace(model.config), null, 2)}\n`);
}
