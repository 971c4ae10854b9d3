import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { embeddingLookup, HEAD_CHUNK_ROWS, nextTokenLoss, nextTokenLossFromHidden, seededNormal } from './nn.js';
import { SeededRandom } from './sampling.js';

function maxRelDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0] / Math.max(1e-12, tf.max(tf.abs(b)).dataSync()[0]));
}

describe('fused tied-head loss and embedding gradient', () => {
  const rng = new SeededRandom(5);
  const [B, L, d, V] = [2, 7, 6, 13];
  const hidden = tf.tensor3d(seededNormal(rng, B * L * d, 1), [B, L, d]);
  const table = tf.tensor2d(seededNormal(rng, V * d, 1), [V, d]);
  const ids = tf.tensor2d([[1, 2, 3, 12, 0, 2, 2], [5, 5, 5, 7, 11, 0, 1]], undefined, 'int32');

  it('equals log-softmax cross-entropy and its autodiff gradients', () => {
    const reference = (h: tf.Tensor, e: tf.Tensor) =>
      nextTokenLoss(tf.reshape(tf.matMul(tf.reshape(h, [-1, d]), e, false, true), [B, L, V]) as tf.Tensor3D, ids);
    const fused = (h: tf.Tensor, e: tf.Tensor) => nextTokenLossFromHidden(h as tf.Tensor3D, e as tf.Tensor2D, ids);
    const [ref, got] = [reference(hidden, table), fused(hidden, table)];
    expect(Math.abs(got.dataSync()[0] - ref.dataSync()[0])).toBeLessThan(1e-5);
    const refGrads = tf.grads(reference)([hidden, table]);
    const gotGrads = tf.grads(fused)([hidden, table]);
    refGrads.forEach((g, i) => expect(maxRelDiff(gotGrads[i], g)).toBeLessThan(1e-5));
    tf.dispose([ref, got, ...refGrads, ...gotGrads]);
    const before = tf.memory().numTensors;
    tf.dispose(tf.grads(fused)([hidden, table]));
    expect(tf.memory().numTensors).toBe(before);
  });

  it('runs rows in HEAD_CHUNK_ROWS chunks: 2·1201 + 1 rows (3 chunks) give the unchunked loss and gradients', () => {
    const r = new SeededRandom(9);
    const [b, l, dim, vocab] = [2, 1202, 4, 11];
    expect(b * (l - 1)).toBeGreaterThan(2 * HEAD_CHUNK_ROWS);
    const h = tf.tensor3d(seededNormal(r, b * l * dim, 1), [b, l, dim]);
    const e = tf.tensor2d(seededNormal(r, vocab * dim, 1), [vocab, dim]);
    const longIds = tf.tensor2d(Int32Array.from({ length: b * l }, (_, i) => (i * 7) % vocab), [b, l], 'int32');
    const reference = (hh: tf.Tensor, ee: tf.Tensor) =>
      nextTokenLoss(tf.reshape(tf.matMul(tf.reshape(hh, [-1, dim]), ee, false, true), [b, l, vocab]) as tf.Tensor3D, longIds);
    const fused = (hh: tf.Tensor, ee: tf.Tensor) => nextTokenLossFromHidden(hh as tf.Tensor3D, ee as tf.Tensor2D, longIds);
    const [ref, got] = [reference(h, e), fused(h, e)];
    expect(Math.abs(got.dataSync()[0] - ref.dataSync()[0])).toBeLessThan(1e-5);
    const refGrads = tf.grads(reference)([h, e]);
    const gotGrads = tf.grads(fused)([h, e]);
    refGrads.forEach((g, i) => expect(maxRelDiff(gotGrads[i], g)).toBeLessThan(1e-5));
    tf.dispose([ref, got, ...refGrads, ...gotGrads, h, e, longIds]);
  });

  it('scatter-add gradient of the embedding equals the gather gradient (repeated ids summed)', () => {
    const upstream = tf.tensor3d(seededNormal(rng, B * L * d, 1), [B, L, d]);
    const idList = Array.from(ids.dataSync());
    const up = upstream.dataSync();
    const expected = new Float64Array(V * d); // grad[ids[i]] += upstream[i]
    idList.forEach((id, i) => { for (let j = 0; j < d; j++) expected[id * d + j] += up[i * d + j]; });
    const viaGather = tf.tensor2d(Float32Array.from(expected), [V, d]);
    const viaScatter = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(embeddingLookup(t as tf.Tensor2D, ids), upstream)))(table);
    expect(maxRelDiff(viaScatter, viaGather)).toBeLessThan(1e-6);
    tf.dispose([upstream, viaGather, viaScatter]);
  });
});
