// Save/load of a model directory: `config.json` ({ modelType, format, config }) + `model.safetensors` (F32).
// The file handling is m2-layers' model folder.
import type * as tf from '@tensorflow/tfjs-core';
import { readSafetensors } from '@monarch-mixer/monarch-core';
import { assignNamedTensors, readModelFolderConfig, readModelFolderWeights, saveModelFolder } from '@monarch-mixer/m2-layers';
import type { ModelFolderConfig } from '@monarch-mixer/m2-layers';

/** Contents of a vision model directory's `config.json` (`modelType` is `m2-vision` or `vit-baseline`). */
export type VisionCheckpointFile = ModelFolderConfig;

/**
 * Writes `config.json` and `model.safetensors` (every weight as F32) into `dir`, creating it if needed.
 * @param dir - Output directory.
 * @param modelType - `m2-vision` or `vit-baseline`.
 * @param config - The model's resolved config (JSON-serialisable).
 * @param weights - Every weight by its checkpoint name.
 */
export const saveVisionCheckpoint: (dir: string, modelType: string, config: object, weights: Map<string, tf.Tensor>) => Promise<void> =
  saveModelFolder;

/**
 * Reads and checks `dir/config.json`.
 * @throws FileFormatError (one line) when it is missing, not JSON, or not a vision model config.
 */
export const readVisionCheckpointConfig: (dir: string) => Promise<VisionCheckpointFile> = readModelFolderConfig;

/**
 * Assigns every tensor of `dir/model.safetensors` to the variable of the same name.
 * @throws FileFormatError (one line) for missing, unexpected or misshapen tensors.
 */
export async function loadVisionWeights(dir: string, weights: Map<string, tf.Variable>): Promise<void> {
  const { path, bytes } = await readModelFolderWeights(dir);
  const { tensors } = readSafetensors(bytes, { file: path });
  assignNamedTensors(tensors, weights, path, 6);
}

/**
 * Builds a model from `dir/config.json` with `create` and fills its weights from `dir/model.safetensors`; the model
 * is disposed again when the weights do not fit.
 * @param dir - A model directory written by `save(dir)`.
 * @param create - Builds the model from the stored config.
 * @returns The loaded model.
 * @throws FileFormatError (one line) for a missing or damaged file, or missing, unexpected or misshapen tensors.
 */
export async function loadVisionModel<M extends { namedWeights(): Map<string, tf.Variable>; dispose(): void }>(
  dir: string,
  create: (config: Record<string, unknown>) => M,
): Promise<M> {
  const file = await readVisionCheckpointConfig(dir);
  const model = create(file.config);
  try {
    await loadVisionWeights(dir, model.namedWeights());
    return model;
  } catch (error) {
    model.dispose();
    throw error;
  }
}
