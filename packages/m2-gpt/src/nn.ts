// Small building blocks shared by M2-GPT and the attention baseline: embedding lookup with a gradient that
// every backend can run, LayerNorm, exact GELU, the next-token loss, and seeded initial values.
import * as tf from '@tensorflow/tfjs-core';
import { SeededRandom } from './sampling.js';

/**
 * Embedding lookup `table[ids]` whose gradient is a scatter-add (`scatterND`), not `UnsortedSegmentSum`,
 * so it trains on wasm too (toolchain.md §2: wasm has no UnsortedSegmentSum).
 *
 * Shapes: table [V, d], ids [B, L] (int32) → [B, L, d]
 */
export function embeddingLookup(table: tf.Tensor2D, ids: tf.Tensor2D): tf.Tensor3D {
  const [batch, length] = ids.shape;
  const [vocab, dim] = table.shape;
  const flatIds = tf.reshape(ids, [batch * length]); // [B·L]
  const lookup = tf.customGrad((weights: tf.Tensor, save: tf.GradSaveFunc) => {
    save([]);
    return {
      value: tf.reshape(tf.gather(weights, flatIds), [batch, length, dim]),
      gradFunc: (dy: tf.Tensor) => {
        const indices = tf.reshape(flatIds, [batch * length, 1]); // [B·L, 1]
        return tf.scatterND(indices, tf.reshape(dy, [batch * length, dim]), [vocab, dim]); // duplicates are summed
      },
    };
  });
  const out = lookup(table) as tf.Tensor3D;
  flatIds.dispose();
  return out;
}

/** LayerNorm over the last axis: (x − mean) / √(var + eps) · gamma + beta. Shapes: x [..., d], gamma/beta [d]. */
export function layerNorm(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, eps: number): tf.Tensor {
  return tf.tidy(() => {
    const { mean, variance } = tf.moments(x, -1, true);
    return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps))), gamma), beta);
  });
}

/** Exact (erf) GELU built from primitive ops (no backend has a Gelu kernel). */
export function gelu(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => tf.mul(tf.mul(x, 0.5), tf.add(1, tf.erf(tf.mul(x, Math.SQRT1_2)))));
}

/**
 * Mean next-token cross-entropy in nats: position t predicts ids[t + 1]; the last position has no target.
 * Uses one-hot × log-softmax (no gather gradient needed, so it trains on every backend).
 *
 * Shapes: logits [B, L, V], ids [B, L] → scalar.
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
