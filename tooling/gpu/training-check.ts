// The M2-BERT-base training check shared by the CPU reference (tooling/gpu/training-reference.ts, run here) and the
// webgpu run on the H200 (tooling/gpu/entry.ts --train-only): the same initial weights, the same batch and the same
// Adam steps on every backend, so the losses can be compared across machines.
//
// - Initial weights: the model's own initialisation, built on the cpu backend with Math.random replaced by a seeded
//   Mulberry32 stream (`seededWeights`), then copied by key into a model on the backend under test; `weightDigest`
//   (sha256 of every weight's bytes in key order) proves every backend started from the same numbers.
// - Batch: seeded token ids in [1000, 30000) and about 15 % of the positions labelled with their own id (others −100).
// - Steps: batch 1, no dropout, one variable at a time, either Adam(1e-3) as tfjs computes it (PerVariableAdam) or
//   plain SGD (PerVariableSgd). Adam's first updates are ≈ lr·sign(g) for every weight, so the float32 rounding
//   differences of two correct backends (first-step gradients agree to ~4e-5) flip a few hundred near-zero entries by
//   2·lr and the losses of later steps drift apart (two webgpu paths: 5e-4 at step 2, 2e-2 at step 3); SGD's
//   update is linear in g, so its later losses test the gradients themselves (clipped at global norm 1: see
//   PerVariableSgd).
import { createHash } from 'node:crypto';
import * as tf from '@tensorflow/tfjs-core';
import { Mulberry32, mixSeed } from '@monarch-mixer/monarch-core';
import { M2Bert } from '@monarch-mixer/m2-bert';

/** What defines one training check: the reference fixture records it and the device run refuses another. */
export interface TrainingSetup {
  /** Sequence length (also the model's maxPositionEmbeddings and longConvLMax). */
  length: number;
  /** Adam steps. */
  steps: number;
  /** Seed of the initial weights. */
  weightSeed: number;
  /** Seed of the batch. */
  batchSeed: number;
  /** Learning rate. */
  learningRate: number;
  /** Update rule (default 'adam'; fixtures written before this field ran Adam). */
  optimizer?: 'adam' | 'sgd';
}

/** The default check: M2-BERT-base at L = 2048, 3 Adam steps at 1e-3. */
export const DEFAULT_TRAINING_SETUP: TrainingSetup = { length: 2048, steps: 3, weightSeed: 1, batchSeed: 2, learningRate: 1e-3 };

/** Whether two set-ups are the same but for their step counts (a missing optimizer is Adam: older fixtures). */
export function sameSetupButSteps(a: TrainingSetup, b: TrainingSetup): boolean {
  return a.length === b.length && a.weightSeed === b.weightSeed && a.batchSeed === b.batchSeed && a.learningRate === b.learningRate
    && (a.optimizer ?? 'adam') === (b.optimizer ?? 'adam');
}

/** The update rule as a short label, e.g. `adam(0.001)`, `sgd(0.001, global-norm clip 1)`. */
export function optimizerLabel(setup: TrainingSetup): string {
  return setup.optimizer === 'sgd' ? `sgd(${setup.learningRate}, global-norm clip 1)` : `adam(${setup.learningRate})`;
}

/**
 * M2-BERT-base (80M) with an MLM head, no dropout, positions and long convolutions sized to `length`; another
 * `preset` (e.g. 'tiny') only for quick dry runs of the tooling.
 */
export function trainingConfig(length: number, preset: 'm2-bert-80M-2k' | 'tiny' = 'm2-bert-80M-2k') {
  return { preset, maxPositionEmbeddings: length, longConvLMax: length, hiddenDropout: 0, head: 'masked-lm' } as const;
}

/** Every named weight's shape and float32 values, by key. */
export type WeightValues = Map<string, { shape: number[]; values: Float32Array }>;

/**
 * The seeded initial weights: M2-BERT-base built on the `cpu` backend (plain JavaScript arithmetic, so the same
 * float32 values on every machine with the same Node) with Math.random replaced by a seeded Mulberry32 stream while
 * it is built (tfjs's random initialisers take their seed from Math.random when none is given and draw in
 * JavaScript). Built on cpu because some weights are computed with tensor ops (the Hyena filters' positional
 * embeddings and modulation use sin, cos and exp), whose last bits differ between backends.
 */
export async function seededWeights(length: number, seed: number, preset?: 'm2-bert-80M-2k' | 'tiny'): Promise<WeightValues> {
  const previous = tf.getBackend();
  await tf.setBackend('cpu');
  const original = Math.random;
  const rng = new Mulberry32(mixSeed(seed));
  Math.random = () => rng.next();
  let model: M2Bert | undefined;
  try {
    model = new M2Bert(trainingConfig(length, preset));
  } finally {
    Math.random = original;
  }
  const weights: WeightValues = new Map();
  try {
    for (const [key, variable] of model.namedWeights()) weights.set(key, { shape: variable.shape, values: (await variable.data()) as Float32Array });
  } finally {
    model.dispose();
    await tf.setBackend(previous);
  }
  return weights;
}

