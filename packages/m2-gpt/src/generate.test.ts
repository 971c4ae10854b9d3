import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '@monarch-mixer/monarch-core';
import { BaselineGpt } from './baseline-gpt.js';
import { generate, generateStream } from './generate.js';
import type { CausalLanguageModel } from './generate.js';
import { Gpt2Tokenizer } from './tokenizer.js';

const model = new BaselineGpt({ vocabSize: 400, maxLength: 24, modelDim: 16, numLayers: 1, numHeads: 2, mlpDim: 32,
  layerNormEps: 1e-5, initializerRange: 0.5 }, { seed: 1 });
afterAll(() => model.dispose());

/** A fake model with fixed next-token logits (a lookup on the last id), to test stopping logic exactly. */
function scripted(next: Record<number, number>, vocabSize = 50257): CausalLanguageModel {
  return {
    vocabSize,
    maxLength: 64,
    nextTokenLogits: (ids) => {
      const logits = new Float32Array(vocabSize);
      logits[next[ids[ids.length - 1]] ?? 0] = 10;
      return logits;
    },
  };
}

describe('generate', () => {
  it('is reproducible for a seed and streams the same text it returns', async () => {
    const a = await generate(model, [1, 2, 3], { maxNewTokens: 12, seed: 9, stopAtEndOfText: false });
    const b = await generate(model, [1, 2, 3], { maxNewTokens: 12, seed: 9, stopAtEndOfText: false });
    const c = await generate(model, [1, 2, 3], { maxNewTokens: 12, seed: 10, stopAtEndOfText: false });
    expect(a.tokens).toEqual(b.tokens);
    expect(a.tokens).not.toEqual(c.tokens);
    expect(a.tokens).toHaveLength(12);
    expect(a.finishReason).toBe('maxNewTokens');
    const streamed: string[] = [];
    for await (const { text } of generateStream(model, [1, 2, 3], { maxNewTokens: 12, seed: 9, stopAtEndOfText: false })) streamed.push(text);
    expect(streamed.join('')).toBe(a.text);
    expect(a.text).toBe(new Gpt2Tokenizer().decode(a.tokens));
  });

  it('greedy decoding follows the argmax of the naive logits', async () => {
    const { tokens } = await generate(model, [5], { maxNewTokens: 4, temperature: 0, stopAtEndOfText: false });
    const context = [5];
    for (const token of tokens) {
      const logits = model.nextTokenLogits(context);
      expect(token).toBe(logits.indexOf(Math.max(...logits)));
      context.push(token);
    }
  });

  it('reads logits asynchronously where the model can (webgpu in Node has no synchronous read): same tokens', async () => {
    const expected = await generate(model, [5, 7], { maxNewTokens: 6, seed: 4, stopAtEndOfText: false });
    // The model as webgpu in Node sees it: every synchronous read throws.
    const syncReadThrows = () => {
      throw new Error('no synchronous read');
    };
    const asyncOnly: CausalLanguageModel = {
      vocabSize: model.vocabSize,
      maxLength: model.maxLength,
      nextTokenLogits: syncReadThrows,
      nextTokenLogitsAsync: (ids) => model.nextTokenLogitsAsync(ids),
      createIncrementalDecoder: () => ({ ...model.createIncrementalDecoder(), step: syncReadThrows }),
    };
    for (const incremental of [true, false]) {
      const got = await generate(asyncOnly, [5, 7], { maxNewTokens: 6, seed: 4, stopAtEndOfText: false, incremental });
      expect(got.tokens, `incremental ${incremental}`).toEqual(expected.tokens);
    }
  });

  it('stops at a stop sequence without returning it, holding back partial matches', async () => {
    const tok = new Gpt2Tokenizer();
    const [h, e, l, o] = ['H', 'e', 'l', 'o'].map((c) => tok.encode(c)[0]);
    const fake = scripted({ [h]: e, [e]: l, [l]: o, [o]: h }); // H → e → l → o → H …
    const chunks: string[] = [];
    const stream = generateStream(fake, 'H', { maxNewTokens: 20, stopSequences: ['loH'], temperature: 0 });
    let result;
    for (;;) {
      const next = await stream.next();
      if (next.done) { result = next.value; break; }
      chunks.push(next.value.text);
    }
    expect(result.text).toBe('e'); // "elo" + "H": stop text "loH" removed
    expect(result.finishReason).toBe('stopSequence');
    expect(chunks.join('')).toBe('e');
    expect(chunks[1]).toBe(''); // "l" held back: it may start "loH"
  });

  it('stops at <|endoftext|> and at the model maximum length', async () => {
    const eot = await generate(scripted({ 7: 50256 }), [7], { maxNewTokens: 5, temperature: 0 });
    expect(eot).toEqual({ text: '', tokens: [50256], finishReason: 'endOfText' });
    const a = new Gpt2Tokenizer().encode('a')[0]!;
    const held = await generate(scripted({ 7: a, [a]: 50256 }), [7], { maxNewTokens: 5, temperature: 0, stopSequences: ['ab'] });
    expect(held).toEqual({ text: 'a', tokens: [a, 50256], finishReason: 'endOfText' }); // "a" was held back, then released
    const long = await generate(model, Array.from({ length: 20 }, (_, i) => i), { maxNewTokens: 50, seed: 1, stopAtEndOfText: false });
    expect(long.tokens).toHaveLength(5); // 20 prompt tokens + 4 fed + the 5th sampled at position 24
    expect(long.finishReason).toBe('maxLength');
  });

  it('rejects bad options and too-long prompts with one line', async () => {
    const cases: [string | number[], object][] = [
      [[1], { topP: 0 }], [[1], { topP: 1.01 }], [[1], { temperature: -0.1 }], [[1], { topK: 0 }],
      [[1], { maxNewTokens: 0 }], [Array.from({ length: 25 }, () => 1), {}], [[400], {}],
    ];
    for (const [prompt, options] of cases) {
      const error = await generate(model, prompt, options).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(InvalidArgumentError);
      expect((error as Error).message).not.toContain('\n');
    }
  });

  it('does not leak tensors over 50 generation steps', async () => {
    await generate(model, [1], { maxNewTokens: 2 });
    const before = tf.memory().numTensors;
    await generate(model, [1], { maxNewTokens: 23, stopAtEndOfText: false });
    await generate(model, [1, 2], { maxNewTokens: 22, stopAtEndOfText: false, topK: 5, topP: 0.9 });
    expect(tf.memory().numTensors).toBe(before);
  });
});
