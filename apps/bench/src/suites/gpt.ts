// `m2 bench gpt`: M2-GPT against the attention GPT baseline of the same parameter count (`BaselineGpt`,
// @monarch-mixer/m2-gpt) on the same backend, in one process: training-step throughput (forward + backward + Adam,
// tokens/s) and generation tokens/s, incremental (per-layer cache, O(t) per token) and naive (recompute the prefix).
import * as tf from '@tensorflow/tfjs-core';
import { BaselineGpt, baselineGptConfigFor, M2Gpt } from '@monarch-mixer/m2-gpt';
import type { CausalLanguageModel } from '@monarch-mixer/m2-gpt';
import { median, timeIt } from '../harness.js';

/** One row of the `gpt` suite (one model). */
export interface GptRow {
  backend: string;
  model: string;
  parameters: number;
  layers: number;
  model_dim: number;
  /** Training sequence length and batch. */
  L: number;
  batch: number;
  train_step_ms: number;
  train_tokens_per_s: number;
  /** Generated tokens per second after a prompt, with the incremental decoder. */
  generate_incremental_tokens_per_s: number | null;
  /** The same, recomputing the whole prefix for every token. */
  generate_naive_tokens_per_s: number;
  /** Peak bytes held by tfjs during the training steps. */
  train_peak_bytes: number;
}

/** Options of {@link runGptSuite}. */
export interface GptSuiteOptions {
  /** M2-GPT preset (or overrides on it). Default `tiny`. */
  preset?: string;
  /** Overrides of the preset (e.g. a smaller vocabulary for tests). */
  overrides?: Record<string, number>;
  /** Training sequence length (≤ the preset's maxLength). Default the preset's. */
  length?: number;
  batch?: number;
  /** Timed training steps (median reported). Default 3. */
  steps?: number;
  /** Prompt length and tokens generated. Defaults 16 and 32. */
  promptLength?: number;
  newTokens?: number;
  log?: (line: string) => void;
}

interface Trainable extends CausalLanguageModel {
  loss(ids: tf.Tensor2D): tf.Scalar;
  trainableVariables(): tf.Variable[];
  countParameters(): number;
  dispose(): void;
}

/** Seeded token ids [batch, length] below `vocab`. */
function randomIds(batch: number, length: number, vocab: number, seed: number): tf.Tensor2D {
  return tf.tidy(() => tf.cast(tf.floor(tf.mul(tf.randomUniform([batch, length], 0, 1, 'float32', seed), vocab - 1)), 'int32')) as tf.Tensor2D;
}

/**
 * Median tokens/s of greedy generation: `newTokens` tokens after `prompt`, best of `runs`. On webgpu (no synchronous
 * read in Node) the logits are read with the models' async methods; elsewhere synchronously, as a caller would.
 */
async function generationTokensPerSecond(model: CausalLanguageModel, prompt: number[], newTokens: number, incremental: boolean, runs = 2): Promise<number> {
  const async = tf.getBackend() === 'webgpu';
  const once = async (): Promise<number> => {
    const start = performance.now();
    const ids = [...prompt];
    const argmax = (logits: Float32Array) => logits.reduce((best, v, i, a) => (v > a[best]! ? i : best), 0);
    if (incremental) {
      const decoder = model.createIncrementalDecoder!();
      const step = async (id: number) => (async && decoder.stepAsync ? decoder.stepAsync(id) : decoder.step(id));
      try {
        let logits: Float32Array<ArrayBufferLike> = new Float32Array(0);
        for (const id of prompt) logits = await step(id);
        for (let i = 0; i < newTokens; i++) {
          const next = argmax(logits);
          ids.push(next);
          if (i < newTokens - 1) logits = await step(next);
        }
      } finally {
        decoder.dispose();
      }
    } else {
      for (let i = 0; i < newTokens; i++) {
        ids.push(argmax(async && model.nextTokenLogitsAsync ? await model.nextTokenLogitsAsync(ids) : model.nextTokenLogits(ids)));
      }
    }
    return (newTokens / (performance.now() - start)) * 1000;
  };
  await once(); // warm-up (packs weights, builds constants)
  const rates: number[] = [];
  for (let i = 0; i < runs; i++) rates.push(await once());
  return median(rates);
}

/** Runs the suite: M2-GPT, then the attention baseline sized to the same parameter count. */
export async function runGptSuite(options: GptSuiteOptions = {}): Promise<GptRow[]> {
  const { preset = 'tiny', overrides = {}, batch = 4, steps = 3, promptLength = 16, newTokens = 32, log = () => {} } = options;
  const backend = tf.getBackend();
  const m2 = new M2Gpt({ preset, ...overrides }, { seed: 0 });
  const length = options.length ?? m2.config.maxLength;
  const models: Array<[string, () => Trainable]> = [
    ['M2-GPT', () => m2],
    ['attention GPT', () => new BaselineGpt(baselineGptConfigFor(m2.config), { seed: 1 })],
  ];
  const rows: GptRow[] = [];
  const ids = randomIds(batch, length, m2.vocabSize, 7);
  const promptIds = randomIds(1, promptLength, m2.vocabSize, 8);
  const prompt = Array.from(await promptIds.data());
  promptIds.dispose();
  for (const [name, make] of models) {
    const model = make();
    const optimizer = tf.train.adam(1e-4);
    const step = await timeIt(`${name} training step`, () => optimizer.minimize(() => model.loss(ids), true, model.trainableVariables())!, {
      warmup: 1,
      repeats: steps,
    });
    optimizer.dispose();
    const incremental = model.createIncrementalDecoder ? await generationTokensPerSecond(model, prompt, newTokens, true) : null;
    const naive = await generationTokensPerSecond(model, prompt, newTokens, false);
    rows.push({
      backend,
      model: name,
      parameters: model.countParameters(),
      layers: m2.config.numLayers,
      model_dim: m2.config.modelDim,
      L: length,
      batch,
      train_step_ms: step.medianMs,
      train_tokens_per_s: ((batch * length) / step.medianMs) * 1000,
      generate_incremental_tokens_per_s: incremental,
      generate_naive_tokens_per_s: naive,
      train_peak_bytes: step.peakBytes,
    });
    log(`${name}: training ${rows.at(-1)!.train_tokens_per_s.toFixed(0)} tokens/s, generation ${incremental?.toFixed(1) ?? '–'} (incremental) / ${naive.toFixed(1)} (naive) tokens/s`);
    model.dispose();
  }
  ids.dispose();
  return rows;
}
