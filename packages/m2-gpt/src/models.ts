// One interface and one registry for the two causal LMs of this package, so that training and benchmark code can
// treat M2-GPT and the attention baseline alike (`pnpm m2 train gpt --model m2-gpt | baseline-gpt`).
import type * as tf from '@tensorflow/tfjs-core';
import { FileFormatError } from '@monarch-mixer/monarch-core';
import { BaselineGpt, baselineGptConfigFor } from './baseline-gpt.js';
import { readCheckpointConfig } from './checkpoint.js';
import type { CausalLanguageModel } from './generate.js';
import { M2Gpt } from './m2-gpt.js';
import { resolveM2GptConfig } from './m2-gpt-config.js';
import type { M2GptConfig } from './m2-gpt-config.js';

/** What a trainer needs from a causal LM. {@link M2Gpt} and {@link BaselineGpt} implement it. */
export interface GptLanguageModel extends CausalLanguageModel {
  /** The model's configuration (saved in config.json). */
  readonly config: object;
  /** Logits and, with `computeLoss`, the mean next-token loss. Shapes: ids [B, L] → logits [B, L, V]. */
  forward(ids: tf.Tensor2D, options?: { computeLoss?: boolean }): { logits: tf.Tensor3D; loss?: tf.Scalar };
  /** Mean next-token cross-entropy in nats (the fast training path). Shapes: ids [B, L] → scalar. */
  loss(ids: tf.Tensor2D): tf.Scalar;
  /** Variables to optimise. */
  trainableVariables(): tf.Variable[];
  /** Every weight by checkpoint name. */
  namedWeights(): Map<string, tf.Variable>;
  /** Trainable parameter count. */
  countParameters(): number;
  /** Writes config.json + model.safetensors. */
  save(dir: string): Promise<void>;
  /** Frees the weights. */
  dispose(): void;
}

/** The model kinds of {@link gptModels}. */
export type GptModelKind = 'm2-gpt' | 'baseline-gpt';

/** How to build or load each kind. `create` takes an M2-GPT config; the baseline matches its shape and size. */
export const gptModels: Readonly<Record<GptModelKind, {
  create(config: Partial<M2GptConfig> & { preset?: string }, options?: { seed?: number }): GptLanguageModel;
  load(dir: string): Promise<GptLanguageModel>;
}>> = Object.freeze({
  'm2-gpt': {
    create: (config, options) => new M2Gpt(config, options),
    load: (dir) => M2Gpt.load(dir),
  },
  'baseline-gpt': {
    create: (config, options) => new BaselineGpt(baselineGptConfigFor(resolveM2GptConfig(config)), options),
    load: (dir) => BaselineGpt.load(dir),
  },
});

/**
 * Loads any model directory written by this package, by the `modelType` in its config.json.
 * @throws FileFormatError (one line) for an unknown modelType or a bad checkpoint.
 * @example
 * const model = await loadGptModel('runs/tiny'); // M2Gpt or BaselineGpt
 */
export async function loadGptModel(dir: string): Promise<GptLanguageModel> {
  const { modelType } = await readCheckpointConfig(dir);
  if (!Object.hasOwn(gptModels, modelType)) {
    throw new FileFormatError(`${dir}/config.json: unknown modelType "${modelType}". Expected one of: ${Object.keys(gptModels).join(', ')}.`);
  }
  return gptModels[modelType as GptModelKind].load(dir);
}
