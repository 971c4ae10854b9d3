// Small building blocks shared by M2-GPT and the attention baseline: embedding lookup with a gradient that
// every backend can run, the next-token loss, and seeded initial values (LayerNorm and GELU come from m2-layers).
import * as tf from '@tensorflow/tfjs-core';
import { SeededRandom } from './sampling.js';

/**
 * Embedding lookup `table[ids]` whose gradient is a scatter-add (`scatterND`), not `UnsortedSegmentSum`,
 * so it trains on wasm too (toolchain.md §2: wasm has no UnsortedSegmentSum).
 *
 * Shapes: table [V, d], ids [B, L] (int32) → [B, L, d]
 * @param table - The embedding matrix.
 * @param ids - Token ids in [0, V).
 * @example
 * embeddingLookup(tf.eye(4) as tf.Tensor2D, tf.tensor2d([[1, 3]], undefined, 'int32')).shape; // → [1, 2, 4]
 */
export function embeddingLookup(table: tf.Tensor2D, ids: tf.Tensor2D): tf.Tensor3D {
  const [batch, length] = ids.shape;
  const [vocab, dim] = table.shape;
  const flatIds = tf.reshape(ids, [batch * length]); // [B·L]
  const lookup = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const weights = args[0] as tf.Tensor;
    // Keep the ids through `save`: the forward pass of tf.grad/variableGrads runs in a tidy, so a tensor only
    // captured by the closure would be disposed before the gradient runs.
    (args[1] as tf.GradSaveFunc)([flatIds]);
    return {
      value: tf.reshape(tf.gather(weights, flatIds), [batch, length, dim]),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const indices = tf.reshape(saved[0], [batch * length, 1]); // [B·L, 1]
        return tf.scatterND(indices, tf.reshape(dy, [batch * length, dim]), [vocab, dim]); // duplicates are summed
      },
    };
  });
  const out = lookup(table) as tf.Tensor3D;
  flatIds.dispose();
  return out;
}

/**
 * Mean next-token cross-entropy in nats: position t predicts ids[t + 1]; the last position has no target.
 * Uses one-hot × log-softmax (no gather gradient needed, so it trains on every backend).
 *
 * Shapes: logits [B, L, V], ids [B, L] → scalar.
 * @example
 * nextTokenLoss(tf.zeros([1, 3, 10]) as tf.Tensor3D, ids); // → ln 10 ≈ 2.303 (uniform logits)
 */
export function nextTokenLoss(logits: tf.Tensor3D, ids: tf.Tensor2D): tf.Scalar {
  return tf.tidy(() => {
    const [batch, length, vocab] = logits.shape;
    const predictions = tf.slice(logits, [0, 0, 0], [batch, length - 1, vocab]); // [B, L−1, V]
    const targets = tf.slice(ids, [0, 1], [batch, length - 1]); // [B, L−1]
    const logProbs = tf.logSoftmax(tf.reshape(predictions, [-1, vocab])); // [B·(L−1), V]
    const oneHot = tf.oneHot(tf.reshape(targets, [-1]), vocab); // [B·(L−1), V]
    return tf.neg(tf.mean(tf.sum(tf.mul(oneHot, logProbs), -1))) as tf.Scalar;
  });
}

/** N(mean, std) samples from a seeded PRNG (Box–Muller). */
export function seededNormal(rng: SeededRandom, count: number, std: number, mean = 0): Float32Array {
  const out = new Float32Array(count);
  for (let i = 0; i < count; i += 2) {
    const u1 = 1 - rng.next();
    const u2 = rng.next();
    const radius = Math.sqrt(-2 * Math.log(u1));
    out[i] = mean + std * radius * Math.cos(2 * Math.PI * u2);
    if (i + 1 < count) out[i + 1] = mean + std * radius * Math.sin(2 * Math.PI * u2);
  }
  return out;
}

/** U(−bound, bound) samples from a seeded PRNG. */
export function seededUniform(rng: SeededRandom, count: number, bound: number): Float32Array {
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = (2 * rng.next() - 1) * bound;
  return out;
}

/** Rows per chunk of {@link tiedHeadCrossEntropy} ([1024, 50257] logits: 206 MB). */
export const HEAD_CHUNK_ROWS = 1024;

