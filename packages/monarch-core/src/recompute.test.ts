import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { causalConv } from './fft-conv.js';
import { recomputed, replayableDropout } from './recompute.js';
import { expectTensorsClose } from './testing.js';

// A small block with a long convolution, a nonlinearity and two weights: y = tanh(fftConv(x·W, k)) ⊙ x. [B, L, d] → [B, L, d]
function makeBlock(seed: number) {
  const w = tf.variable(tf.randomNormal([6, 6], 0, 0.4, 'float32', seed), true, `recompute_w_${seed}`);
  const k = tf.variable(tf.randomNormal([6, 16], 0, 0.3, 'float32', seed + 1), true, `recompute_k_${seed}`);
  const block = (x: tf.Tensor3D) =>
    tf.tidy(() => {
      const [B, L, d] = x.shape;
      const u = tf.transpose(tf.reshape(tf.matMul(tf.reshape(x, [B * L, d]), w), [B, L, d]), [0, 2, 1]); // [B, d, L]
      const conv = tf.transpose(causalConv(u, k), [0, 2, 1]) as tf.Tensor3D; // [B, L, d]
      return tf.mul(tf.tanh(conv), x) as tf.Tensor3D;
    });
  return { w, k, block, dispose: () => tf.dispose([w, k]) };
}

describe('recomputed', () => {
  it('gives the same outputs and gradients as the block on the tape, through two stacked blocks', () => {
    const a = makeBlock(1);
    const b = makeBlock(3);
    const x = tf.randomNormal([2, 16, 6], 0, 1, 'float32', 5) as tf.Tensor3D;
    const probe = tf.randomNormal([2, 16, 6], 0, 1, 'float32', 6);
    const variables = [a.w, a.k, b.w, b.k];
    const loss = (remat: boolean) => () => {
      const h1 = remat ? recomputed(a.block, x, [a.w, a.k]) : a.block(x);
      const h2 = remat ? recomputed(b.block, h1, [b.w, b.k]) : b.block(h1);
      return tf.sum(tf.mul(h2, probe)) as tf.Scalar;
    };
    const plain = tf.variableGrads(loss(false), variables);
    const before = tf.memory().numTensors;
    const remat = tf.variableGrads(loss(true), variables);
    expect(remat.value.dataSync()[0]).toBeCloseTo(plain.value.dataSync()[0]!, 5);
    for (const v of variables) expectTensorsClose(remat.grads[v.name]!, plain.grads[v.name]!, 1e-5, v.name);
    // Only the value and the four gradients are new: the outer tape's saved inputs were freed.
    expect(tf.memory().numTensors - before).toBe(1 + variables.length);
    tf.dispose([plain.value, remat.value, Object.values(plain.grads), Object.values(remat.grads), x, probe]);
    a.dispose();
    b.dispose();
  });

  it('passes the gradient to its input (tf.grad through x)', () => {
    const a = makeBlock(7);
    const x = tf.randomNormal([1, 16, 6], 0, 1, 'float32', 8) as tf.Tensor3D;
    const plain = tf.grad((input: tf.Tensor) => tf.sum(tf.square(a.block(input as tf.Tensor3D))))(x);
    const remat = tf.grad((input: tf.Tensor) => tf.sum(tf.square(recomputed(a.block, input as tf.Tensor3D, [a.w, a.k]))))(x);
    expectTensorsClose(remat, plain, 1e-5, 'dx');
    tf.dispose([plain, remat, x]);
    a.dispose();
  });

  it('replays the dropout mask of the forward pass in the backward pass', () => {
    const w = tf.variable(tf.fill([64, 64], 1.5), true, 'recompute_dropout_w');
    const x = tf.randomUniform([64, 64], 0.5, 1, 'float32', 9);
    let output: tf.Tensor | undefined;
    const { grads, value } = tf.variableGrads(() => {
      const y = recomputed((input: tf.Tensor) => replayableDropout(tf.mul(input, w), 0.5), x, [w]);
      output = tf.keep(y.clone());
      return tf.sum(y) as tf.Scalar;
    }, [w]);
    // y = x·w·mask / 0.5, so ∂Σy/∂w = y / w: true only if the backward pass drew the forward pass's mask.
    const zeros = tf.sum(tf.cast(tf.equal(output!, 0), 'float32')).dataSync()[0]!;
    expect(zeros).toBeGreaterThan(64 * 64 * 0.4);
    expect(zeros).toBeLessThan(64 * 64 * 0.6);
    expectTensorsClose(grads[w.name]!, tf.div(output!, w), 1e-6, 'dropout gradient');
    tf.dispose([grads[w.name]!, value, output!, w, x]);
  });

  it('is the plain block outside a gradient tape', () => {
    const a = makeBlock(11);
    const x = tf.randomNormal([1, 16, 6], 0, 1, 'float32', 12) as tf.Tensor3D;
    const before = tf.memory().numTensors;
    const y = recomputed(a.block, x, [a.w, a.k]);
    expectTensorsClose(y, a.block(x), 0, 'y');
    expect(tf.memory().numTensors - before).toBe(2);
    tf.dispose([x]);
    tf.disposeVariables();
  });
});
