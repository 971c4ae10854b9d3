// A model folder: `config.json` ({ modelType, format, config }) + `model.safetensors` (every named weight as F32).
// Shared by m2-gpt and m2-vision. The Node-only functions read and write files; `assignNamedTensors` works on
// already-parsed tensors, so browsers (which fetch the bytes themselves) never touch node:fs or node:path.
import * as tf from '@tensorflow/tfjs-core';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FileFormatError, toFloat32, writeFileAtomic, writeSafetensors } from '@monarch-mixer/monarch-core';
import type { TensorRecord } from '@monarch-mixer/monarch-core';

/** Contents of a model folder's `config.json`. */
export interface ModelFolderConfig {
  /** Which model class wrote it (`m2-gpt`, `baseline-gpt`, `m2-vision`, `vit-baseline`). */
  modelType: string;
  /** File format version (1). */
  format: number;
  /** The model's configuration. */
  config: Record<string, unknown>;
}

/** The only `format` a model folder's `config.json` has so far. */
const FORMAT = 1;

/**
 * Writes `config.json` and `model.safetensors` (every weight as F32) into `dir`, creating it if needed. Both
 * files are written atomically (temporary name + rename). Node only.
 * @param dir - Output directory.
 * @param modelType - The model class name, stored in `config.json` and the safetensors metadata.
 * @param config - The model's resolved config (JSON-serialisable).
 * @param weights - Every weight by its checkpoint name.
 * @throws M2Error when a file cannot be written.
 * @example
 * await saveModelFolder('runs/tiny', 'm2-gpt', model.config, model.namedWeights());
 */
export async function saveModelFolder(dir: string, modelType: string, config: object, weights: Map<string, tf.Tensor>): Promise<void> {
  await mkdir(dir, { recursive: true });
  const records: Record<string, TensorRecord> = {};
  for (const [name, tensor] of weights) {
    records[name] = { dtype: 'F32', shape: [...tensor.shape], data: (await tensor.data()) as Float32Array };
  }
  const file: ModelFolderConfig = { modelType, format: FORMAT, config: { ...config } };
  await writeFileAtomic(join(dir, 'model.safetensors'), writeSafetensors(records, { format: 'pt', modelType }));
  await writeFileAtomic(join(dir, 'config.json'), new TextEncoder().encode(`${JSON.stringify(file, null, 2)}\n`));
}

/**
 * Reads and checks `dir/config.json`. Node only.
 * @param dir - The model folder.
 * @throws FileFormatError (one line) when it is missing, not JSON, or not `{ modelType, format: 1, config }`.
 * @example
 * (await readModelFolderConfig('runs/tiny')).modelType; // → 'm2-gpt'
 */
export async function readModelFolderConfig(dir: string): Promise<ModelFolderConfig> {
  const path = join(dir, 'config.json');
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(path, 'utf8'));
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found' : (error as Error).message.replace(/\s+/g, ' ');
    throw new FileFormatError(`${path}: cannot read the model config (${reason}).`, { parameter: path });
  }
  const file = parsed as Partial<ModelFolderConfig>;
  if (typeof file !== 'object' || file === null || typeof file.modelType !== 'string' || typeof file.config !== 'object' || file.config === null) {
    throw new FileFormatError(`${path}: expected { modelType, format, config }, got something else.`, { parameter: path });
  }
  if (file.format !== FORMAT) {
    throw new FileFormatError(`${path}: unsupported format ${String(file.format)} (this version reads format ${FORMAT}).`, { parameter: path });
  }
  return file as ModelFolderConfig;
}

/**
 * Reads the bytes of `dir/model.safetensors`. Node only.
 * @param dir - The model folder.
 * @returns The file's path (for messages) and its bytes.
 * @throws FileFormatError (one line) when the file cannot be read.
 * @example
 * const { path, bytes } = await readModelFolderWeights('runs/tiny');
 */
export async function readModelFolderWeights(dir: string): Promise<{ path: string; bytes: Uint8Array }> {
  const path = join(dir, 'model.safetensors');
  try {
    return { path, bytes: new Uint8Array(await readFile(path)) };
  } catch {
    throw new FileFormatError(`${path}: file not found.`, { parameter: path });
  }
}

/**
 * Assigns every parsed safetensors tensor to the variable of the same name, after checking that the names and
 * shapes match exactly. Browser-safe (no file access).
 * @param tensors - Parsed tensors by name (`readSafetensors(bytes).tensors`).
 * @param weights - The model's variables by checkpoint name.
 * @param path - The file the tensors came from, for messages.
 * @param maxNames - How many names each problem lists before "and N more".
 * @throws FileFormatError (one line) naming missing, misshapen and unexpected tensors; nothing is assigned then.
 * @example
 * assignNamedTensors(readSafetensors(bytes, { file: path }).tensors, model.namedWeights(), path);
 */
export function assignNamedTensors(
  tensors: ReadonlyMap<string, TensorRecord>,
  weights: Map<string, tf.Variable>,
  path: string,
  maxNames = 8,
): void {
  const missing = [...weights.keys()].filter((name) => !tensors.has(name));
  const unexpected = [...tensors.keys()].filter((name) => !weights.has(name));
  const misshapen = [...weights]
    .filter(([name, v]) => tensors.has(name) && !sameShape(tensors.get(name)!.shape, v.shape))
    .map(([name, v]) => `${name} [${tensors.get(name)!.shape.join(', ')}] (expected [${v.shape.join(', ')}])`);
  const problems = [
    missing.length ? `missing ${list(missing, maxNames)}` : '',
    misshapen.length ? `misshapen ${list(misshapen, maxNames)}` : '',
    unexpected.length ? `unexpected ${list(unexpected, maxNames)}` : '',
  ].filter(Boolean);
  if (problems.length) throw new FileFormatError(`${path}: ${problems.join('; ')}.`, { parameter: path });
  for (const [name, variable] of weights) {
    const record = tensors.get(name)!;
    tf.tidy(() => variable.assign(tf.tensor(toFloat32(record), record.shape, 'float32')));
  }
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/** At most `max` names, then a count. */
function list(names: string[], max: number): string {
  const shown = names.slice(0, max).join(', ');
  return names.length > max ? `${shown} and ${names.length - max} more` : shown;
}
