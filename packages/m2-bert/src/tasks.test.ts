import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { M2Bert } from './m2-bert.js';
import { M2BertPipeline } from './tasks.js';
import { BertTokenizer } from './tokenizer.js';

const fixtures = fileURLToPath(new URL('../test/fixtures/', import.meta.url));
// A small WordPiece vocab: every id is < 1024, the tiny models' vocabulary.
const vocab = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', 'the', 'cat', 'sat', 'on', 'mat', '.', '##s'];

function softmax(row: number[]): number[] {
  const max = Math.max(...row);
  const e = row.map((v) => Math.exp(v - max));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / sum);
}

describe('M2BertPipeline', () => {
  let mlm: M2BertPipeline;
  let cls: M2BertPipeline;
  beforeAll(async () => {
    mlm = new M2BertPipeline(await M2Bert.fromPretrained(join(fixtures, 'tiny-mlm')), BertTokenizer.fromVocab(vocab));
    cls = new M2BertPipeline(await M2Bert.fromPretrained(join(fixtures, 'tiny-cls')), BertTokenizer.fromVocab(vocab));
  });
  afterAll(() => {
    mlm.dispose();
    cls.dispose();
  });

  it('fillMask: top-k of the softmax at each [MASK], text padded to the max length', () => {
    const results = mlm.fillMask('the cat [MASK] on the [MASK].', { topK: 4 });
    expect(results).toHaveLength(2);
    const batch = mlm.tokenizer.encodeBatch(['the cat [MASK] on the [MASK].']);
    expect(batch.inputIds[0]).toHaveLength(32);
    const { logits } = mlm.model.forward(batch);
    const rows = (logits!.arraySync() as number[][][])[0]!;
    logits!.dispose();
    const positions = [3, 6];
    results.forEach((candidates, m) => {
      const p = softmax(rows[positions[m]!]!);
      const best = [...p.keys()].sort((a, b) => p[b]! - p[a]!).slice(0, 4);
      expect(candidates.map((c) => c.tokenId)).toEqual(best);
      candidates.forEach((c, k) => expect(c.score).toBeCloseTo(p[best[k]!]!, 5));
    });
    expect(() => mlm.fillMask('no mask here')).toThrow(/has no \[MASK\] token/);
    expect(() => cls.fillMask('the [MASK]')).toThrow(/fillMask: needs a model with head masked-lm/);
  });

  it('fillMaskAsync (reads asynchronously, for webgpu in Node) gives fillMask\'s results and leaks nothing', async () => {
    const expected = mlm.fillMask('the cat [MASK] on the [MASK].', { topK: 4 });
    const before = tf.memory().numTensors;
    expect(await mlm.fillMaskAsync('the cat [MASK] on the [MASK].', { topK: 4 })).toEqual(expected);
    expect(tf.memory().numTensors).toBe(before);
    await expect(mlm.fillMaskAsync('no mask here')).rejects.toThrow(/has no \[MASK\] token/);
  });

  it('embed: pooled output at max-length padding; padding to the longest text gives other vectors (no mask in M2)', async () => {
    const texts = ['the cat sat', 'the mat'];
    const vectors = await cls.embed(texts);
    const { poolerOutput } = cls.model.forward(cls.tokenizer.encodeBatch(texts, { padding: 'max_length' }));
    const expected = poolerOutput!.arraySync() as number[][];
    poolerOutput!.dispose();
    vectors.forEach((v, i) => v.forEach((x, j) => expect(x).toBeCloseTo(expected[i]![j]!, 6)));
    const unpadded = await cls.embed(texts, { padding: 'longest' });
    expect(Math.abs(unpadded[1]![0]! - vectors[1]![0]!)).toBeGreaterThan(1e-6);
    const normalized = await cls.embed(texts, { normalize: true, batchSize: 1 });
    for (const v of normalized) expect(Math.hypot(...v)).toBeCloseTo(1, 5);
    await expect(mlm.embed(['the'])).rejects.toThrow(/embed: needs a model with head/);
  });

  it('classify: softmax over id2label, best label first; no tensor leaks across calls', async () => {
    const [first] = await cls.classify(['the cat sat'], { pairs: ['on the mat'] });
    const batch = cls.tokenizer.encodeBatch(['the cat sat'], { pairs: ['on the mat'] });
    const { logits } = cls.model.forward(batch);
    const p = softmax((logits!.arraySync() as number[][])[0]!);
    logits!.dispose();
    expect(Object.keys(first!.scores)).toEqual(['LABEL_0', 'LABEL_1', 'LABEL_2']);
    Object.values(first!.scores).forEach((s, i) => expect(s).toBeCloseTo(p[i]!, 6));
    expect(first!.label).toBe(`LABEL_${p.indexOf(Math.max(...p))}`);
    await cls.classify(['the']);
    const before = tf.memory().numTensors;
    await cls.classify(['the cat', 'mat']);
    await cls.embed(['the cat']);
    mlm.fillMask('the [MASK]');
    expect(tf.memory().numTensors).toBe(before);
  });
});
