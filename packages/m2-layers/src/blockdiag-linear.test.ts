import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, it } from 'vitest';
import { BlockdiagLinear, loadTorchWeights } from './index.js';
import { fixtureTensor, readFixture, relativeL2 } from '../test/read-fixture.js';

const golden = readFixture('monarch/blockdiag.safetensors');

describe('BlockdiagLinear', () => {
  it('has the right output shape and weight layout, also for padded sizes', () => {
    const layer = new BlockdiagLinear({ inFeatures: 90, outFeatures: 150 });
    const y = layer.apply(tf.ones([2, 5, 90])) as tf.Tensor;
    expect(y.shape).toEqual([2, 5, 150]);
    expect(layer.namedWeights().get('weight')!.shape).toEqual([4, 23, 38]);
    expect(layer.namedWeights().get('bias')!.shape).toEqual([150]);
    expect(layer.countParams()).toBe(4 * 23 * 38 + 150);
    expect(layer.blockWeightKeys()).toEqual(new Set(['weight']));
    tf.dispose([y]);
    layer.dispose();
  });

  it('matches the original BlockdiagLinear(90, 150) golden (pad case) and its dense matrix', () => {
    const layer = new BlockdiagLinear({ inFeatures: 90, outFeatures: 150 });
    layer.build([null, 90]);
    const { missing } = loadTorchWeights(layer, (key) => fixtureTensor(golden, `pad.${key}`));
    expect(missing).toEqual([]);
    const y = layer.apply(fixtureTensor(golden, 'pad.x')) as tf.Tensor;
    expect(relativeL2(y, fixtureTensor(golden, 'pad.y'))).toBeLessThan(1e-6);
    const dense = layer.toDense(); // [in, out]
    expect(relativeL2(dense, tf.transpose(fixtureTensor(golden, 'pad.dense')))).toBe(0);
  });

  it('initialises like the original: weight U(±√nb/√(nb·blockIn)), bias U(±1/√out)', () => {
    const layer = new BlockdiagLinear({ inFeatures: 768, outFeatures: 6144 });
    layer.build([null, 768]);
    const weight = layer.namedWeights().get('weight')!.read();
    const max = tf.max(tf.abs(weight)).dataSync()[0]!;
    expect(max).toBeLessThanOrEqual(2 / Math.sqrt(768)); // §1.3: bound 0.0722 for 768→6144
    expect(max).toBeGreaterThan(0.99 * (2 / Math.sqrt(768)));
    const bias = tf.max(tf.abs(layer.namedWeights().get('bias')!.read())).dataSync()[0]!;
    expect(bias).toBeLessThanOrEqual(1 / Math.sqrt(6144));
    layer.dispose();
  });

  it('has gradients equal to those of its dense matrix', () => {
    const layer = new BlockdiagLinear({ inFeatures: 10, outFeatures: 6, numBlocks: 2 });
    const x = tf.randomNormal([3, 10]);
    layer.build([null, 10]);
    const r = tf.randomNormal([3, 6]);
    const { grads } = tf.variableGrads(() => tf.sum(tf.mul(layer.apply(x) as tf.Tensor, r)) as tf.Scalar);
    // d/dW of Σ r⊙(x·D) with D = blockdiag(W): block k gets x_kᵀ·r_k.
    const weightGrad = grads[layer.namedWeights().get('weight')!.read().name]!;
    const xPad = tf.pad(x, [[0, 0], [0, 0]]);
    const expected = tf.stack([
      tf.matMul(tf.slice(xPad, [0, 0], [3, 5]), tf.slice(r, [0, 0], [3, 3]), true),
      tf.matMul(tf.slice(xPad, [0, 5], [3, 5]), tf.slice(r, [0, 3], [3, 3]), true),
    ]);
    expect(relativeL2(weightGrad, expected)).toBeLessThan(1e-6);
    expect(relativeL2(grads[layer.namedWeights().get('bias')!.read().name]!, tf.sum(r, 0))).toBeLessThan(1e-6);
    layer.dispose();
  });

  it('does not leak tensors across repeated calls', () => {
    const layer = new BlockdiagLinear({ inFeatures: 12, outFeatures: 20 });
    const x = tf.ones([2, 12]);
    tf.dispose(layer.apply(x) as tf.Tensor);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) tf.dispose(layer.apply(x) as tf.Tensor);
    expect(tf.memory().numTensors).toBe(before);
    layer.dispose();
  });

  it('round-trips getConfig → fromConfig', () => {
    const layer = new BlockdiagLinear({ inFeatures: 12, outFeatures: 20, numBlocks: 2, useBias: false, name: 'bd' });
    const copy = tfl.layers.Layer.fromConfig(BlockdiagLinear as never, layer.getConfig()) as BlockdiagLinear;
    expect(copy).toBeInstanceOf(BlockdiagLinear);
    expect(copy.getConfig()).toEqual(layer.getConfig());
  });

  it('rejects a wrong last dim with one line', () => {
    const layer = new BlockdiagLinear({ inFeatures: 12, outFeatures: 20 });
    expect(() => layer.apply(tf.ones([2, 13]))).toThrow(/^BlockdiagLinear '.*': input last dim must be inFeatures 12, got 13/);
    expect(() => new BlockdiagLinear({ inFeatures: 0, outFeatures: 2 })).toThrow(/inFeatures must be a positive integer, got 0/);
  });
});
