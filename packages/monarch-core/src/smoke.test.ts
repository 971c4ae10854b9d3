import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';

describe('tfjs set-up', () => {
  it('has gradients registered', () => {
    const g = tf.grad((x: tf.Tensor) => tf.sum(tf.square(tf.gather(x, [0, 1, 1]))));
    expect(Array.from(g(tf.tensor1d([1, 2, 3])).dataSync())).toEqual([2, 8, 0]);
  });
});
