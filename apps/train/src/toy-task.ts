// A tiny softmax-regression task for the trainer's own tests: fixed synthetic data drawn from a seed,
// mini-batches drawn sample by sample from the trainer's RNG (so accumulation of k micro-batches of b equals
// one batch of k·b), and an optional poison step that makes the loss NaN.
import * as tf from '@tensorflow/tfjs-core';
import type { TrainTask } from './trainer.js';
import type { TrainRng } from './rng.js';

/** Options of {@link createToyTask}. */
export interface ToyTaskOptions {
  /** Samples per micro-batch. Default 4. */
  batchSize?: number;
  /** Input features. Default 6. */
  features?: number;
  /** Classes. Default 3. */
  classes?: number;
  /** Return NaN as the loss from this call of trainLoss on (1-based). */
  nanAtCall?: number;
}

/** A {@link TrainTask} over synthetic data, for tests of the trainer. */
export function createToyTask(options: ToyTaskOptions = {}): TrainTask & { calls: number } {
  const { batchSize = 4, features = 6, classes = 3 } = options;
  const samples = 64;
  const data = tf.tidy(() => tf.randomNormal([samples, features], 0, 1, 'float32', 11));
  const labels = tf.tidy(() => tf.argMax(tf.matMul(data, tf.randomNormal([features, classes], 0, 1, 'float32', 12)), 1));
  const weights = tf.variable(tf.randomNormal([features, classes], 0, 0.1, 'float32', 13), true, `toy_w_${Math.random()}`);
  const bias = tf.variable(tf.zeros([classes]), true, `toy_b_${Math.random()}`);
  const parameters = new Map([['dense.weight', weights], ['dense.bias', bias]]);
  const lossOf = (x: tf.Tensor2D, y: tf.Tensor1D) => tf.losses.softmaxCrossEntropy(tf.oneHot(y, classes), tf.add(tf.matMul(x, weights), bias)) as tf.Scalar;
  const task = {
    name: 'toy',
    unit: 'samples' as const,
    calls: 0,
    parameters: () => parameters,
    modelConfig: () => ({ modelType: 'toy', format: 1, config: { features, classes } }),
    trainLoss(rng: TrainRng) {
      task.calls++;
      const indices = Array.from({ length: batchSize }, () => rng.int(samples));
      const idx = tf.tensor1d(indices, 'int32');
      const loss = lossOf(tf.gather(data, idx) as tf.Tensor2D, tf.gather(labels, idx) as tf.Tensor1D);
      return { loss: options.nanAtCall !== undefined && task.calls >= options.nanAtCall ? tf.mul(loss, NaN) as tf.Scalar : loss, units: batchSize };
    },
    async evaluate() {
      const loss = tf.tidy(() => lossOf(data as tf.Tensor2D, labels as tf.Tensor1D));
      const value = (await loss.data())[0];
      loss.dispose();
      return { loss: value };
    },
    dispose() {
      for (const t of [data, labels, weights, bias]) t.dispose();
    },
  };
  return task;
}
