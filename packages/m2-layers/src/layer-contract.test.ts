// What every M2 layer promises: config round trip, registered serialization (model.save / loadLayersModel),
// trainable weights vs buffers, no tensor leaks, gradients equal to finite differences, one-line shape errors.
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, it } from 'vitest';
import { BlockdiagLinear, GluMonarchMlp, HyenaFilter, M2CausalBlock, M2EncoderLayer, M2SequenceMixer } from './index.js';
import type { M2Layer } from './index.js';
import { relativeL2 } from '../test/read-fixture.js';
import { directionalGradientCheck } from './testing.js';

const tiny = { modelDim: 8, maxLength: 6, filterOrder: 4, embDim: 3, intermediateDim: 16 } as const;

const makers: [string, () => M2Layer, number[]][] = [
  ['BlockdiagLinear', () => new BlockdiagLinear({ inFeatures: 8, outFeatures: 12, numBlocks: 2 }), [2, 6, 8]],
  ['HyenaFilter', () => new HyenaFilter({ modelDim: 8, maxLength: 6, filterOrder: 4, bidirectional: true }), [2, 6, 8]],
  ['M2SequenceMixer', () => new M2SequenceMixer({ ...tiny, bidirectional: true, preNorm: true }), [2, 6, 8]],
  ['GluMonarchMlp', () => new GluMonarchMlp({ modelDim: 8, intermediateDim: 16, dropout: 0.1 }), [2, 6, 8]],
  ['M2EncoderLayer', () => new M2EncoderLayer({ ...tiny, dropout: 0, initializerRange: 0.02 }), [2, 6, 8]],
  ['M2CausalBlock', () => new M2CausalBlock({ ...tiny }), [2, 6, 8]],
];

describe.each(makers)('%s', (className, make, shape) => {
  it('round-trips getConfig → fromConfig → getConfig', () => {
    const layer = make();
    const cls = tf.serialization.SerializationMap.getMap().classNameMap[className]![0] as never;
    const copy = (layer.constructor as unknown as { fromConfig: (c: unknown, config: unknown) => M2Layer }).fromConfig(cls, layer.getConfig());
    expect(copy.getClassName()).toBe(className);
    expect(copy.getConfig()).toEqual(layer.getConfig());
  });

  it('does not grow tf.memory().numTensors across repeated apply', () => {
    const layer = make();
    const x = tf.randomNormal(shape);
    tf.dispose(layer.apply(x) as tf.Tensor);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) tf.dispose(layer.apply(x) as tf.Tensor);
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
    layer.dispose();
  });

  it('frees every tensor it made (weights and cached inference tensors) on dispose', () => {
    const x = tf.randomNormal(shape);
    const before = tf.memory().numTensors;
    const layer = make();
    tf.dispose(layer.apply(x) as tf.Tensor);
    tf.dispose(layer.apply(x) as tf.Tensor);
    layer.dispose();
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
  });

  it('keeps buffers out of the trainable weights but in the saved weights', () => {
    const layer = make();
    tf.dispose(layer.apply(tf.zeros(shape)) as tf.Tensor);
    const named = layer.namedWeights();
    const buffers = [...named.keys()].filter((key) => /pos_emb\.t$|modulation\.deltas$/.test(key));
    const trainable = new Set(layer.trainableWeights);
    const all = new Set(layer.weights);
    for (const key of buffers) {
      expect(trainable.has(named.get(key)!), key).toBe(false);
      expect(all.has(named.get(key)!), key).toBe(true);
    }
    expect(new Set(named.values())).toEqual(all); // namedWeights covers every weight exactly
    expect(layer.weights.length).toBe(all.size);
    layer.dispose();
  });
});

async function saveAndLoad(model: tfl.LayersModel): Promise<tfl.LayersModel> {
  let saved: tf.io.ModelArtifacts | undefined;
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      saved = artifacts;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  return tfl.loadLayersModel(tf.io.fromMemory(saved!));
}

