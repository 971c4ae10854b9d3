/**
 * Test helpers of `@monarch-mixer/m2-layers`, for this package's tests and those of the models built on it.
 *
 * @packageDocumentation
 */
import * as tf from '@tensorflow/tfjs-core';

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
