import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import { compareCheckpointedStep, tensorsWithoutCaches } from '@monarch-mixer/m2-layers/testing';
import { HEAD_CHUNK_ROWS, M2Bert } from './m2-bert.js';
import { resolveM2BertConfig } from './m2-bert-config.js';
import { countM2BertParameters } from './state-dict.js';

const small = { preset: 'tiny', numLayers: 1, vocabSize: 64, maxPositionEmbeddings: 16, longConvLMax: 16, filterOrder: 8 } as const;
const models: M2Bert[] = [];
const make = (overrides: object) => {
  const model = new M2Bert({ ...small, ...overrides });
  models.push(model);
  return model;
};
afterAll(() => models.forEach((m) => m.dispose()));

const ids = [
  [2, 5, 9, 11, 3, 0, 0, 0, 0, 0],
  [2, 7, 7, 3, 4, 8, 9, 3, 0, 0],
];

/** log Σ exp, float64. */
const logSumExp = (row: number[]) => Math.log(row.reduce((s, v) => s + Math.exp(v), 0));

describe('M2Bert', () => {
  it('has one trainable variable per parameter tensor, aliases mapped to the shared variable, and the analytic count', () => {
    for (const head of ['masked-lm', 'sequence-classification', 'text-encoding', 'none'] as const) {
      const model = make({ head, hyenaTrainingAdditions: head === 'none' });
      const total = model.trainableVariables().reduce((n, v) => n + v.size, 0);
      expect(total, head).toBe(countM2BertParameters(model.config).total);
    }
    const mlm = models[0]!;
    const named = mlm.namedWeights();
    expect(named.get('cls.predictions.decoder.weight')).toBe(named.get('bert.embeddings.word_embeddings.weight'));
    const freq = named.get('bert.encoder.layer.0.attention.filter_fn.implicit_filter.1.freq');
    expect(named.get('bert.encoder.layer.0.attention.filter_fn.implicit_filter_rev.5.freq')).toBe(freq);
    expect(named.get('bert.encoder.layer.0.attention.filter_fn2.implicit_filter.1.freq')).not.toBe(freq);
  });

  it('dispose frees the layers\' cached inference tensors too: build, forward, dispose leaves no tensor behind', () => {
    // monarch-core's DFT and Monarch factor caches (kept on purpose, per length) are emptied before both counts.
    const before = tensorsWithoutCaches();
    const model = new M2Bert({ ...small, numLayers: 2 });
    const out = model.forward({ inputIds: ids }); // inference: fills the layers' and the head's caches
    tf.dispose([out.lastHiddenState, out.logits!]);
    expect(tf.memory().numTensors).toBeGreaterThan(before + model.trainableVariables().length); // the caches hold tensors
    model.dispose();
    expect(tensorsWithoutCaches()).toBe(before);
  });

  it('runs shorter inputs than the max length and returns the outputs of its head', () => {
    const mlm = make({}).forward({ inputIds: ids });
    expect(mlm.lastHiddenState.shape).toEqual([2, 10, 64]);
    expect(mlm.logits!.shape).toEqual([2, 10, 64]);
    expect(mlm.poolerOutput).toBeUndefined();
    const cls = make({ head: 'sequence-classification', labels: ['a', 'b', 'c'] }).forward({ inputIds: ids });
    expect(cls.poolerOutput!.shape).toEqual([2, 64]);
    expect(cls.logits!.shape).toEqual([2, 3]);
    const enc = make({ head: 'text-encoding' }).forward({ inputIds: ids });
    expect(enc.logits).toBeUndefined();
    tf.dispose([mlm, cls, enc].flatMap((o) => [o.lastHiddenState, o.logits, o.poolerOutput]).filter((t): t is tf.Tensor => !!t));
  });

  it('masked LM with labels: the head runs at the labelled positions only (zeros elsewhere), the loss is their mean CE', () => {
    const mlm = make({});
    const labels = [
      [-100, 5, -100, -100, 0, -100, -100, -100, 9, -100],
      [-100, -100, -100, 3, -100, -100, -100, -100, -100, 63],
    ];
    const warm = mlm.forward({ inputIds: ids, labels }); // fills the model's inference caches (transposed weights, filter spectra)
    tf.dispose([warm.lastHiddenState, warm.logits!, warm.loss!]);
    const noneLabelled = ids.map((r) => r.map(() => -100));
    tf.dispose(Object.values(tf.variableGrads(() => mlm.forward({ inputIds: ids, labels: noneLabelled }).loss as tf.Scalar).grads)); // training caches
    const before = tf.memory().numTensors;
    const full = mlm.forward({ inputIds: ids });
    const withLabels = mlm.forward({ inputIds: ids, labels });
    const z = full.logits!.arraySync() as number[][][];
    const got = withLabels.logits!.arraySync() as number[][][];
    let expected = 0;
    let count = 0;
    labels.forEach((row, b) =>
      row.forEach((label, l) => {
        if (label > 0) {
          for (let v = 0; v < 64; v++) expect(got[b]![l]![v]).toBeCloseTo(z[b]![l]![v]!, 4);
          expected += logSumExp(z[b]![l]!) - z[b]![l]![label]!;
          count++;
        } else {
          expect(got[b]![l]!.every((x) => x === 0)).toBe(true);
        }
      }),
    );
    expect(withLabels.loss!.dataSync()[0]).toBeCloseTo(expected / count, 4);
    // outputLogits: false: the same loss without the [B, L, V] logits (training needs only the loss).
    const lossOnly = mlm.forward({ inputIds: ids, labels }, { outputLogits: false });
    expect(lossOnly.logits).toBeUndefined();
    expect(lossOnly.loss!.dataSync()[0]).toBe(withLabels.loss!.dataSync()[0]);
    tf.dispose([lossOnly.lastHiddenState, lossOnly.loss!]);
    // Nothing labelled: loss 0, and every weight still gets a (zero) gradient.
    const variables = mlm.trainableVariables();
    const { value, grads } = tf.variableGrads(() => mlm.forward({ inputIds: ids, labels: noneLabelled }).loss as tf.Scalar, variables);
    expect(Math.abs(value.dataSync()[0]!)).toBe(0);
    expect(Object.keys(grads).length).toBe(variables.length);
    expect(tf.tidy(() => Object.values(grads).every((g) => tf.max(tf.abs(g)).dataSync()[0] === 0))).toBe(true);
    tf.dispose([full, withLabels].flatMap((o) => [o.lastHiddenState, o.logits, o.loss]).filter((t): t is tf.Tensor => !!t));
    tf.dispose([value, ...Object.values(grads)]);
    expect(tf.memory().numTensors).toBe(before);
    expect(() => mlm.forward({ inputIds: ids, labels: [[1, 2]] })).toThrow(/masked-LM labels must have the shape of inputIds \[2, 10\], got \[1, 2\]/);
    expect(() => mlm.forward({ inputIds: ids, labels: labels.map((r) => r.map((x) => (x === 63 ? 64 : x))) })).toThrow(/label 64 is not a token id in \[0, 64\)/);
  });

  it('classification losses follow §2.6: CE for int labels, MSE for one label, BCE for float multi-hot labels', () => {
    const cls = make({ head: 'sequence-classification', labels: ['a', 'b', 'c'] });
    const out = cls.forward({ inputIds: ids, labels: [2, 0] });
    const z = out.logits!.arraySync() as number[][];
    expect(out.loss!.dataSync()[0]).toBeCloseTo(((logSumExp(z[0]!) - z[0]![2]!) + (logSumExp(z[1]!) - z[1]![0]!)) / 2, 5);
    const multi = cls.forward({ inputIds: ids, labels: tf.tensor2d([[1, 0, 1], [0, 0, 1]]) });
    const y = [[1, 0, 1], [0, 0, 1]];
    const bce = z.flatMap((row, i) => row.map((x, j) => -(y[i]![j]! * Math.log(1 / (1 + Math.exp(-x))) + (1 - y[i]![j]!) * Math.log(1 - 1 / (1 + Math.exp(-x))))));
    expect(multi.loss!.dataSync()[0]).toBeCloseTo(bce.reduce((a, b) => a + b, 0) / bce.length, 5);
    const regression = make({ head: 'sequence-classification', labels: ['score'] });
    const reg = regression.forward({ inputIds: ids, labels: [0.5, -1] });
    const r = reg.logits!.dataSync();
    expect(reg.loss!.dataSync()[0]).toBeCloseTo(((r[0]! - 0.5) ** 2 + (r[1]! + 1) ** 2) / 2, 5);
    tf.dispose([out, multi, reg].flatMap((o) => [o.lastHiddenState, o.logits, o.poolerOutput, o.loss]).filter((t): t is tf.Tensor => !!t));
  });

  it('poolAll pools the attention-masked mean; the mask never changes the encoder output', () => {
    const model = make({ head: 'text-encoding', poolAll: true });
    const mask = ids.map((row) => row.map((id) => (id === 0 ? 0 : 1)));
    const withMask = model.forward({ inputIds: ids, attentionMask: mask });
    const noMask = model.forward({ inputIds: ids });
    expect(Array.from(withMask.lastHiddenState.dataSync())).toEqual(Array.from(noMask.lastHiddenState.dataSync()));
    const expected = tf.tidy(() => {
      const m = tf.expandDims(tf.tensor2d(mask), 2);
      const mean = tf.div(tf.sum(tf.mul(withMask.lastHiddenState, m), 1), tf.sum(m, 1));
      const named = model.namedWeights();
      return tf.tanh(tf.add(tf.matMul(mean, named.get('bert.pooler.dense.weight')!, false, true), named.get('bert.pooler.dense.bias')!));
    });
    const diff = tf.abs(tf.sub(withMask.poolerOutput!, expected));
    expect(Math.max(...diff.dataSync())).toBeLessThan(1e-6);
    diff.dispose();
    tf.dispose([withMask, noMask].flatMap((o) => [o.lastHiddenState, o.poolerOutput]).filter((t): t is tf.Tensor => !!t));
    expected.dispose();
  });

  it('applies dropout only in training mode and does not leak tensors', () => {
    const model = make({ hiddenDropout: 0.5 });
    const run = (training: boolean) => {
      const out = model.forward({ inputIds: ids }, { training });
      const values = Array.from(out.logits!.dataSync());
      tf.dispose([out.lastHiddenState, out.logits!]);
      return values;
    };
    expect(run(false)).toEqual(run(false));
    expect(run(true)).not.toEqual(run(false));
    const before = tf.memory().numTensors;
    run(true);
    run(false);
    expect(tf.memory().numTensors).toBe(before);
    expect(() => resolveM2BertConfig({ ...small, head: 'masked' as never })).toThrow(/head must be one of/);
  });

  it('gradient checkpointing: same loss and gradients, a smaller tape, no leaked tensors', async () => {
    const model = make({ numLayers: 3, hiddenDropout: 0 });
    const labels = ids.map((row) => row.map((t, i) => (i % 3 === 1 ? t : -100)));
    const variables = model.trainableVariables();
    const step = (gradientCheckpointing: boolean) => tf.variableGrads(() => model.forward({ inputIds: ids, labels }, { training: true, gradientCheckpointing }).loss as tf.Scalar, variables);
    const { plainLoss, rematLoss, rematTensors, gaps } = compareCheckpointedStep(step, variables);
    expect(rematTensors).toBe(1 + variables.length);
    expect(rematLoss).toBeCloseTo(plainLoss, 6);
    for (const { name, gap } of gaps) expect(gap, name).toBeLessThan(1e-5);
    // The tape's peak: every layer's activations vs the layer inputs plus one layer's activations at a time.
    const peak = async (gradientCheckpointing: boolean) => (await tf.profile(() => tf.dispose(Object.values(step(gradientCheckpointing).grads)))).peakBytes;
    expect(await peak(true)).toBeLessThan(0.8 * (await peak(false)));
  });

  it('gradient checkpointing with dropout: the recomputed layers draw the forward pass\'s masks', () => {
    const model = make({ numLayers: 2, hiddenDropout: 0.3 });
    const variables = model.trainableVariables();
    // The loss is linear in the last layer's output norm weight γ: h = LayerNorm(…)·γ + β, so ∂loss/∂γ needs the
    // forward pass's hidden state exactly; a backward pass with other masks gives another gradient.
    const gamma = model.weight('encoder.layer.1.mlp.layernorm.weight');
    const beta = model.weight('encoder.layer.1.mlp.layernorm.bias');
    let hidden: tf.Tensor | undefined;
    const { value, grads } = tf.variableGrads(() => {
      const out = model.forward({ inputIds: ids }, { training: true, gradientCheckpointing: true });
      hidden = tf.keep(out.lastHiddenState.clone());
      return tf.sum(out.lastHiddenState) as tf.Scalar;
    }, variables);
    const normalised = tf.div(tf.sub(hidden!, beta), gamma); // (h − β) / γ, [B, L, d]
    const expected = tf.sum(normalised, [0, 1]);
    const error = tf.max(tf.abs(tf.sub(grads[gamma.name]!, expected))).dataSync()[0]!;
    expect(error).toBeLessThan(1e-4);
    tf.dispose([value, hidden!, normalised, expected, ...Object.values(grads)]);
  });

  it('gradient checkpointing with outputLogits: false recomputes the MLM head in row chunks: same loss and gradients', () => {
    const long = { ...small, maxPositionEmbeddings: 512, longConvLMax: 512 };
    const model = new M2Bert({ ...long, hiddenDropout: 0 });
    models.push(model);
    const [B, L] = [3, 512];
    const inputIds = Array.from({ length: B }, (_, b) => Array.from({ length: L }, (_, l) => 1 + ((b * 31 + l * 7) % 63)));
    const labels = inputIds.map((row, b) => row.map((t, l) => ((b + l) % 5 < 4 ? t : -100))); // 1229 labelled rows: 2 chunks
    expect(labels.flat().filter((t) => t > 0).length).toBeGreaterThan(HEAD_CHUNK_ROWS);
    const variables = model.trainableVariables();
    const step = (gradientCheckpointing: boolean) =>
      tf.variableGrads(() => model.forward({ inputIds, labels }, { training: true, gradientCheckpointing, outputLogits: false }).loss as tf.Scalar, variables);
    const { plainLoss, rematLoss, rematTensors, gaps } = compareCheckpointedStep(step, variables);
    expect(rematTensors).toBe(1 + variables.length);
    expect(rematLoss).toBeCloseTo(plainLoss, 5);
    for (const { name, gap } of gaps) expect(gap, name).toBeLessThan(1e-4);
  });
});
