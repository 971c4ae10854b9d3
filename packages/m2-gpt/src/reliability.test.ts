// Reliability (issue 10): live tensors/bytes do not grow over 200 training or generation steps; bad inputs fail with
// one-line errors.
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { M2Error } from '@monarch-mixer/monarch-core';
import { catchOneLineM2Error } from '@monarch-mixer/monarch-core/testing';
import { M2Gpt } from './index.js';

const config = { vocabSize: 64, modelDim: 32, numLayers: 1, maxLength: 16, filterOrder: 8, intermediateDim: 64 };

function expectOneLineM2Error(fn: () => unknown, pattern: RegExp): void {
  expect(catchOneLineM2Error(fn)?.message).toMatch(pattern);
}

describe('M2-GPT memory', () => {
  it('200 forward+backward+update steps leak no tensors and no bytes', () => {
    const model = new M2Gpt(config, { seed: 1 });
    const variables = model.trainableVariables();
    const optimizer = tf.train.adam(1e-3);
    const ids = tf.tensor2d([[1, 5, 7, 9, 11, 13, 3, 4, 8, 2, 6, 10, 12, 14, 15, 63]], [1, 16], 'int32');
    const step = () => {
      const { value, grads } = tf.variableGrads(() => model.loss(ids), variables);
      optimizer.applyGradients(grads);
      const loss = value.dataSync()[0]!;
      value.dispose();
      tf.dispose(grads);
      return loss;
    };
    const first = step();
    for (let i = 0; i < 4; i += 1) step(); // warm-up: Adam moments
    const before = tf.memory();
    let loss = NaN;
    for (let i = 0; i < 200; i += 1) loss = step();
    const after = tf.memory();
    expect(loss).toBeLessThan(first); // the updates were applied
    expect(after.numTensors).toBe(before.numTensors);
    expect(after.numBytes).toBe(before.numBytes);
    ids.dispose();
    optimizer.dispose();
    model.dispose();
  }, 60_000);

  it('200 incremental generation steps (16-token sequences) leak no tensors and no bytes', () => {
    const model = new M2Gpt(config, { seed: 2 });
    const run = () => {
      const decoder = model.createIncrementalDecoder();
      let id = 1;
      for (let t = 0; t < config.maxLength; t += 1) {
        const logits = decoder.step(id);
        id = logits.indexOf(Math.max(...logits));
      }
      decoder.dispose();
      return id;
    };
    run(); // warm-up: filter kernels, caches
    const before = tf.memory();
    let steps = 0;
    for (let i = 0; i < 13; i += 1) {
      expect(run()).toBeGreaterThanOrEqual(0);
      steps += config.maxLength;
    }
    // A decoder kept alive: steps within one sequence must not accumulate beyond its fixed-size state.
    const decoder = model.createIncrementalDecoder();
    decoder.step(1);
    const mid = tf.memory();
    for (let t = 1; t < config.maxLength; t += 1) decoder.step(t);
    expect(tf.memory().numTensors).toBe(mid.numTensors);
    decoder.dispose();
    const after = tf.memory();
    expect(steps + config.maxLength).toBeGreaterThanOrEqual(200);
    expect(after.numTensors).toBe(before.numTensors);
    expect(after.numBytes).toBe(before.numBytes);
    model.dispose();
  }, 60_000);
});

describe('M2-GPT input validation', () => {
  const model = new M2Gpt(config, { seed: 3 });
  it.each([
    ['a negative id', [[1, -1]], 'int32', /token id -1 is outside the vocabulary \[0, 64\)/],
    ['an id ≥ V', [[1, 64]], 'int32', /token id 64 is outside the vocabulary/],
    ['float32 ids', [[1, 2]], 'float32', /ids must be int32, got float32/],
    ['a sequence longer than maxLength', [Array.from({ length: 17 }, () => 1)], 'int32', /length must be in \[1, 16\].*got 17/],
  ])('forward rejects %s', (_name, values, dtype, pattern) => {
    const ids = tf.tensor2d(values as number[][], undefined, dtype as 'int32');
    const before = tf.memory().numTensors;
    expectOneLineM2Error(() => model.forward(ids as tf.Tensor2D), pattern);
    expectOneLineM2Error(() => model.loss(ids as tf.Tensor2D), pattern);
    expect(tf.memory().numTensors).toBe(before);
    ids.dispose();
  });
  it('forward rejects an empty sequence and a rank-1 tensor', () => {
    const empty = tf.tensor2d([], [1, 0], 'int32');
    expectOneLineM2Error(() => model.forward(empty), /length must be in \[1, 16\].*got 0/);
    const flat = tf.tensor1d([1, 2], 'int32');
    expectOneLineM2Error(() => model.forward(flat as unknown as tf.Tensor2D), /ids must be \[batch, length\]/);
    tf.dispose([empty, flat]);
  });
  it('nextTokenLogits rejects non-integer, NaN and out-of-range ids', () => {
    expectOneLineM2Error(() => model.nextTokenLogits([1, 2.5]), /token id 2.5 is not an integer/);
    expectOneLineM2Error(() => model.nextTokenLogits([NaN]), /token id NaN is not an integer/);
    expectOneLineM2Error(() => model.nextTokenLogits([64]), /token id 64 is outside/);
  });
  it('the incremental decoder rejects bad ids and steps past maxLength', () => {
    const decoder = model.createIncrementalDecoder();
    expectOneLineM2Error(() => decoder.step(-1), /token id -1 is not an integer in the vocabulary \[0, 64\)/);
    expectOneLineM2Error(() => decoder.step(64), /token id 64/);
    expectOneLineM2Error(() => decoder.step(1.5), /token id 1.5/);
    expectOneLineM2Error(() => decoder.step(NaN), /token id NaN/);
    expect(decoder.position).toBe(0); // a rejected id does not advance the decoder
    for (let t = 0; t < config.maxLength; t += 1) decoder.step(1);
    expectOneLineM2Error(() => decoder.step(1), /position 16 is past maxLength 16/);
    decoder.dispose();
  });
  it('generate rejects bad prompts and options', async () => {
    const reject = async (run: () => Promise<unknown>, pattern: RegExp) => {
      const error = await run().then(() => undefined, (e: unknown) => e);
      expect(error).toBeInstanceOf(M2Error);
      expect((error as Error).message).not.toContain('\n');
      expect((error as Error).message).toMatch(pattern);
    };
    await reject(() => model.generate([1, 99]), /prompt token 99 is outside the vocabulary/);
    await reject(() => model.generate([1, 0.5]), /prompt token 0.5/);
    await reject(() => model.generate(Array.from({ length: 17 }, () => 1)), /17 tokens but the model's maxLength is 16/);
    await reject(() => model.generate([1], { maxNewTokens: 0 }), /maxNewTokens must be an integer ≥ 1/);
    await reject(() => model.generate([1], { temperature: NaN }), /temperature must be a finite number/);
    await reject(() => model.generate([1], { topP: 1.5 }), /topP must be in \(0, 1\]/);
  });
});