describe('serialization inside tfjs models', () => {
  it('saves and loads a tf.sequential of M2 encoder layers (buffers included)', async () => {
    const model = tfl.sequential({
      layers: [new M2EncoderLayer({ ...tiny, dropout: 0, inputShape: [6, 8] }), new M2EncoderLayer({ ...tiny, dropout: 0, preNorm: true })],
    });
    // Change the buffers so that a load which skipped them would be caught.
    const first = model.layers[0] as M2EncoderLayer;
    const t = first.namedWeights().get('attention.filter_fn.pos_emb.t')!;
    t.write(tf.mul(t.read(), 0.5));
    const loaded = await saveAndLoad(model);
    expect(loaded.layers[0]).toBeInstanceOf(M2EncoderLayer);
    const x = tf.randomNormal([2, 6, 8]);
    expect(relativeL2(loaded.predict(x) as tf.Tensor, model.predict(x) as tf.Tensor)).toBe(0);
    expect(loaded.countParams()).toBe(model.countParams());
  });

  it('saves and loads a functional tf.model with a causal block and a block-diagonal head', async () => {
    const input = tfl.input({ shape: [6, 8] });
    const hidden = new M2CausalBlock({ ...tiny }).apply(input) as tfl.SymbolicTensor;
    const output = new BlockdiagLinear({ inFeatures: 8, outFeatures: 4, numBlocks: 2 }).apply(hidden) as tfl.SymbolicTensor;
    const model = tfl.model({ inputs: input, outputs: output });
    const loaded = await saveAndLoad(model);
    const x = tf.randomNormal([1, 6, 8]);
    expect(relativeL2(loaded.predict(x) as tf.Tensor, model.predict(x) as tf.Tensor)).toBe(0);
  });

  it('trains inside a compiled model (fit)', async () => {
    const model = tfl.sequential({ layers: [new M2CausalBlock({ ...tiny, inputShape: [6, 8] })] });
    model.compile({ optimizer: tf.train.adam(3e-3), loss: 'meanSquaredError' });
    const x = tf.randomNormal([4, 6, 8], 0, 1, 'float32', 11);
    const y = tf.mul(x, 0.5); // learnable through the residual path
    const history = await model.fit(x, y, { epochs: 8, verbose: 0 });
    const losses = history.history['loss'] as number[];
    expect(losses[7]!).toBeLessThan(0.9 * losses[0]!);
  });
});

/** Central-difference check of tf.variableGrads along a random direction per trainable weight. */
function checkGradients(layer: M2Layer, x: tf.Tensor): void {
  tf.dispose(layer.apply(x) as tf.Tensor); // builds the weights outside the gradient tape
  const r = tf.randomNormal(layer.computeOutputShape(x.shape) as number[], 0, 1, 'float32', 7);
  const weights = new Map([...layer.namedWeights()].map(([key, weight]) => [key, weight.read() as tf.Variable]));
  // ε = 3e-3: small enough that LayerNorm/sine curvature stays below the tolerance, large against float32 round-off.
  const checks = directionalGradientCheck(() => tf.sum(tf.mul(layer.apply(x) as tf.Tensor, r)) as tf.Scalar, weights, { epsilon: 3e-3 });
  for (const { name, numeric, analytic } of checks) {
    expect(Number.isFinite(analytic), `gradient of ${name}`).toBe(true);
    expect(Math.abs(numeric - analytic), `${name}: numeric ${numeric} analytic ${analytic}`).toBeLessThan(2e-2 * Math.max(1, Math.abs(analytic)));
  }
  expect(checks.length).toBeGreaterThan(10);
  expect(checks.map((c) => c.name)).not.toContain('attention.filter_fn.pos_emb.t'); // buffers are not trained
}