/** M2-BERT-base on the active backend with the given weights (assigned by key; a missing key throws). */
export function modelWithWeights(length: number, weights: WeightValues, preset?: 'm2-bert-80M-2k' | 'tiny'): M2Bert {
  const model = new M2Bert(trainingConfig(length, preset));
  for (const [key, variable] of model.namedWeights()) {
    const weight = weights.get(key);
    if (weight === undefined) throw new Error(`training check: no seeded weight ${key}`);
    tf.tidy(() => variable.assign(tf.tensor(weight.values, weight.shape, 'float32')));
  }
  return model;
}

/** sha256 (hex) of every weight's key, shape and float32 bytes, in key order. */
export function weightDigest(weights: WeightValues): string {
  const hash = createHash('sha256');
  for (const key of [...weights.keys()].sort()) {
    const { shape, values } = weights.get(key)!;
    hash.update(`${key}:${shape.join('x')};`);
    hash.update(new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
  }
  return hash.digest('hex');
}

/** The weights a model holds now, read back by key (to digest what a backend really got). */
export async function modelWeights(model: M2Bert): Promise<WeightValues> {
  const weights: WeightValues = new Map();
  for (const [key, variable] of model.namedWeights()) weights.set(key, { shape: variable.shape, values: (await variable.data()) as Float32Array });
  return weights;
}

/** The fixed batch: ids [1, L] in [1000, 30000), labels [1, L] (the id at ~15 % of positions, −100 elsewhere). */
export function trainingBatch(length: number, seed: number, vocabSize = 30522): { inputIds: number[][]; labels: number[][] } {
  const rng = new Mulberry32(mixSeed(seed));
  const ids: number[] = [];
  const labels: number[] = [];
  for (let i = 0; i < length; i++) {
    const id = vocabSize >= 30000 ? 1000 + rng.int(29000) : 1 + rng.int(vocabSize - 1); // small vocabularies: dry runs
    ids.push(id);
    labels.push(rng.next() < 0.15 ? id : -100);
  }
  return { inputIds: [ids], labels: [labels] };
}

/** One step's record. */
export interface StepRecord {
  /** Loss before the step's update (the loss `minimize` returns). */
  loss: number;
  /** Wall time of the step, ms (the loss read back included). */
  ms: number;
  /** Global L2 norm of the step's gradients (absent for a loss-only last step). */
  gradientNorm?: number;
}

/** The per-variable update rules of the check. */
interface StepOptimizer {
  init(variables: readonly tf.Variable[]): void;
  apply(variables: readonly tf.Variable[], grads: tf.NamedTensorMap, gradientNorm: number): void;
  dispose(): void;
}

/**
 * Adam exactly as tfjs's `tf.train.adam(lr)` computes it (β1 0.9, β2 0.999, ε 1e-7, bias-corrected moments), one
 * variable at a time: tfjs's AdamOptimizer updates every variable inside ONE tidy, so about ten temporaries per
 * weight (~3.5 GB for M2-BERT-base's 80M) stay allocated until the last variable is done; that overflowed the wasm
 * backend's 4 GiB heap even at L = 64. Here each variable's temporaries (and its gradient) are freed before the next.
 */
export class PerVariableAdam implements StepOptimizer {
  private readonly moments = new Map<string, { m: tf.Variable; v: tf.Variable }>();
  private step = 0;

  /** @param learningRate - Step size. */
  constructor(readonly learningRate: number, readonly beta1 = 0.9, readonly beta2 = 0.999, readonly epsilon = 1e-7) {}

  /**
   * Allocates the moments (zeros) of every variable now. Called before the first forward pass, this keeps the
   * long-lived moments together at the bottom of the wasm heap instead of scattered between the first backward
   * pass's temporaries (a fragmented heap failed a 89 MiB allocation at step 2 with 1.9 GiB of 4 GiB in use).
   */
  init(variables: readonly tf.Variable[]): void {
    for (const variable of variables) {
      if (this.moments.has(variable.name)) continue;
      this.moments.set(variable.name, tf.tidy(() => ({ m: tf.variable(tf.zerosLike(variable), false), v: tf.variable(tf.zerosLike(variable), false) })));
    }
  }

  /** Applies one update to every variable with a gradient in `grads` (disposed here, one by one). */
  apply(variables: readonly tf.Variable[], grads: tf.NamedTensorMap): void {
    this.step += 1;
    const correction1 = 1 - this.beta1 ** this.step;
    const correction2 = 1 - this.beta2 ** this.step;
    for (const variable of variables) {
      const gradient = grads[variable.name];
      if (gradient === undefined) continue;
      this.init([variable]);
      const { m, v } = this.moments.get(variable.name)!;
      tf.tidy(() => {
        const newM = tf.add(tf.mul(m, this.beta1), tf.mul(gradient, 1 - this.beta1));
        const newV = tf.add(tf.mul(v, this.beta2), tf.mul(tf.square(gradient), 1 - this.beta2));
        m.assign(newM);
        v.assign(newV);
        const mHat = tf.div(newM, correction1);
        const vHat = tf.div(newV, correction2);
        variable.assign(tf.add(tf.mul(tf.div(mHat, tf.add(tf.sqrt(vHat), this.epsilon)), -this.learningRate), variable));
      });
      gradient.dispose();
    }
  }

  /** Frees the moment variables. */
  dispose(): void {
    for (const { m, v } of this.moments.values()) tf.dispose([m, v]);
    this.moments.clear();
  }
}

/**
 * SGD with global-norm clipping (the recipes clip at 1.0): w ← w − lr·g·min(1, clip/‖g‖), one variable at a time
 * (each gradient freed as soon as it is applied). M2-BERT-base's first gradients have ‖g‖ ≈ 200, so unclipped SGD
 * either barely moves or overshoots; clipped, a step moves the weights by lr (L2) along −g.
 */
export class PerVariableSgd implements StepOptimizer {
  /** @param learningRate - Step size. @param clipNorm - Global gradient-norm bound. */
  constructor(readonly learningRate: number, readonly clipNorm = 1) {}

  /** Nothing to allocate (SGD keeps no state). */
  init(): void {}

  /** Applies one update to every variable with a gradient in `grads` (disposed here, one by one). */
  apply(variables: readonly tf.Variable[], grads: tf.NamedTensorMap, gradientNorm: number): void {
    const scale = this.learningRate * Math.min(1, this.clipNorm / gradientNorm);
    for (const variable of variables) {
      const gradient = grads[variable.name];
      if (gradient === undefined) continue;
      tf.tidy(() => variable.assign(tf.sub(variable, tf.mul(gradient, scale))));
      gradient.dispose();
    }
  }

  /** Nothing to free. */
  dispose(): void {}
}

/**
 * ‖g‖₂ over every gradient of the map, computed on the backend. Summed pairwise, not with tf.addN: webgpu's AddN
 * program over 550 inputs exceeds the storage buffers a pipeline may bind, and its invalid pipeline voids the
 * whole command buffer it was batched in (other ops' dispatches with it).
 */
async function globalNorm(grads: tf.NamedTensorMap): Promise<number> {
  const squares = tf.tidy(() => Object.values(grads).map((g) => tf.sum(tf.square(g))).reduce((a, b) => tf.add(a, b)));
  const value = (await squares.data())[0]!;
  squares.dispose();
  return Math.sqrt(value);
}

/**
 * Runs `setup.steps` optimizer steps on `model` (on the active backend) and calls `onStep` after each one: the loss
 * and gradients through `tf.variableGrads`, their global norm, then {@link PerVariableAdam} or {@link PerVariableSgd}. With `lastLossOnly` the last step only computes
 * its loss (the loss a step reports is the one before its update, so the losses are the same); `afterUpdate` runs
 * after each step's update (e.g. to evaluate the updated weights another way).
 * @returns The losses and times of every step.
 */
export async function runTrainingSteps(
  model: M2Bert,
  setup: TrainingSetup,
  onStep: (step: number, record: StepRecord) => void = () => {},
  options: { lastLossOnly?: boolean; afterUpdate?: (step: number) => Promise<void>; gradientCheckpointing?: boolean } = {},
): Promise<StepRecord[]> {
  const batch = trainingBatch(setup.length, setup.batchSeed, model.config.vocabSize);
  const optimizer: StepOptimizer = setup.optimizer === 'sgd' ? new PerVariableSgd(setup.learningRate) : new PerVariableAdam(setup.learningRate);
  const variables = model.trainableVariables();
  optimizer.init(variables);
  const records: StepRecord[] = [];
  try {
    for (let step = 0; step < setup.steps; step++) {
      const start = performance.now();
      if (options.lastLossOnly && step === setup.steps - 1) {
        // The last step's loss needs no gradients: a forward pass is enough (a slow CPU reference saves a backward pass).
        const value = tf.tidy(() => model.forward(batch, { training: true, outputLogits: false }).loss as tf.Scalar);
        const record = { loss: (await value.data())[0]!, ms: performance.now() - start };
        value.dispose();
        records.push(record);
        onStep(step, record);
        break;
      }
      const forwardOptions = { training: true, gradientCheckpointing: options.gradientCheckpointing ?? false, outputLogits: false };
      const { value, grads } = tf.variableGrads(() => model.forward(batch, forwardOptions).loss as tf.Scalar, variables);
      const loss = (await value.data())[0]!;
      value.dispose();
      const gradientNorm = await globalNorm(grads);
      optimizer.apply(variables, grads, gradientNorm);
      // The step is done when its last update is: read one element of the last variable.
      const probe = tf.tidy(() => tf.slice(tf.reshape(variables[variables.length - 1]!, [-1]), [0], [1]));
      await probe.data();
      probe.dispose();
      const record = { loss, ms: performance.now() - start, gradientNorm };
      records.push(record);
      onStep(step, record);
      if (options.afterUpdate) await options.afterUpdate(step);
    }
  } finally {
    optimizer.dispose();
  }
  return records;
}
