// Reliability (issue 10): live tensors/bytes do not grow over 200 training steps; bad inputs fail with one-line errors.
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { M2Error } from '@monarch-mixer/monarch-core';
import { catchOneLineM2Error } from '@monarch-mixer/monarch-core/testing';
import { M2Bert } from './index.js';

const config = { preset: 'tiny', vocabSize: 64, modelDim: 32, intermediateDim: 64, numLayers: 1, maxPositionEmbeddings: 16, longConvLMax: 16, filterOrder: 8 } as const;

function expectOneLineM2Error(fn: () => unknown, pattern: RegExp): void {
  expect(catchOneLineM2Error(fn)?.message).toMatch(pattern);
}

describe('M2-BERT memory', () => {
  it('200 masked-LM forward+backward+update steps leak no tensors and no bytes', () => {
    const model = new M2Bert(config);
    const variables = model.trainableVariables();
    const optimizer = tf.train.sgd(1e-3);
    const ids = tf.tensor2d([[2, 5, 7, 9, 11, 13, 3, 4, 8, 1, 6, 10, 12, 14, 15, 16]], [1, 16], 'int32');
    const labels = tf.tensor2d([[-100, 5, -100, -100, 11, -100, -100, -100, 8, -100, -100, -100, 12, -100, -100, 16]], [1, 16], 'int32');
    const step = () => {
      const { value, grads } = tf.variableGrads(() => model.forward({ inputIds: ids, labels }, { training: true }).loss as tf.Scalar, variables);
      optimizer.applyGradients(grads);
      const loss = value.dataSync()[0]!;
      value.dispose();
      tf.dispose(grads);
      return loss;
    };
    for (let i = 0; i < 5; i += 1) step(); // warm-up: optimizer state, inference caches
    const before = tf.memory();
    let loss = NaN;
    for (let i = 0; i < 200; i += 1) loss = step();
    const after = tf.memory();
    expect(Number.isFinite(loss)).toBe(true);
    expect(after.numTensors).toBe(before.numTensors);
    expect(after.numBytes).toBe(before.numBytes);
    ids.dispose();
    labels.dispose();
    optimizer.dispose();
    model.dispose();
  }, 60_000);
});

describe('M2-BERT input validation', () => {
  const model = new M2Bert(config);
  const ok = [[2, 3, 4, 5]];
  tf.dispose(Object.values(model.forward({ inputIds: ok, labels: [[-100, 3, -100, -100]] }))); // warm-up: inference caches
  it.each([
    ['a negative token id', { inputIds: [[2, -1, 4]] }, /token id -1 .*outside the vocabulary \[0, 64\)/],
    ['a token id ≥ V', { inputIds: [[2, 64, 4]] }, /token id 64 .*outside the vocabulary/],
    ['a non-integer token id', { inputIds: [[2, 3.5, 4]] }, /token id 3.5 .*not an integer/],
    ['a NaN token id', { inputIds: [[2, NaN, 4]] }, /NaN/],
    ['an input longer than the max length', { inputIds: [Array.from({ length: 17 }, () => 2)] }, /length 17 .*max length 16/],
    ['an empty batch row', { inputIds: [[]] }, /empty|length 0|at least 1/],
    ['token types of another shape', { inputIds: ok, tokenTypeIds: [[0, 0]] }, /tokenTypeIds must have the shape/],
    ['a token type out of range', { inputIds: ok, tokenTypeIds: [[0, 0, 5, 0]] }, /tokenTypeIds value 5 is outside \[0, 2\)/],
    ['an MLM label ≥ V', { inputIds: ok, labels: [[-100, 64, -100, -100]] }, /label 64 is not a token id in \[0, 64\)/],
    ['MLM labels of another shape', { inputIds: ok, labels: [[-100, 3]] }, /labels must have the shape/],
  ])('rejects %s', (_name, inputs, pattern) => {
    const before = tf.memory().numTensors;
    expectOneLineM2Error(() => model.forward(inputs as never), pattern);
    expect(tf.memory().numTensors).toBe(before);
  });
  it('rejects float32 and rank-3 id tensors', () => {
    const floats = tf.tensor2d([[1, 2]], [1, 2], 'float32');
    expectOneLineM2Error(() => model.forward({ inputIds: floats as tf.Tensor2D }), /inputIds must be int32, got float32/);
    const rank3 = tf.tensor3d([[[1]]], [1, 1, 1], 'int32');
    expectOneLineM2Error(() => model.forward({ inputIds: rank3 as unknown as tf.Tensor2D }), /must be \[batch, length\]/);
    tf.dispose([floats, rank3]);
  });
});

describe('M2-BERT damaged config.json', () => {
  it('a config.json that is not JSON gives a one-line ConfigError naming the file', async () => {
    const { mkdtemp, rm, writeFile } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dir = await mkdtemp(join(tmpdir(), 'm2-bert-bad-config-'));
    try {
      await writeFile(join(dir, 'config.json'), '{\n  "hidden_size": 64,\n  "num_hidden_layers": tru\n}\n');
      const error = await M2Bert.fromPretrained(dir).then(() => undefined, (e: unknown) => e);
      expect(error).toBeInstanceOf(M2Error);
      expect((error as Error).message).not.toContain('\n');
      expect((error as Error).message).toMatch(/config\.json: not valid JSON/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
