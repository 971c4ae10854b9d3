// Causal language modelling: M2-GPT (or the attention baseline of the same size) on a token stream.
// Training windows are drawn at random offsets from the trainer's RNG; validation uses fixed,
// non-overlapping windows of a held-out part of the corpus, so every evaluation sees the same tokens.
import * as tf from '@tensorflow/tfjs-core';
import { InvalidArgumentError } from '@monarch-mixer/monarch-core';
import { BaselineGpt, Gpt2Tokenizer } from '@monarch-mixer/m2-gpt';
import type { CausalLanguageModel, IncrementalDecoder } from '@monarch-mixer/m2-gpt';
import type { TrainTask } from '../trainer.js';
import type { TrainRng } from '../rng.js';
import type { TextCorpus } from '../data/text-corpus.js';

/** A causal LM the GPT task can train: M2Gpt and BaselineGpt both fit. */
export interface TrainableCausalLm extends CausalLanguageModel {
  /**
   * Mean next-token loss. Shapes: ids [B, L] → scalar.
   * `gradientCheckpointing` recomputes each M2 block in the backward pass (M2Gpt; the attention baseline ignores it).
   */
  loss(ids: tf.Tensor2D, options?: { gradientCheckpointing?: boolean }): tf.Scalar;
  /** Every weight by checkpoint name. */
  readonly checkpointWeights: Map<string, tf.Variable>;
  /** `config.json` contents. */
  readonly configFile: Record<string, unknown>;
  /** Frees the model. */
  dispose(): void;
}

/** Token streams for training and validation. */
export interface TokenSplits {
  /** Training tokens (documents joined by `<|endoftext|>`). */
  train: Int32Array;
  /** Held-out tokens. */
  validation: Int32Array;
}

/**
 * Tokenizes a corpus with GPT-2 BPE and holds out validation data: every `holdoutEvery`-th document when the
 * corpus has at least that many documents, else the last 10% of the token stream.
 * @throws InvalidArgumentError when either split is shorter than one window of `seqLen` tokens.
 */
export function tokenizeCorpus(corpus: TextCorpus, seqLen: number, holdoutEvery = 20): TokenSplits {
  const tokenizer = new Gpt2Tokenizer();
  let train: number[];
  let validation: number[];
  if (corpus.documents.length >= holdoutEvery) {
    train = tokenizer.encodeDocuments(corpus.documents.filter((_, i) => i % holdoutEvery !== holdoutEvery - 1));
    validation = tokenizer.encodeDocuments(corpus.documents.filter((_, i) => i % holdoutEvery === holdoutEvery - 1));
  } else {
    const all = tokenizer.encodeDocuments(corpus.documents);
    const cut = Math.floor(all.length * 0.9);
    train = all.slice(0, cut);
    validation = all.slice(cut);
  }
  const need = seqLen + 1;
  if (train.length < need + 1 || validation.length < need) {
    throw new InvalidArgumentError(
      `${corpus.name}: ${train.length + validation.length} tokens are too few for --seq-len ${seqLen} (need ≥ ${Math.ceil((need + 1) / 0.9)}); give more text or a smaller --seq-len.`,
      { parameter: '--seq-len', value: seqLen },
    );
  }
  return { train: Int32Array.from(train), validation: Int32Array.from(validation) };
}

/** Options of {@link createGptTask}. */
export interface GptTaskOptions {
  /** Sequences per micro-batch. */
  batchSize: number;
  /** Tokens per sequence. */
  seqLen: number;
  /** Validation windows per evaluation at most (default 16). */
  evalWindows?: number;
  /** Gradient checkpointing in the training loss (M2-GPT only). Default false. */
  gradientCheckpointing?: boolean;
}

