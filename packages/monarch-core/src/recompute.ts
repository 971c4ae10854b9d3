// Activation recomputation ("gradient checkpointing", Chen et al. 2016, arXiv:1604.06174): a block's forward pass runs
// without a gradient tape, so the tape of a training step keeps only the block's input; the backward pass runs the
// block again under its own tape and back-propagates through that. Memory per block drops from every intermediate
// activation (an M2-BERT-base layer at L = 2048 saves ~1 GB on tfjs-cpu) to one [B, L, d] input, for the price of one
// more forward pass.
//
// tfjs has no such op. It is built from tf.customGrad, whose forward function runs with the tape off, and an inner
// ENGINE.gradients call in the gradient function. Two engine details make that safe:
// - A top-level gradients call replaces the engine's active tape and sets it to null when done. The outer
//   backward pass still needs it (it frees the saved tensors of its own tape at the end), so it is put back.
// - Dropout must draw the same mask twice: inside a recomputed block, {@link replayableDropout} seeds each call from a seed
//   drawn once per forward pass.
import type { Tensor, Variable } from '@tensorflow/tfjs-core';
import * as tf from '@tensorflow/tfjs-core';
import { recordingGradients } from './blockdiag.js';

interface EngineInternals {
  state: { activeTape: unknown[] | null };
  gradients(f: () => Tensor, xs: Tensor[], dy?: Tensor, allowNoGradients?: boolean): { value: Tensor; grads: (Tensor | undefined)[] };
}

/** The seed scope of the recomputed block being run: dropout call k inside it uses seed `${base}:${k}`. */
let seedScope: { base: number; calls: number } | undefined;

function withSeedScope<T>(base: number, run: () => T): T {
  const outer = seedScope;
  seedScope = { base, calls: 0 };
  try {
    return run();
  } finally {
    seedScope = outer;
  }
}

/**
 * tf.dropout that draws the same mask when a recomputed block runs again: inside {@link recomputed} each call takes
 * the next seed of the block's forward pass; elsewhere it is plain tf.dropout.
 *
 * Shapes: x [...] → [...].
 * @param x - Activations.
 * @param rate - Probability of zeroing an element, in [0, 1).
 * @returns x with elements zeroed at `rate` and the rest scaled by 1 / (1 − rate).
 */
export function replayableDropout<T extends Tensor>(x: T, rate: number): T {
  if (seedScope === undefined) return tf.dropout(x, rate) as T;
  const seed = `${seedScope.base}:${seedScope.calls}`;
  seedScope.calls += 1;
  return tf.dropout(x, rate, undefined, seed) as T;
}

/**
 * Runs `block(x)` with activation recomputation when a gradient tape is recording (tf.grad, tf.variableGrads,
 * optimizer.minimize): the tape keeps x only, and the backward pass runs the block again to get its gradients with
 * respect to x and to `variables`. Outside a tape it is plain `block(x)`. Results and gradients are those of
 * `block(x)` (the same float32 operations in the same order).
 *
 * The block must be a pure function of x and the variables it lists (no other trainable state; dropout through
 * {@link replayableDropout}). Variables it reads but does not list receive no gradient.
 *
 * Shapes: x [...] → block's output.
 * @param block - The block's forward pass.
 * @param x - Its input.
 * @param variables - The trainable variables the block reads (others, and non-trainable ones, are skipped).
 * @returns block(x).
 * @see arXiv:1604.06174 (training deep nets with sublinear memory cost).
 * @example
 * const { grads } = tf.variableGrads(() => tf.sum(recomputed((h) => layer.forward(h), x, layerVariables)));
 */
export function recomputed<I extends Tensor, O extends Tensor = I>(block: (x: I) => O, x: I, variables: readonly Variable[]): O {
  if (!recordingGradients()) return block(x);
  const trainable = [...new Set(variables)].filter((v) => v.trainable);
  const seed = Math.floor(Math.random() * 2 ** 31);
  const run = (input: I) => withSeedScope(seed, () => block(input));
  const op = tf.customGrad((...args: (Tensor | tf.GradSaveFunc)[]) => {
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const input = args[0] as I;
    save([input]);
    return {
      value: run(input),
      gradFunc: (dy: Tensor | Tensor[], saved: Tensor[]) => {
        const engine = tf.engine() as unknown as EngineInternals;
        const outerTape = engine.state.activeTape;
        try {
          const saveInput = saved[0] as I;
          const { value, grads } = engine.gradients(() => run(saveInput), [saveInput, ...trainable], dy as Tensor, true);
          value.dispose();
          return grads.map((g, i) => g ?? tf.zerosLike(i === 0 ? saveInput : trainable[i - 1]!));
        } finally {
          engine.state.activeTape = outerTape;
        }
      },
    };
  });
  return op(x, ...trainable) as O;
}
