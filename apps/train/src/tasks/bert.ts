// M2-BERT tasks: masked-LM pretraining as the original (m2-architecture.md §6.2: 30% masking, of which 80% [MASK],
// 10% a random token, 10% unchanged; evaluation at 15%) and sequence classification fine-tuning (§6.3).
// Checkpoints are written with m2-bert's `savePretrained`, so a checkpoint folder is a HuggingFace-layout
// M2-BERT folder that `m2 bert …`, `--init` and the original PyTorch code can load.
import * as tf from '@tensorflow/tfjs-core';
import { InvalidArgumentError } from '@monarch-mixer/monarch-core';
import { BERT_SPECIAL_IDS, M2Bert, savePretrained } from '@monarch-mixer/m2-bert';
import type { BertTokenizer } from '@monarch-mixer/m2-bert';
import type { TrainTask } from '../trainer.js';
import { TrainRng } from '../rng.js';
import type { LabelledSplits, LabelledText } from '../data/labelled-text.js';

/**
 * Runs `fn` with `Math.random` replaced by a generator seeded from `seed`. tfjs draws dropout masks from a
 * seed taken from `Math.random()` when none is given, so this makes the model's dropout reproducible (and
 * resumable) without the model package exposing dropout seeds.
 */
export function withSeededMathRandom<T>(seed: number, fn: () => T): T {
  const original = Math.random;
  const rng = new TrainRng(seed);
  Math.random = () => rng.next();
  try {
    return fn();
  } finally {
    Math.random = original;
  }
}

/**
 * The trainable variables of an M2Bert, each once (aliases such as the shared `freq` and the tied decoder map to
 * one variable; the name kept is the one in the §2.11 filter group when there is one).
 */
export function uniqueTrainable(model: M2Bert): Map<string, tf.Variable> {
  const byVariable = new Map<tf.Variable, string>();
  for (const [name, variable] of model.namedWeights()) {
    if (!variable.trainable) continue;
    const previous = byVariable.get(variable);
    if (previous === undefined || (!/\.implicit_filter\./.test(previous) && /\.implicit_filter\./.test(name))) byVariable.set(variable, name);
  }
  return new Map([...byVariable].map(([variable, name]) => [name, variable]));
}

/** Copies weights of the same name and shape from `source` into `target`; returns the names copied. */
export function copyMatchingWeights(source: M2Bert, target: M2Bert): string[] {
  const from = source.namedWeights();
  const copied: string[] = [];
  for (const [name, variable] of target.namedWeights()) {
    const value = from.get(name);
    if (value && value.shape.join() === variable.shape.join()) {
      variable.assign(value);
      copied.push(name);
    }
  }
  return copied;
}

/** Save/restore hooks shared by both tasks: HuggingFace-layout folders through m2-bert. */
function bertCheckpointHooks(model: M2Bert): Pick<TrainTask, 'saveModel' | 'loadModel' | 'modelConfig' | 'savedWeights'> {
  return {
    modelConfig: () => ({ modelType: 'm2-bert', config: { ...model.config } }),
    savedWeights: () => model.namedWeights(),
    saveModel: (dir: string) => savePretrained(model, dir),
    async loadModel(dir: string) {
      const saved = await M2Bert.fromPretrained(dir);
      try {
        copyMatchingWeights(saved, model);
      } finally {
        saved.dispose();
      }
    },
  };
}

/** Fixed-length sequences `[CLS] … [SEP]` cut from a corpus' WordPiece token stream. */
export function packSequences(tokenizer: BertTokenizer, documents: readonly string[], seqLen: number): Int32Array[] {
  const body = seqLen - 2;
  const stream: number[] = [];
  for (const document of documents) {
    const ids = tokenizer.encode(document, undefined, { maxLength: Number.MAX_SAFE_INTEGER }).inputIds;
    for (let i = 1; i < ids.length - 1; i++) stream.push(ids[i]);
  }
  const sequences: Int32Array[] = [];
  for (let start = 0; start + body <= stream.length; start += body) {
    sequences.push(Int32Array.from([BERT_SPECIAL_IDS.cls, ...stream.slice(start, start + body), BERT_SPECIAL_IDS.sep]));
  }
  return sequences;
}

/**
 * Masks a sequence as HF's DataCollatorForLanguageModeling: each non-special token is selected with
 * `probability`; a selected token becomes [MASK] (80%), a random token (10%) or stays (10%). Labels are the
 * original ids at selected positions and −100 elsewhere.
 */
