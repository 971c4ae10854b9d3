// Next-token selection for generation: a seeded PRNG and the usual logit processors (repetition penalty,
// temperature, top-k, top-p), all on a plain Float32Array of V logits so that they are exact and reproducible.
import { InvalidArgumentError, Mulberry32, mixSeed } from '@monarch-mixer/monarch-core';

/** Options that choose the next token from the logits. */
export interface SamplingOptions {
  /** Softmax temperature; 0 means greedy (argmax). Default 1. */
  temperature?: number;
  /** Keep only the k most likely tokens (k ≥ 1). Default: all. */
  topK?: number;
  /** Nucleus sampling: keep the smallest set of tokens whose probability sums to ≥ p, p in (0, 1]. Default 1. */
  topP?: number;
  /** CTRL-style penalty θ ≥ 1 on tokens already in the context: logit/θ if positive, logit·θ if negative. Default 1. */
  repetitionPenalty?: number;
  /** Seed of the PRNG (an integer). Default 0. Same seed, model and prompt → same tokens. */
  seed?: number;
}

/** {@link SamplingOptions} with every field filled in. */
export type ResolvedSamplingOptions = Required<Omit<SamplingOptions, 'topK'>> & { topK: number | undefined };

/**
 * Validates sampling options and fills in defaults.
 * @throws InvalidArgumentError (one line) for temperature < 0, top-k < 1 or non-integer, top-p outside (0, 1],
 * repetition penalty < 1 (or not finite), or a non-integer seed.
 * @example
 * resolveSamplingOptions({ topK: 40 }); // → { temperature: 1, topK: 40, topP: 1, repetitionPenalty: 1, seed: 0 }
 */
export function resolveSamplingOptions(options: SamplingOptions = {}): ResolvedSamplingOptions {
  const { temperature = 1, topK, topP = 1, repetitionPenalty = 1, seed = 0 } = options;
  if (!Number.isFinite(temperature) || temperature < 0) {
    throw new InvalidArgumentError(`generate: temperature must be a finite number ≥ 0 (0 = greedy), got ${temperature}.`, {
      parameter: 'temperature',
      value: temperature,
    });
  }
  if (topK !== undefined && (!Number.isInteger(topK) || topK < 1)) {
    throw new InvalidArgumentError(`generate: topK must be an integer ≥ 1, got ${topK}.`, { parameter: 'topK', value: topK });
  }
  if (!(topP > 0 && topP <= 1)) {
    throw new InvalidArgumentError(`generate: topP must be in (0, 1], got ${topP}.`, { parameter: 'topP', value: topP });
  }
  if (!Number.isFinite(repetitionPenalty) || repetitionPenalty < 1) {
    throw new InvalidArgumentError(`generate: repetitionPenalty must be a finite number ≥ 1, got ${repetitionPenalty}.`, {
      parameter: 'repetitionPenalty',
      value: repetitionPenalty,
    });
  }
  if (!Number.isSafeInteger(seed)) {
    throw new InvalidArgumentError(`generate: seed must be an integer, got ${seed}.`, { parameter: 'seed', value: seed });
  }
  return { temperature, topK, topP, repetitionPenalty, seed };
}

/**
 * A small seeded PRNG (monarch-core's {@link Mulberry32} stream started from {@link mixSeed}`(seed)`): uniform floats
 * in [0, 1), identical on every platform and backend.
 * @example
 * const rng = new SeededRandom(42); rng.next(); // → the same number on every run
 */
export class SeededRandom extends Mulberry32 {
  /** @param seed - Any safe integer; both 32-bit halves are mixed in. */
  constructor(seed: number) {
    super(mixSeed(seed));
  }
}

/**
 * Picks the next token id from one row of logits.
 *
 * Order: repetition penalty (on ids in `context`) → greedy if temperature is 0 → divide by temperature → softmax
 * → top-k → top-p → draw with `rng`. Ties in greedy go to the lowest id.
 *
 * Shapes: logits [V].
 * @param logits - Next-token logits (not modified).
 * @param options - Resolved options ({@link resolveSamplingOptions}).
 * @param rng - The generator's PRNG (advanced by one draw unless greedy).
 * @param context - Ids seen so far (prompt + generated), for the repetition penalty.
 * @returns The chosen id.
 * @example
 * sampleNextToken(Float32Array.of(0, 3, 1), resolveSamplingOptions({ temperature: 0 }), new SeededRandom(0), []); // → 1
 */
export function sampleNextToken(
  logits: Float32Array,
  options: ResolvedSamplingOptions,
  rng: SeededRandom,
  context: readonly number[] = [],
): number {
  const scores = Float64Array.from(logits);
  if (options.repetitionPenalty !== 1) {
    for (const id of new Set(context)) {
      if (id < 0 || id >= scores.length) continue;
      scores[id] = scores[id] > 0 ? scores[id] / options.repetitionPenalty : scores[id] * options.repetitionPenalty;
    }
  }
  if (options.temperature === 0) return argmax(scores);

  // Candidates, most likely first (lowest id first on ties), and the softmax normaliser `total`: over the top-k
  // set with top-k (renormalised), else over all V. Top-p needs its candidates sorted, but only those above a
  // weight threshold that already holds ≥ topP of the mass, so it never sorts all V ids.
  const n = scores.length;
  const T = options.temperature;
  const byScore = (a: number, b: number) => scores[b]! - scores[a]! || a - b;
  let order: number[];
  let max: number;
  let total = 0;
  if (options.topK !== undefined && options.topK < n) {
    const threshold = Float64Array.from(scores).sort()[n - options.topK]!;
    const above: number[] = [];
    for (let id = 0; id < n; id++) if (scores[id]! >= threshold) above.push(id);
    order = above.sort(byScore).slice(0, options.topK);
    max = scores[order[0]!]!;
    for (const id of order) total += Math.exp((scores[id]! - max) / T);
  } else {
    max = -Infinity;
    for (let id = 0; id < n; id++) max = Math.max(max, scores[id]!);
    const weights = new Float64Array(n);
    for (let id = 0; id < n; id++) total += weights[id] = Math.exp((scores[id]! - max) / T);
    if (options.topP < 1) {
      // The nucleus's smallest weight, from a native numeric sort of the weights (fast), then only the ids at or
      // above it are sorted with the comparator.
      const sortedWeights = Float64Array.from(weights).sort().reverse();
      let tau = 0;
      let mass = 0;
      for (const w of sortedWeights) {
        mass += w;
        tau = w;
        if (mass >= options.topP * total) break;
      }
      order = [];
      for (let id = 0; id < n; id++) if (weights[id]! >= tau) order.push(id);
      order.sort(byScore);
    } else {
      order = Array.from({ length: n }, (_, id) => id);
    }
  }
  const keep = order.length;
  const probs = new Float64Array(keep);
  for (let i = 0; i < keep; i++) probs[i] = Math.exp((scores[order[i]!]! - max) / T);
  // Nucleus: the shortest prefix whose mass (renormalised after top-k) reaches topP.
  let cut = keep;
  if (options.topP < 1) {
    let cumulative = 0;
    for (let i = 0; i < keep; i++) {
      cumulative += probs[i]! / total;
      if (cumulative >= options.topP) {
        cut = i + 1;
        break;
      }
    }
  }
  let mass = 0;
  for (let i = 0; i < cut; i++) mass += probs[i]!;
  let u = rng.next() * mass;
  for (let i = 0; i < cut; i++) {
    u -= probs[i]!;
    if (u < 0) return order[i]!;
  }
  return order[cut - 1]!;
}

function argmax(values: Float64Array): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}
