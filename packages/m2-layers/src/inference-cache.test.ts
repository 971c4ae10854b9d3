// The inference cache (transposed / per-block weights, filter spectra): rebuilt when weights change, never used
// under a gradient tape, freed with the weights. Checked against the golden tiny M2-BERT layer 0.
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { clearInferenceCache, loadTorchWeights, M2EncoderLayer } from './index.js';
import { fixtureTensor, readFixture, relativeL2 } from '../test/read-fixture.js';

const io = readFixture('tiny-mlm/io.safetensors');
const model = readFixture('tiny-mlm/model.safetensors');

describe('inference cache', () => {
  it('follows weight changes: random weights first, then the golden layer 0 loaded into the same layer', () => {
    const layer = new M2EncoderLayer({ modelDim: 64, maxLength: 32, intermediateDim: 256, filterOrder: 16, embDim: 5, name: 'cache_layer' });
    layer.build([null, 32, 64]);
    const h = fixtureTensor(io, 'embeddings_output') as tf.Tensor3D;
    const golden = fixtureTensor(io, 'layer_0_output');
    const before = layer.apply(h) as tf.Tensor; // fills the cache with the random weights' tensors
    expect(relativeL2(before, golden)).toBeGreaterThan(0.1);
    const { missing } = loadTorchWeights(layer, (key) => {
      const full = `bert.encoder.layer.0.${key}`;
      return model.has(full) ? fixtureTensor(model, full) : undefined;
    });
    expect(missing).toEqual([]);
    const after = layer.apply(h) as tf.Tensor;
    expect(relativeL2(after, golden)).toBeLessThan(1e-4);
    // A shorter input replaces the cached spectra; repeated calls keep the tensor count.
    const short = tf.slice(h, [0, 0, 0], [-1, 20, -1]) as tf.Tensor3D;
    tf.dispose(layer.apply(short) as tf.Tensor);
    const count = tf.memory().numTensors;
    for (let i = 0; i < 2; i++) tf.dispose([layer.apply(short) as tf.Tensor, layer.apply(h) as tf.Tensor]);
    expect(tf.memory().numTensors).toBe(count);
    tf.dispose([before, after, short]);
    clearInferenceCache(); // frees the cached tensors
    expect(tf.memory().numTensors).toBeLessThan(count);
    layer.dispose();
  });

  it('is bypassed under a gradient tape, so the filter weights get gradients', () => {
    const layer = new M2EncoderLayer({ modelDim: 16, maxLength: 8, intermediateDim: 32, filterOrder: 8, embDim: 3, name: 'cache_grad' });
    const x = tf.randomNormal([1, 8, 16], 0, 1, 'float32', 3) as tf.Tensor3D;
    tf.dispose(layer.apply(x) as tf.Tensor); // cached tensors exist now
    const filterWeight = layer.trainableWeights.find((w) => w.originalName.includes('implicit_filter.0.weight'))!;
    // Not tf.sum of the output: the post-LayerNorm output sums to β·d per position whatever the weights, so that
    // gradient is zero up to round-off. A fixed random projection is not.
    const r = tf.randomNormal([1, 8, 16], 0, 1, 'float32', 4);
    const { grads } = tf.variableGrads(() => tf.sum(tf.mul(layer.apply(x) as tf.Tensor, r)) as tf.Scalar, [filterWeight.read() as tf.Variable]);
    const g = Object.values(grads)[0]!;
    expect(tf.max(tf.abs(g)).dataSync()[0]).toBeGreaterThan(0);
    tf.dispose([x, g, r]);
    layer.dispose();
  });
});
