// Loads either vision model from a directory by its config.json `modelType`.
import { FileFormatError } from '@monarch-mixer/monarch-core';
import { join } from 'node:path';
import { readVisionCheckpointConfig } from './checkpoint.js';
import type { ImageClassifier } from './image-classifier.js';
import { M2Vision } from './m2-vision.js';
import { VitBaseline } from './vit-baseline.js';

/**
 * Loads an {@link M2Vision} or a {@link VitBaseline} saved with `save(dir)`, picking the class from
 * `config.json`'s `modelType`.
 *
 * @param dir - A model directory (`config.json` + `model.safetensors`).
 * @returns The model (call `dispose()` when done).
 * @throws FileFormatError (one line) for a missing or foreign model directory.
 * @example
 * const model = await loadImageClassifier('runs/mnist');
 * model.modelType; // → 'm2-vision'
 */
export async function loadImageClassifier(dir: string): Promise<ImageClassifier> {
  const { modelType } = await readVisionCheckpointConfig(dir);
  if (modelType === 'm2-vision') return M2Vision.load(dir);
  if (modelType === 'vit-baseline') return VitBaseline.load(dir);
  throw new FileFormatError(`${join(dir, 'config.json')}: modelType "${modelType}" is not a vision model (expected m2-vision or vit-baseline).`);
}