export function maskTokens(ids: Int32Array, probability: number, vocabSize: number, rng: TrainRng): { input: Int32Array; labels: Int32Array } {
  const input = Int32Array.from(ids);
  const labels = new Int32Array(ids.length).fill(-100);
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    if (id === BERT_SPECIAL_IDS.cls || id === BERT_SPECIAL_IDS.sep || id === BERT_SPECIAL_IDS.pad) continue;
    if (rng.next() >= probability) continue;
    labels[i] = id;
    const roll = rng.next();
    if (roll < 0.8) input[i] = BERT_SPECIAL_IDS.mask;
    else if (roll < 0.9) input[i] = rng.int(vocabSize);
  }
  return { input, labels };
}

/** Options of {@link createMlmTask}. */
export interface MlmTaskOptions {
  /** Sequences per micro-batch. */
  batchSize: number;
  /** Training mask probability. Default 0.3 (M2, §6.2). */
  maskProbability?: number;
  /** Validation sequences (masked once at 15% with a fixed seed). */
  validation: Int32Array[];
  /** Training sequences. */
  train: Int32Array[];
  /** Gradient checkpointing in the training forward (M2Bert `gradientCheckpointing`). Default false. */
  gradientCheckpointing?: boolean;
}

/** The `bert-mlm` task: random sequences, fresh 30% masking per draw, validation at a fixed 15% masking. */
export function createMlmTask(model: M2Bert, options: MlmTaskOptions): TrainTask {
  const { batchSize, train } = options;
  const probability = options.maskProbability ?? 0.3;
  const seqLen = train[0].length;
  const vocab = model.config.vocabSize;
  const validationRng = new TrainRng(12345);
  const validation = options.validation.slice(0, 64).map((ids) => maskTokens(ids, 0.15, vocab, validationRng));
  const parameters = uniqueTrainable(model);
  return {
    name: 'bert-mlm',
    unit: 'tokens',
    parameters: () => parameters,
    ...bertCheckpointHooks(model),
    trainLoss(rng) {
      const inputs = new Int32Array(batchSize * seqLen);
      const labels = new Int32Array(batchSize * seqLen);
      for (let b = 0; b < batchSize; b++) {
        const masked = maskTokens(train[rng.int(train.length)], probability, vocab, rng);
        inputs.set(masked.input, b * seqLen);
        labels.set(masked.labels, b * seqLen);
      }
      const dropoutSeed = rng.seed();
      // No [B, L, V] logits: the loss needs the labelled rows only (and with gradient checkpointing, M2Bert then
      // recomputes the MLM head in chunks too).
      const out = withSeededMathRandom(dropoutSeed, () => model.forward({
        inputIds: rowsOf(inputs, seqLen),
        labels: rowsOf(labels, seqLen),
      }, { training: true, gradientCheckpointing: options.gradientCheckpointing, outputLogits: false }));
      return { loss: out.loss as tf.Scalar, units: batchSize * seqLen };
    },
    async evaluate() {
      let lossSum = 0;
      let correct = 0;
      let masked = 0;
      for (let first = 0; first < validation.length; first += batchSize) {
        const rows = validation.slice(first, first + batchSize);
        const l = concat(rows.map((r) => r.labels));
        const out = model.forward({ inputIds: rows.map((r) => Array.from(r.input)), labels: rowsOf(l, seqLen) });
        const predicted = tf.tidy(() => tf.argMax(out.logits!, -1));
        const [p, loss] = [await predicted.data(), (await out.loss!.data())[0]];
        let rowsMasked = 0;
        for (let i = 0; i < l.length; i++) {
          if (l[i] > 0) {
            rowsMasked++;
            if (p[i] === l[i]) correct++;
          }
        }
        lossSum += loss * rowsMasked;
        masked += rowsMasked;
        tf.dispose([predicted, out.logits!, out.loss!, out.lastHiddenState]);
      }
      return { loss: lossSum / Math.max(1, masked), accuracy: correct / Math.max(1, masked) };
    },
    dispose: () => model.dispose(),
  };
}

/**
 * A flat [B·L] batch as B rows of L numbers. The model gets plain arrays, not tensors: M2Bert checks array ids as
 * given, but reads tensors back synchronously, which webgpu in Node cannot do.
 */
function rowsOf(flat: Int32Array, length: number): number[][] {
  return Array.from({ length: flat.length / length }, (_, b) => Array.from(flat.subarray(b * length, (b + 1) * length)));
}

function concat(rows: Int32Array[]): Int32Array {
  const out = new Int32Array(rows.reduce((n, r) => n + r.length, 0));
  let offset = 0;
  for (const r of rows) {
    out.set(r, offset);
    offset += r.length;
  }
  return out;
}

