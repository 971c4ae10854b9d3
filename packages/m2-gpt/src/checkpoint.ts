// Save/load of a model directory: `config.json` ({ modelType, format, config }) + `model.safetensors` (F32).
// The file handling is m2-layers' model folder; this file adds the model construction around it.
import type * as tf from '@tensorflow/tfjs-core';
import { FileFormatError, readSafetensors } from '@monarch-mixer/monarch-core';
import { assignNamedTensors, readModelFolderConfig, readModelFolderWeights, saveModelFolder } from '@monarch-mixer/m2-layers';
import type { ModelFolderConfig } from '@monarch-mixer/m2-layers';

/** Contents of a model directory's `config.json` (`modelType` is `m2-gpt` or `baseline-gpt`). */
export type CheckpointConfigFile = ModelFolderConfig;

/** Writes `config.json` and `model.safetensors` into `dir` (created if needed). */
export const saveCheckpoint: (dir: string, modelType: string, config: object, weights: Map<string, tf.Tensor>) => Promise<void> =
  saveModelFolder;

/**
 * Reads and checks `dir/config.json`.
 * @throws FileFormatError (one line) when it is missing, not JSON, or not `{ modelType, format: 1, config }`.
 * @example
 * (await readCheckpointConfig('runs/tiny')).modelType; // → 'm2-gpt'
 */
export const readCheckpointConfig: (dir: string) => Promise<CheckpointConfigFile> = readModelFolderConfig;

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
  const { bytes } = await readModelFolderWeights(dir);
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
    assignNamedTensors(tensors, weightsOf(model), path);
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
