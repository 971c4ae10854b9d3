// Child process for plain-Node tests (no vitest): sets up the backend named in argv[2] through setupBackend,
// then prints one JSON line with a gradient, a chained-op result and an embedding (gather) gradient.
import * as tf from '@tensorflow/tfjs-core';
import { setupBackend } from '../setup-backend.js';
import type { BackendName } from '../setup-backend.js';

const info = await setupBackend(process.argv[2] as BackendName, { threads: Number(process.argv[3] ?? 1) });
const grad = tf.grad((x: tf.Tensor) => tf.sum(tf.square(x)))(tf.tensor([1, -2, 3]));
const chained = (tf.tensor([[1, 2], [3, 4]]) as unknown as { sum(): tf.Tensor }).sum();
const table = tf.tensor2d([[1, 2], [3, 4], [5, 6]]);
const ids = tf.tensor1d([2, 0, 2], 'int32');
const embeddingGrad = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.gather(t, ids), tf.tensor2d([[1, 2], [3, 4], [5, 6]]))))(table);
process.stdout.write(`${JSON.stringify({
  info,
  grad: Array.from(grad.dataSync()),
  chained: chained.dataSync()[0],
  embeddingGrad: Array.from(embeddingGrad.dataSync()),
})}\n`);
