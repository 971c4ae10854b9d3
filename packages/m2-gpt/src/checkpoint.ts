// Save/load of a model directory: `config.json` ({ modelType, format, config }) + `model.safetensors` (F32).
import * as tf from '@tensorflow/tfjs-core';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FileFormatError, readSafetensors, toFloat32, writeFileAtomic, writeSafetensors } from '@monarch-mixer/monarch-core';
import type { TensorRecord } from '@monarch-mixer/monarch-core';

/** Contents of a model directory's `config.json`. */
export interface CheckpointConfigFile {
  /** Which model class wrote it (`m2-gpt` or `baseline-gpt`). */
  modelType: string;
  /** File format version (1). */
  format: number;
  /** The model's configuration. */
  config: Record<string, unknown>;
}

const FORMAT = 1;

/** Writes `config.json` and `model.safetensors` into `dir` (created if needed). */
export async function saveCheckpoint(
  dir: string,
  modelType: string,
  config: object,
  weights: Map<string, tf.Tensor>,
): Promise<void> {
  await mkdir(dir, { recursive: true });
  const records: Record<string, TensorRecord> = {};
  for (const [name, tensor] of weights) {
    records[name] = { dtype: 'F32', shape: [...tensor.shape], data: (await tensor.data()) as Float32Array };
  }
  const file: CheckpointConfigFile = { modelType, format: FORMAT, config: { ...config } };
  await writeFileAtomic(join(dir, 'model.safetensors'), writeSafetensors(records, { format: 'pt', modelType }));
  await writeFileAtomic(join(dir, 'config.json'), new TextEncoder().encode(`${JSON.stringify(file, null, 2)}\n`));
}

/**
 * Reads and checks `dir/config.json`.
 * @throws FileFormatError (one line) when it is missing, not JSON, or not `{ modelType, format: 1, config }`.
 * @example
 * (await readCheckpointConfig('runs/tiny')).modelType; // → 'm2-gpt'
 */
export async function readCheckpointConfig(dir: string): Promise<CheckpointConfigFile> {
  const path = join(dir, 'config.json');
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(path, 'utf8'));
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found' : (error as Error).message;
    throw new FileFormatError(`${path}: cannot read the model config (${reason}).`, { parameter: path });
  }
  const file = parsed as Partial<CheckpointConfigFile>;
  if (typeof file !== 'object' || file === null || typeof file.modelType !== 'string' || typeof file.config !== 'object') {
    throw new FileFormatError(`${path}: expected { modelType, format, config }, got something else.`, { parameter: path });
  }
  if (file.format !== FORMAT) {
    throw new FileFormatError(`${path}: unsupported format ${String(file.format)} (this version reads format ${FORMAT}).`, {
      parameter: path,
    });
  }
  return file as CheckpointConfigFile;
}

/**
 * Loads a model directory: builds the model from `config.json` with `create`, then assigns every tensor of
 * `model.safetensors` to the variable of the same name.
 * @throws FileFormatError (one line) for a wrong modelType or missing, unexpected or misshapen tensors.
 */
export async function loadCheckpoint<M extends { dispose(): void }>(
  dir: string,
  modelType: string,
  create: (config: Record<string, unknown>) => M,
  weightsOf: (model: M) => Map<string, tf.Variable>,
): Promise<M> {
  const file = await readCheckpointConfig(dir);
  checkModelType(file, modelType, dir);
  const path = join(dir, 'model.safetensors');
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await readFile(path));
  } catch {
    throw new FileFormatError(`${path}: file not found.`, { parameter: path });
  }
  return checkpointFromBytes(file, bytes, { modelType, create, weightsOf, source: dir });
}

/**
 * Builds a model from an already-read `config.json` and the bytes of its `model.safetensors` — the path for
 * browsers (fetch both files) and for any storage that is not the local file system.
 * @param file - The parsed `config.json` ({ modelType, format, config }).
 * @param bytes - The `model.safetensors` file.
 * @param options - `modelType` expected, `create` and `weightsOf` of the model class, `source` for messages.
 * @throws FileFormatError (one line) for a wrong modelType or missing, unexpected or misshapen tensors.
 */
export function checkpointFromBytes<M extends { dispose(): void }>(
  file: CheckpointConfigFile,
  bytes: Uint8Array,
  options: { modelType: string; create: (config: Record<string, unknown>) => M; weightsOf: (model: M) => Map<string, tf.Variable>; source: string },
): M {
  const { modelType, create, weightsOf, source } = options;
  checkModelType(file, modelType, source);
  const path = `${source}/model.safetensors`;
  const { tensors } = readSafetensors(bytes, { file: path });
  const model = create(file.config);
  try {
    const weights = weightsOf(model);
    const missing = [...weights.keys()].filter((name) => !tensors.has(name));
    const unexpected = [...tensors.keys()].filter((name) => !weights.has(name));
    const misshapen = [...weights].filter(([name, v]) => tensors.has(name) && !sameShape(tensors.get(name)!.shape, v.shape))
      .map(([name, v]) => `${name} [${tensors.get(name)!.shape.join(', ')}] (expected [${v.shape.join(', ')}])`);
    const problems = [
      missing.length ? `missing ${list(missing)}` : '',
      misshapen.length ? `misshapen ${list(misshapen)}` : '',
      unexpected.length ? `unexpected ${list(unexpected)}` : '',
    ].filter(Boolean);
    if (problems.length) throw new FileFormatError(`${path}: ${problems.join('; ')}.`, { parameter: path });
    for (const [name, variable] of weights) {
      const record = tensors.get(name)!;
      tf.tidy(() => variable.assign(tf.tensor(toFloat32(record), record.shape, 'float32')));
    }
    return model;
  } catch (error) {
    model.dispose();
    throw error;
  }
}

function checkModelType(file: CheckpointConfigFile, modelType: string, source: string): void {
  if (file.modelType !== modelType) {
    throw new FileFormatError(`${source}/config.json: modelType is "${file.modelType}", expected "${modelType}".`);
  }
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/** At most 8 names, then a count. */
function list(names: string[]): string {
  const shown = names.slice(0, 8).join(', ');
  return names.length > 8 ? `${shown} and ${names.length - 8} more` : shown;
}