describe('gradients vs finite differences', () => {
  it('M2EncoderLayer (bidirectional, pre-norm, shared freq)', () => {
    // w = 1 keeps the sine MLP smooth enough for central differences in float32 (w = 10 makes them unreliable).
    const layer = new M2EncoderLayer({ ...tiny, w: 1, dropout: 0, preNorm: true, layerNormEps: 1e-5 });
    checkGradients(layer, tf.randomNormal([2, 6, 8], 0, 1, 'float32', 3));
  });

  it('M2CausalBlock', () => {
    // A longer sequence than the encoder case, so the long convolution runs a different Monarch FFT plan.
    const layer = new M2CausalBlock({ ...tiny, maxLength: 40, w: 1 });
    checkGradients(layer, tf.randomNormal([2, 37, 8], 0, 1, 'float32', 4));
  });
});

describe('M2SequenceMixer step decoding', () => {
  it.each([
    [{ preNorm: true, residualLongConv: false }],
    [{ preNorm: false, residualLongConv: true }],
  ])('equals the full causal forward position by position (%o)', (options) => {
    const mixer = new M2SequenceMixer({ ...tiny, ...options });
    const x = tf.randomNormal([3, 6, 8], 0, 1, 'float32', 5) as tf.Tensor3D;
    const full = mixer.apply(x) as tf.Tensor;
    const state = mixer.createStepState(3);
    const prefix = mixer.prefill(tf.slice(x, [0, 0, 0], [3, 2, 8]) as tf.Tensor3D, state);
    const rest = [2, 3, 4, 5].map((t) => tf.expandDims(mixer.step(tf.reshape(tf.slice(x, [0, t, 0], [3, 1, 8]), [3, 8]) as tf.Tensor2D, state), 1));
    expect(tf.max(tf.abs(tf.sub(tf.concat([prefix, ...rest], 1), full))).dataSync()[0]!).toBeLessThan(1e-5);
    state.dispose();
    mixer.dispose();
  });
});

describe('initialisation', () => {
  const stats = (layer: M2Layer, key: string) => {
    const values = layer.namedWeights().get(key)!.read();
    const { mean, variance } = tf.moments(values);
    return { max: tf.max(tf.abs(values)).dataSync()[0]!, std: Math.sqrt(variance.dataSync()[0]!), mean: mean.dataSync()[0]! };
  };

  it('uses PyTorch module defaults, or HF post_init N(0, initializerRange) with zero biases for the Linears', () => {
    const plain = new M2SequenceMixer({ modelDim: 64, maxLength: 16, filterOrder: 32 });
    const hf = new M2SequenceMixer({ modelDim: 64, maxLength: 16, filterOrder: 32, initializerRange: 0.02 });
    for (const layer of [plain, hf]) layer.build([null, 16, 64]);
    expect(stats(plain, 'in_linear.weight').max).toBeLessThanOrEqual(1 / 8);
    expect(stats(plain, 'in_linear.weight').std).toBeCloseTo(1 / 8 / Math.sqrt(3), 2);
    expect(stats(plain, 'filter_fn.implicit_filter.2.weight').max).toBeLessThanOrEqual(1 / Math.sqrt(32));
    expect(stats(hf, 'in_linear.weight').std).toBeCloseTo(0.02, 3);
    expect(stats(hf, 'filter_fn.implicit_filter.4.weight').std).toBeCloseTo(0.02, 2);
    expect(stats(hf, 'in_linear.bias').max).toBe(0);
    expect(stats(hf, 'filter_fn2.implicit_filter.0.bias').max).toBe(0);
    for (const layer of [plain, hf]) {
      expect(stats(layer, 'short_filter.weight').max).toBeLessThanOrEqual(1 / Math.sqrt(3)); // Conv1d default either way
      expect(stats(layer, 'filter_fn.implicit_filter.1.freq')).toEqual({ max: 10, std: 0, mean: 10 });
      expect(stats(layer, 'filter_fn.bias').std).toBeGreaterThan(0.5); // D ~ N(0, 1)
      layer.dispose();
    }
    expect(() => new M2SequenceMixer({ modelDim: 8, maxLength: 4, initializerRange: -1 })).toThrow(/initializerRange must be a positive number, got -1/);
  });

  it('starts the filters with the deterministic positional table and decay rates of §2.4', () => {
    const filter = new HyenaFilter({ modelDim: 4, maxLength: 5, filterOrder: 8 });
    filter.build([null, 5, 4]);
    const z = filter.namedWeights().get('pos_emb.z')!.read().arraySync() as number[][][];
    const row = z[0]![2]!; // n = 2 of L = 5: [t, cos(2π·1e-4·n/L), cos(2π·n/L), −sin(2π·1e-4·n/L), −sin(2π·n/L)]
    const angle = (2 * Math.PI * 2) / 5;
    const expected = [0.5, Math.cos(1e-4 * angle), Math.cos(angle), -Math.sin(1e-4 * angle), -Math.sin(angle)];
    row.forEach((value, i) => expect(value).toBeCloseTo(expected[i]!, 6));
    const deltas = filter.namedWeights().get('modulation.deltas')!.read().dataSync();
    expect(deltas[0]).toBeCloseTo(Math.log(0.01) / 1.5, 5); // −3.0701
    expect(deltas[3]).toBeCloseTo(Math.log(0.01) / 0.3, 5); // −15.3506
    expect([...filter.namedWeights().get('pos_emb.t')!.read().dataSync()]).toEqual([0, 0.25, 0.5, 0.75, 1]);
    filter.dispose();
  });
});

