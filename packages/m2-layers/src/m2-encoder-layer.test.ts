// M2EncoderLayer against layer 0 and layer 1 of the golden tiny M2-BERT (original BertForMaskedLM, bidirectional,
// residual long conv, GLU BlockdiagLinear MLP): weights loaded by key from model.safetensors.
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadTorchWeights, M2EncoderLayer, M2SequenceMixer } from './index.js';
import { fixtureTensor, readFixture, relativeL2 } from '../test/read-fixture.js';

const io = readFixture('tiny-mlm/io.safetensors');
const model = readFixture('tiny-mlm/model.safetensors');
const TOL = 1e-4;

function goldenLayer(index: number): M2EncoderLayer {
  const layer = new M2EncoderLayer({ modelDim: 64, maxLength: 32, intermediateDim: 256, filterOrder: 16, embDim: 5, name: `golden_layer_${index}` });
  layer.build([null, 32, 64]);
  const prefix = `bert.encoder.layer.${index}.`;
  const { missing } = loadTorchWeights(layer, (key) => (model.has(prefix + key) ? fixtureTensor(model, prefix + key) : undefined));
  expect(missing).toEqual([]);
  return layer;
}

describe('M2EncoderLayer vs the golden tiny M2-BERT', () => {
  let layers: M2EncoderLayer[];
  beforeAll(() => {
    layers = [goldenLayer(0), goldenLayer(1)];
  });
  afterAll(() => layers.forEach((layer) => layer.dispose()));

  it('lists every original key of a layer', () => {
    const keys = [...model.keys()].filter((key) => key.startsWith('bert.encoder.layer.0.')).map((key) => key.slice('bert.encoder.layer.0.'.length));
    expect([...layers[0]!.namedWeights().keys()].sort()).toEqual(keys.sort());
  });

  it('reproduces layer 0’s forward and reverse kernels of both filters', () => {
    const { filterFn, filterFn2 } = layers[0]!.attention.filterKernels(32);
    expect(relativeL2(filterFn.forward, fixtureTensor(io, 'layer_0_filter_fn_k_fwd'))).toBeLessThan(TOL);
    expect(relativeL2(filterFn.reverse!, fixtureTensor(io, 'layer_0_filter_fn_k_rev'))).toBeLessThan(TOL);
    expect(relativeL2(filterFn2!.forward, fixtureTensor(io, 'layer_0_filter_fn2_k_fwd'))).toBeLessThan(TOL);
    expect(relativeL2(filterFn2!.reverse!, fixtureTensor(io, 'layer_0_filter_fn2_k_rev'))).toBeLessThan(TOL);
  });

  it('reproduces the mixer and layer outputs of layers 0 and 1', () => {
    let h = fixtureTensor(io, 'embeddings_output') as tf.Tensor3D;
    for (const [i, layer] of layers.entries()) {
      const mixed = layer.attention.apply(h) as tf.Tensor;
      expect(relativeL2(mixed, fixtureTensor(io, `layer_${i}_mixer_output`)), `layer ${i} mixer`).toBeLessThan(TOL);
      h = layer.apply(h) as tf.Tensor3D;
      expect(relativeL2(h, fixtureTensor(io, `layer_${i}_output`)), `layer ${i} output`).toBeLessThan(TOL);
    }
  });

  it('keeps dropout off at inference and on in training', () => {
    const h = fixtureTensor(io, 'embeddings_output');
    const a = layers[0]!.apply(h) as tf.Tensor;
    const b = layers[0]!.apply(h, { training: true }) as tf.Tensor;
    expect(relativeL2(a, fixtureTensor(io, 'layer_0_output'))).toBeLessThan(TOL);
    expect(relativeL2(b, a)).toBeGreaterThan(1e-3);
  });

  it('applies the 80M model’s mixer pre-LayerNorm (eps 1e-5) before everything else, residual conv included', () => {
    // A pre-norm mixer with layer 0's weights and a random affine LayerNorm must equal the golden-checked plain
    // mixer applied to LN(u), with LN computed here in float64.
    const mixer = new M2SequenceMixer({ modelDim: 64, maxLength: 32, bidirectional: true, preNorm: true, filterOrder: 16 });
    mixer.build([null, 32, 64]);
    const gamma = Array.from({ length: 64 }, (_, i) => 1 + 0.1 * Math.sin(i));
    const beta = Array.from({ length: 64 }, (_, i) => 0.1 * Math.cos(3 * i));
    const prefix = 'bert.encoder.layer.0.attention.';
    const { missing } = loadTorchWeights(mixer, (key) => {
      if (key === 'layernorm.weight') return tf.tensor1d(gamma);
      if (key === 'layernorm.bias') return tf.tensor1d(beta);
      return model.has(prefix + key) ? fixtureTensor(model, prefix + key) : undefined;
    });
    expect(missing).toEqual([]);
    const u = fixtureTensor(io, 'embeddings_output');
    const rows = u.arraySync() as number[][][];
    const normed = rows.map((seq) =>
      seq.map((row) => {
        const mean = row.reduce((a, b) => a + b, 0) / row.length;
        const variance = row.reduce((a, b) => a + (b - mean) ** 2, 0) / row.length;
        return row.map((x, i) => ((x - mean) / Math.sqrt(variance + 1e-5)) * gamma[i]! + beta[i]!);
      }),
    );
    const expected = layers[0]!.attention.apply(tf.tensor3d(normed)) as tf.Tensor;
    expect(relativeL2(mixer.apply(u) as tf.Tensor, expected)).toBeLessThan(1e-5);
    mixer.dispose();
  });
});
