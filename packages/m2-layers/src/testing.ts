/**
 * Test helpers of `@monarch-mixer/m2-layers`, for this package's tests and those of the models built on it.
 *
 * @packageDocumentation
 */
import * as tf from '@tensorflow/tfjs-core';
import { clearDftCache, clearMonarchCache } from '@monarch-mixer/monarch-core';

/** One weight's directional-derivative comparison from {@link directionalGradientCheck}. */
export interface DirectionalGradient {
  /** The weight's name (the map key given). */
  name: string;
  /** Central difference (f(w + εv) − f(w − εv)) / 2ε along a random direction v. */
  numeric: number;
  /** ⟨∇f, v⟩ from tf.variableGrads; NaN if tfjs gave no gradient for the weight. */
  analytic: number;
}

/**
 * Compares tf.variableGrads with central finite differences, one random direction per weight, in float32.
 * Each shared variable is checked once. The loss must be deterministic (no dropout).
 *
 * Shapes: loss() → scalar; each weight any shape.
 * @param loss - The loss as a function of the current weights.
 * @param weights - Name → trainable variable (e.g. from an M2 layer's `namedWeights()`, values read).
 * @param options - `epsilon` (default 1e-2), `seed` of the directions (default 1).
 * @returns One entry per distinct variable: compare `numeric` with `analytic` (relative ~1e-2 in float32).
 * @example
 * const checks = directionalGradientCheck(() => tf.sum(layer.apply(x)), new Map([['w', v]]));
 */
export function directionalGradientCheck(
  loss: () => tf.Scalar,
  weights: Map<string, tf.Variable>,
  options: { epsilon?: number; seed?: number } = {},
): DirectionalGradient[] {
  const epsilon = options.epsilon ?? 1e-2;
  const seed = options.seed ?? 1;
  const distinct = new Map<tf.Variable, string>();
  for (const [name, variable] of weights) if (variable.trainable && !distinct.has(variable)) distinct.set(variable, name);
  const variables = [...distinct.keys()];
  const { value, grads } = tf.variableGrads(loss, variables);
  value.dispose();
  const results: DirectionalGradient[] = [];
  variables.forEach((variable, i) => {
    const direction = tf.randomNormal(variable.shape, 0, 1, 'float32', seed + i);
    const original = tf.clone(variable);
    const at = (sign: number) => {
      tf.tidy(() => variable.assign(tf.add(original, tf.mul(direction, sign * epsilon))));
      return tf.tidy(() => loss().dataSync()[0]!);
    };
    const numeric = (at(1) - at(-1)) / (2 * epsilon);
    variable.assign(original);
    const grad = grads[variable.name];
    const analytic = grad ? tf.tidy(() => tf.sum(tf.mul(grad, direction)).dataSync()[0]!) : Number.NaN;
    results.push({ name: distinct.get(variable)!, numeric, analytic });
    tf.dispose([direction, original]);
  });
  tf.dispose(Object.values(grads));
  return results;
}

/** One variable's gradient gap from {@link relativeGradientGaps}. */
export interface GradientGap {
  /** The variable's name (`tf.Variable.name`, the key of tf.variableGrads' `grads`). */
  name: string;
  /** max |got − want| / max(1e-6, max |want|) over the variable's gradient. */
  gap: number;
}

/**
 * Compares two sets of gradients of the same variables (e.g. with and without gradient checkpointing), each
 * relative to the largest entry of the reference gradient, so that tiny gradients are not judged absolutely.
 * Creates no lasting tensors.
 *
 * Shapes: `got[v.name]` and `want[v.name]` have the shape of `v`.
 * @param got - Gradients to check, by variable name (tf.variableGrads' `grads`).
 * @param want - Reference gradients, by variable name.
 * @param variables - The variables to compare, in order.
 * @returns One gap per variable: assert each below the tolerance, e.g. `expect(gap, name).toBeLessThan(1e-5)`.
 * @throws Error when either map lacks a variable's gradient.
 * @example
 * for (const { name, gap } of relativeGradientGaps(remat.grads, plain.grads, variables)) expect(gap, name).toBeLessThan(1e-5);
 */
export function relativeGradientGaps(got: tf.NamedTensorMap, want: tf.NamedTensorMap, variables: readonly tf.Variable[]): GradientGap[] {
  return variables.map((v) => {
    const [a, b] = [got[v.name], want[v.name]];
    if (a === undefined || b === undefined) throw new Error(`relativeGradientGaps: no gradient for variable "${v.name}" in ${a === undefined ? 'got' : 'want'}.`);
    const [error, scale] = tf.tidy(() => [tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!, tf.max(tf.abs(b)).dataSync()[0]!]);
    return { name: v.name, gap: error / Math.max(1e-6, scale) };
  });
}

/**
 * The number of live tensors once monarch-core's caches of constant DFT and Monarch factors (filled on the first use
 * of a length, kept on purpose) are emptied: compare two such counts to see what a piece of code left behind.
 *
 * @returns `tf.memory().numTensors` after `clearDftCache()` and `clearMonarchCache()`.
 * @example
 * const before = tensorsWithoutCaches();
 * new M2Bert(config).dispose();
 * expect(tensorsWithoutCaches()).toBe(before);
 */
export function tensorsWithoutCaches(): number {
  clearDftCache();
  clearMonarchCache();
  return tf.memory().numTensors;
}

/** What {@link compareCheckpointedStep} measured of one training step with and without gradient checkpointing. */
export interface CheckpointedStepComparison {
  /** The loss of the plain step. */
  plainLoss: number;
  /** The loss of the step with gradient checkpointing. */
  rematLoss: number;
  /** Tensors the checkpointed step left alive (its loss and one gradient per variable when nothing leaks). */
  rematTensors: number;
  /** Each variable's checkpointed gradient against the plain one, from {@link relativeGradientGaps}. */
  gaps: GradientGap[];
}

/**
 * Runs one training step without and then with gradient checkpointing, counts the tensors the second one left,
 * compares losses and gradients, and disposes both steps' results.
 *
 * Shapes: step(…).value is a scalar; step(…).grads[v.name] has the shape of `v`.
 * @param step - One step's tf.variableGrads, with (`true`) or without (`false`) gradient checkpointing.
 * @param variables - The variables whose gradients are compared.
 * @returns The losses, the checkpointed step's tensor count and the gradient gaps, for the test to assert.
 * @example
 * const step = (gradientCheckpointing: boolean) => tf.variableGrads(() => model.loss(ids, { gradientCheckpointing }), variables);
 * const { rematTensors, gaps } = compareCheckpointedStep(step, variables);
 * expect(rematTensors).toBe(1 + variables.length);
 */
export function compareCheckpointedStep(
  step: (gradientCheckpointing: boolean) => { value: tf.Scalar; grads: tf.NamedTensorMap },
  variables: readonly tf.Variable[],
): CheckpointedStepComparison {
  const plain = step(false);
  const before = tf.memory().numTensors;
  const remat = step(true);
  const rematTensors = tf.memory().numTensors - before;
  try {
    return {
      plainLoss: plain.value.dataSync()[0]!,
      rematLoss: remat.value.dataSync()[0]!,
      rematTensors,
      gaps: relativeGradientGaps(remat.grads, plain.grads, variables),
    };
  } finally {
    tf.dispose([plain.value, remat.value, ...Object.values(plain.grads), ...Object.values(remat.grads)]);
  }
}