/**
 * Tied LM head: logits = h · Eᵀ, written as a plain matMul with an explicit transpose (wasm's fast matMul path
 * takes no transposed operands, toolchain.md §6). Shapes: h [N, d], embedding [V, d] → [N, V].
 */
export function tiedHead(h: tf.Tensor2D, embedding: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => tf.matMul(h, tf.transpose(embedding)));
}

/**
 * Mean cross-entropy of the tied LM head against `targets`, with a hand-written gradient so that every matMul runs
 * without transposed operands and no [N, V] tensor is kept for the backward pass; rows go through in chunks of
 * {@link HEAD_CHUNK_ROWS}, so no [N, V] tensor exists at all (at most [1024, V]).
 *
 * logits = h·Eᵀ; loss = mean(logsumexp(logits) − logits[target]). When a gradient tape is recording, the small
 * gradients dh = dlogits·E [N, d] and dE = (hᵀ·dlogits)ᵀ [V, d], with dlogits = (softmax − onehot)/N, are formed
 * right away and the [N, V] tensors are freed; the backward pass only scales them by dy. Without a tape (evaluation)
 * only the loss is computed. On wasm this is about 10× faster than autodiff of `logSoftmax` over a transposed matMul.
 *
 * Shapes: h [N, d], embedding [V, d], targets [N] int32 → scalar (nats).
 * @example
 * const { value, grads } = tf.variableGrads(() => tiedHeadCrossEntropy(h, model.embedding, targets));
 */
export function tiedHeadCrossEntropy(h: tf.Tensor2D, embedding: tf.Tensor2D, targets: tf.Tensor1D): tf.Scalar {
  const [count] = h.shape;
  const vocab = embedding.shape[0];
  // Peak memory matters here ([N, V] is ~200 MB at N = 1020, V = 50257): the rows go through in chunks of
  // HEAD_CHUNK_ROWS, so at most one chunk's [rows, V] tensors exist at a time, each freed as soon as possible.
  const chunks = Array.from({ length: Math.ceil(count / HEAD_CHUNK_ROWS) }, (_, i) => [i * HEAD_CHUNK_ROWS, Math.min(HEAD_CHUNK_ROWS, count - i * HEAD_CHUNK_ROWS)] as const);
  /** Σ CE of `rows` rows from `start`, and with a tape their exp(logits − max) [rows, V] and row sums [rows, 1]. */
  const chunkLoss = (hidden: tf.Tensor, table: tf.Tensor, labels: tf.Tensor, start: number, rows: number, keepSoftmax: boolean) =>
    tf.tidy(() => {
      const logits = tiedHead(tf.slice(hidden, [start, 0], [rows, -1]) as tf.Tensor2D, table as tf.Tensor2D); // [rows, V]
      const max = tf.max(logits, -1, true); // [rows, 1]
      const offsets = tf.mul(tf.range(0, rows, 1, 'int32'), tf.scalar(vocab, 'int32'));
      const picked = tf.gather(tf.reshape(logits, [-1]), tf.add(offsets, tf.slice(labels, [start], [rows]))); // [rows]
      const shifted = tf.sub(logits, max);
      logits.dispose();
      const exps = tf.exp(shifted); // [rows, V], the only exp over [rows, V]
      shifted.dispose();
      const sums = tf.sum(exps, -1, true); // [rows, 1]
      const lse = tf.add(tf.reshape(max, [-1]), tf.log(tf.reshape(sums, [-1]))); // [rows]
      const sum = tf.sum(tf.sub(lse, picked)) as tf.Scalar;
      if (!keepSoftmax) {
        exps.dispose();
        return { sum };
      }
      return { sum, exps, sums };
    });
  const recording = (tf.engine() as unknown as { isTapeOn(): boolean }).isTapeOn();
  if (!recording) {
    return tf.tidy(() => tf.div(tf.addN(chunks.map(([start, rows]) => chunkLoss(h, embedding, targets, start, rows, false).sum)), count) as tf.Scalar);
  }
  const fused = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [hidden, table, labels] = args as tf.Tensor[];
    const save = args[3] as tf.GradSaveFunc;
    const { value, dh, dE } = tf.tidy(() => {
      const sums: tf.Tensor[] = [];
      const dhs: tf.Tensor[] = [];
      let dE: tf.Tensor = tf.zerosLike(table!); // [V, d]
      for (const [start, rows] of chunks) {
        const part = chunkLoss(hidden!, table!, labels!, start, rows, true);
        sums.push(part.sum);
        const dlogits = tf.tidy(() => {
          const probs = tf.div(part.exps!, part.sums!); // [rows, V]
          part.exps!.dispose();
          const oneHot = tf.oneHot(tf.slice(labels!, [start], [rows]) as tf.Tensor1D, vocab);
          return tf.div(tf.sub(probs, oneHot), count); // [rows, V]: (softmax − onehot)/N
        });
        dhs.push(tf.matMul(dlogits, table!)); // [rows, d]
        const next = tf.add(dE, tf.transpose(tf.matMul(tf.transpose(tf.slice(hidden!, [start, 0], [rows, -1])), dlogits))); // [V, d]
        tf.dispose([dE, dlogits]);
        dE = next;
      }
      return { value: tf.div(tf.addN(sums), count) as tf.Scalar, dh: dhs.length === 1 ? dhs[0]! : tf.concat(dhs, 0), dE };
    });
    save([dh, dE, labels!]);
    return {
      value,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [gh, gE, ts] = saved as [tf.Tensor, tf.Tensor, tf.Tensor];
        return [tf.mul(gh, dy), tf.mul(gE, dy), tf.zerosLike(ts)];
      },
    };
  });
  return tf.tidy(() => fused(h, embedding, targets) as tf.Scalar);
}