/** Wraps an M2Gpt or BaselineGpt for the task. */
export function asTrainable(model: BaselineGpt | (CausalLanguageModel & {
  loss(ids: tf.Tensor2D, options?: { gradientCheckpointing?: boolean }): tf.Scalar; namedWeights(): Map<string, tf.Variable>; config: object; dispose(): void;
})): TrainableCausalLm {
  const isBaseline = model instanceof BaselineGpt;
  const withDecoder = model as { createIncrementalDecoder?: () => IncrementalDecoder };
  return {
    vocabSize: model.vocabSize,
    maxLength: model.maxLength,
    nextTokenLogits: (ids) => model.nextTokenLogits(ids),
    ...(model.nextTokenLogitsAsync ? { nextTokenLogitsAsync: (ids: readonly number[]) => model.nextTokenLogitsAsync!(ids) } : {}),
    ...(withDecoder.createIncrementalDecoder ? { createIncrementalDecoder: () => withDecoder.createIncrementalDecoder!() } : {}),
    loss: (ids, options) => (isBaseline ? model.loss(ids) : model.loss(ids, options)),
    checkpointWeights: isBaseline ? model.weights : model.namedWeights(),
    configFile: { modelType: isBaseline ? 'baseline-gpt' : 'm2-gpt', format: 1, config: { ...model.config } },
    dispose: () => model.dispose(),
  };
}

/** @throws InvalidArgumentError unless 2 ≤ seqLen ≤ the model's maximum length. */
export function checkSequenceLength(seqLen: number, maxLength: number): void {
  if (seqLen < 2 || seqLen > maxLength) {
    throw new InvalidArgumentError(`--seq-len must be in [2, ${maxLength}] (the model's maximum length), got ${seqLen}.`, {
      parameter: '--seq-len', value: seqLen,
    });
  }
}

/**
 * Checks the token stream against the model's vocabulary once, on the host: the model's own check reads its ids back
 * synchronously, which webgpu in Node cannot do.
 * @throws InvalidArgumentError (one line) naming the largest id and the vocabulary.
 */
function checkTokenRange(splits: TokenSplits, vocabSize: number): void {
  let largest = 0;
  for (const part of [splits.train, splits.validation]) for (let i = 0; i < part.length; i++) if (part[i]! > largest) largest = part[i]!;
  if (largest >= vocabSize) {
    throw new InvalidArgumentError(`the corpus has token id ${largest} but the model's vocabulary is [0, ${vocabSize}); train a model with the GPT-2 vocabulary (50257).`, {
      parameter: 'vocabSize', value: vocabSize,
    });
  }
}

/** Builds the `gpt` {@link TrainTask}: random windows for training, fixed windows for validation. */
export function createGptTask(model: TrainableCausalLm, splits: TokenSplits, options: GptTaskOptions): TrainTask & { model: TrainableCausalLm } {
  const { batchSize, seqLen } = options;
  checkSequenceLength(seqLen, model.maxLength);
  checkTokenRange(splits, model.vocabSize);
  const trainable = new Map([...model.checkpointWeights].filter(([, v]) => v.trainable));
  const windows = Math.min(options.evalWindows ?? 16, Math.floor(splits.validation.length / seqLen));
  return {
    name: 'gpt',
    unit: 'tokens',
    model,
    parameters: () => trainable,
    savedWeights: () => model.checkpointWeights,
    modelConfig: () => model.configFile,
    trainLoss(rng: TrainRng) {
      const ids = new Int32Array(batchSize * seqLen);
      for (let b = 0; b < batchSize; b++) {
        const start = rng.int(splits.train.length - seqLen + 1);
        ids.set(splits.train.subarray(start, start + seqLen), b * seqLen);
      }
      const batch = tf.tensor2d(ids, [batchSize, seqLen], 'int32');
      return { loss: model.loss(batch, { gradientCheckpointing: options.gradientCheckpointing }), units: batchSize * seqLen };
    },
    async evaluate() {
      let total = 0;
      for (let first = 0; first < windows; first += batchSize) {
        const count = Math.min(batchSize, windows - first);
        const ids = splits.validation.subarray(first * seqLen, (first + count) * seqLen);
        const loss = tf.tidy(() => model.loss(tf.tensor2d(ids, [count, seqLen], 'int32')));
        total += (await loss.data())[0] * count;
        loss.dispose();
      }
      const loss = total / windows;
      return { loss, perplexity: Math.exp(loss) };
    },
    dispose: () => model.dispose(),
  };
}
