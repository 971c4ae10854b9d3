import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { AttentionBertBaseline, attentionBertParameters } from './attention-bert.js';

const tiny = { vocabSize: 50, hiddenSize: 32, numLayers: 2, numHeads: 4, intermediateSize: 64, maxLength: 64 };

describe('AttentionBertBaseline', () => {
  it('fast (per-head, chunked) and eager attention give the same logits', () => {
    const model = new AttentionBertBaseline(tiny, 1, 16);
    const ids = tf.tensor2d([Array.from({ length: 40 }, (_, i) => (i * 7) % 50)], undefined, 'int32');
    tf.dispose([model.forward(ids, 'fast'), model.forward(ids, 'eager')]); // first calls may cache constants
    const before = tf.memory().numTensors;
    const fast = model.forward(ids, 'fast');
    expect(tf.memory().numTensors).toBe(before + 1);
    const eager = model.forward(ids, 'eager');
    expect(tf.memory().numTensors).toBe(before + 2);
    const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(fast, eager))).dataSync()[0]);
    const scale = tf.tidy(() => tf.max(tf.abs(eager)).dataSync()[0]);
    expect(diff / scale).toBeLessThan(1e-4);
    tf.dispose([fast, eager]);
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
    ids.dispose();
  });

  it('counts BERT-base parameters like HuggingFace (110M with the MLM head)', () => {
    const base = { vocabSize: 30522, hiddenSize: 768, numLayers: 12, numHeads: 12, intermediateSize: 3072, maxLength: 512 };
    // HF BertForMaskedLM bert-base-uncased: 109,514,298 parameters (tied decoder) — without the pooler.
    expect(attentionBertParameters(base)).toBe(109_514_298);
  });
});