/** Options of {@link createClassifyTask}. */
export interface ClassifyTaskOptions {
  /** Examples per micro-batch. */
  batchSize: number;
  /** Tokens per example (padded / truncated). */
  seqLen: number;
  /** Test examples used by each evaluation (the first N of the shuffled test split). */
  evalSamples: number;
  /** Gradient checkpointing in the training forward (M2Bert `gradientCheckpointing`). Default false. */
  gradientCheckpointing?: boolean;
}

/**
 * The `classify` task: epochs over the shuffled training set (order from the trainer's RNG, position kept in the
 * checkpoint), texts tokenized on first use, accuracy and loss on the held-out split.
 */
export function createClassifyTask(model: M2Bert, tokenizer: BertTokenizer, data: LabelledSplits, options: ClassifyTaskOptions): TrainTask {
  const { batchSize, seqLen } = options;
  if (seqLen > model.config.maxPositionEmbeddings) {
    throw new InvalidArgumentError(`--seq-len must be ≤ ${model.config.maxPositionEmbeddings} (the model's maximum length), got ${seqLen}.`);
  }
  const cache = new Map<LabelledText, number[]>();
  const encode = (example: LabelledText): number[] => {
    let ids = cache.get(example);
    if (!ids) {
      // Cut long texts first: WordPiece needs at most a few characters per token, and this keeps tokenizing cheap.
      ids = tokenizer.encodeBatch([example.text.slice(0, seqLen * 12)], { maxLength: seqLen, truncation: true }).inputIds[0];
      cache.set(example, ids);
    }
    return ids;
  };
  const batchOf = (examples: LabelledText[]) => {
    const ids = new Int32Array(examples.length * seqLen);
    const mask = new Int32Array(examples.length * seqLen);
    examples.forEach((e, b) => {
      const row = encode(e);
      ids.set(row, b * seqLen);
      for (let i = 0; i < seqLen; i++) mask[b * seqLen + i] = row[i] === BERT_SPECIAL_IDS.pad ? 0 : 1;
    });
    // Plain arrays (see rowsOf); the labels as an int32 tensor, which the classification loss takes as it is.
    return {
      inputIds: rowsOf(ids, seqLen),
      attentionMask: rowsOf(mask, seqLen),
      labels: tf.tensor1d(examples.map((e) => e.label), 'int32'),
    };
  };
  let epoch = 0;
  let cursor = 0;
  let epochSeed = -1;
  let order: number[] = [];
  const shuffleFor = (seed: number) => new TrainRng(seed).shuffle(data.train.map((_, i) => i));
  const evalSet = data.test.slice(0, options.evalSamples);
  const parameters = uniqueTrainable(model);
  return {
    name: 'classify',
    unit: 'samples',
    parameters: () => parameters,
    ...bertCheckpointHooks(model),
    trainLoss(rng) {
      const picked: LabelledText[] = [];
      while (picked.length < batchSize) {
        if (epochSeed < 0 || cursor >= order.length) {
          if (epochSeed >= 0) epoch++;
          epochSeed = rng.seed();
          order = shuffleFor(epochSeed);
          cursor = 0;
        }
        picked.push(data.train[order[cursor++]]);
      }
      const dropoutSeed = rng.seed();
      const out = withSeededMathRandom(dropoutSeed, () => model.forward(batchOf(picked), { training: true, gradientCheckpointing: options.gradientCheckpointing }));
      return { loss: out.loss as tf.Scalar, units: batchSize };
    },
    async evaluate() {
      let lossSum = 0;
      let correct = 0;
      for (let first = 0; first < evalSet.length; first += batchSize) {
        const rows = evalSet.slice(first, first + batchSize);
        const batch = batchOf(rows);
        const out = model.forward(batch);
        const predicted = tf.tidy(() => tf.argMax(out.logits!, -1));
        const p = await predicted.data();
        rows.forEach((r, i) => (correct += p[i] === r.label ? 1 : 0));
        lossSum += (await out.loss!.data())[0] * rows.length;
        tf.dispose([batch.labels, predicted, out.logits!, out.loss!, out.lastHiddenState, out.poolerOutput!]);
      }
      return { loss: lossSum / evalSet.length, accuracy: correct / evalSet.length };
    },
    dataState: () => ({ epoch, cursor, epochSeed }),
    restoreDataState(state) {
      const s = state as { epoch: number; cursor: number; epochSeed: number };
      epoch = s.epoch;
      cursor = s.cursor;
      epochSeed = s.epochSeed;
      order = epochSeed >= 0 ? shuffleFor(epochSeed) : [];
    },
    dispose: () => model.dispose(),
  };
}