describe('errors', () => {
  it('rejects inputs longer than maxLength and wrong last dims with one line', () => {
    const mixer = new M2SequenceMixer({ ...tiny });
    const layer = new M2EncoderLayer({ ...tiny });
    const cases: [() => unknown, RegExp][] = [
      [() => mixer.apply(tf.zeros([1, 7, 8])), /^M2SequenceMixer '.*': input length 7 is longer than maxLength 6;/],
      [() => mixer.apply(tf.zeros([1, 6, 9])), /^M2SequenceMixer '.*': input last dim must be modelDim 8, got 9\.$/],
      [() => layer.apply(tf.zeros([6, 8])), /^M2EncoderLayer '.*': input must be \[batch, length, 8\], got shape \[6, 8\]\.$/],
      [() => new GluMonarchMlp({ modelDim: 8, intermediateDim: 16 }).apply(tf.zeros([2, 7])), /input last dim must be modelDim 8, got 7/],
      [() => new HyenaFilter({ modelDim: 8, maxLength: 6, embDim: 4 }), /embDim must be odd and ≥ 3/],
      [() => new M2CausalBlock({ ...tiny, dropout: 1 }), /dropout must be in \[0, 1\), got 1/],
    ];
    for (const [run, pattern] of cases) {
      let message = '';
      try {
        run();
      } catch (error) {
        message = (error as Error).message;
      }
      expect(message).toMatch(pattern);
      expect(message).not.toContain('\n');
    }
  });

  it('refuses step decoding on a bidirectional mixer and past maxLength', () => {
    const mixer = new M2SequenceMixer({ ...tiny, bidirectional: true });
    tf.dispose(mixer.apply(tf.zeros([1, 6, 8])) as tf.Tensor);
    expect(() => mixer.createStepState()).toThrow(/step decoding needs a causal mixer/);
    const block = new M2CausalBlock({ ...tiny, maxLength: 2 });
    tf.dispose(block.apply(tf.zeros([1, 2, 8])) as tf.Tensor);
    const state = block.createStepState();
    tf.dispose([block.step(tf.zeros([1, 8]) as tf.Tensor2D, state), block.step(tf.zeros([1, 8]) as tf.Tensor2D, state)]);
    expect(() => block.step(tf.zeros([1, 8]) as tf.Tensor2D, state)).toThrow(/position 2 is past maxLength 2/);
    expect(() => block.step(tf.zeros([2, 8]) as tf.Tensor2D, block.createStepState())).toThrow(/step input must be \[1, 8\], got \[2, 8\]/);
    state.dispose();
  });
});