/**
 * Mean next-token cross-entropy from final hidden states through the tied head ({@link tiedHeadCrossEntropy}):
 * position t predicts ids[t + 1]. Shapes: hidden [B, L, d], embedding [V, d], ids [B, L] → scalar.
 * @example
 * nextTokenLossFromHidden(model.hidden(ids), embedding, ids).dataSync()[0]; // → mean NLL in nats
 */
export function nextTokenLossFromHidden(hidden: tf.Tensor3D, embedding: tf.Tensor2D, ids: tf.Tensor2D): tf.Scalar {
  return tf.tidy(() => {
    const [batch, length, dim] = hidden.shape;
    const inputs = tf.reshape(tf.slice(hidden, [0, 0, 0], [batch, length - 1, dim]), [-1, dim]); // [B·(L−1), d]
    const targets = tf.reshape(tf.slice(ids, [0, 1], [batch, length - 1]), [-1]); // [B·(L−1)]
    return tiedHeadCrossEntropy(inputs as tf.Tensor2D, embedding, targets as tf.Tensor1D);
  });
}

let variableCounter = 0;
/** A tfjs variable name that is unique in this engine (tfjs rejects duplicates): `prefix/name_N`. */
export function uniqueVariableName(prefix: string, name: string): string {
  variableCounter += 1;
  return `${prefix}/${name}_${variableCounter}`;
}

/** A trainable variable holding `values` (the temporary initial tensor is freed). */
export function variableFrom(values: Float32Array, shape: number[], name: string): tf.Variable {
  const initial = tf.tensor(values, shape, 'float32');
  const variable = tf.variable(initial, true, name);
  initial.dispose();
  return variable;
}

/** Runs `hidden` on one sequence and applies the tied head to its last position only. Shapes: [t] → [V] (a tensor). */
export function lastPositionLogits(
  hidden: (ids: tf.Tensor2D) => tf.Tensor3D,
  embedding: tf.Tensor,
  ids: readonly number[],
): tf.Tensor1D {
  return tf.tidy(() => {
    const h = hidden(tf.tensor2d([...ids], [1, ids.length], 'int32')); // [1, t, d]
    const d = h.shape[2];
    const last = tf.reshape(tf.slice(h, [0, ids.length - 1, 0], [1, 1, d]), [1, d]); // [1, d]
    return tf.reshape(tf.matMul(last, embedding, false, true), [-1]) as tf.Tensor1D; // [V]
  });
}

/** Reads a tensor's values synchronously, then disposes it. Not on webgpu in Node: use {@link takeValuesAsync}. */
export function takeValues(t: tf.Tensor): Float32Array {
  try {
    return t.dataSync() as Float32Array;
  } finally {
    t.dispose();
  }
}

/** Reads a tensor's values asynchronously (every backend, webgpu in Node included), then disposes it. */
export async function takeValuesAsync(t: tf.Tensor): Promise<Float32Array> {
  try {
    return (await t.data()) as Float32Array;
  } finally {
    t.dispose();
  }
}
