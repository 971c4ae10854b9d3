import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setupBackend } from '@monarch-mixer/monarch-core';
import { BERT_SPECIAL_IDS, BertTokenizer, M2Bert } from '@monarch-mixer/m2-bert';
import { TrainRng } from './rng.js';
import { createClassifyTask, createMlmTask, maskTokens, withSeededMathRandom } from './tasks/bert.js';
import { cleanReview, loadImdb, readLabelledFile, stratifiedSplit } from './data/labelled-text.js';
import { runTraining } from './trainer.js';
import type { TrainerOptions } from './trainer.js';

describe('maskTokens (§6.2: 30% selected; 80% [MASK], 10% random, 10% unchanged)', () => {
  it('selects 30% of ordinary tokens, never specials, in the 80/10/10 proportions', () => {
    const length = 50_000;
    const ids = Int32Array.from({ length }, (_, i) => (i % 100 === 0 ? BERT_SPECIAL_IDS.cls : i % 100 === 99 ? BERT_SPECIAL_IDS.sep : 1000 + (i % 500)));
    const { input, labels } = maskTokens(ids, 0.3, 30528, new TrainRng(1));
    let ordinary = 0, selected = 0, masked = 0, kept = 0;
    for (let i = 0; i < length; i++) {
      const special = ids[i] === BERT_SPECIAL_IDS.cls || ids[i] === BERT_SPECIAL_IDS.sep;
      if (special) {
        expect(labels[i]).toBe(-100);
        expect(input[i]).toBe(ids[i]);
        continue;
      }
      ordinary++;
      if (labels[i] === -100) {
        expect(input[i]).toBe(ids[i]);
        continue;
      }
      expect(labels[i]).toBe(ids[i]);
      selected++;
      if (input[i] === BERT_SPECIAL_IDS.mask) masked++;
      else if (input[i] === ids[i]) kept++;
    }
    const random = selected - masked - kept;
    expect(selected / ordinary).toBeGreaterThan(0.29);
    expect(selected / ordinary).toBeLessThan(0.31);
    expect(masked / selected).toBeCloseTo(0.8, 1);
    expect(random / selected).toBeCloseTo(0.1, 1);
    expect(kept / selected).toBeCloseTo(0.1, 1);
  });

  it('is reproducible from the RNG state', () => {
    const ids = Int32Array.from({ length: 64 }, (_, i) => 2000 + i);
    expect(maskTokens(ids, 0.3, 30528, new TrainRng(5))).toEqual(maskTokens(ids, 0.3, 30528, new TrainRng(5)));
  });

  it('withSeededMathRandom makes tf.dropout reproducible', () => {
    const x = tf.ones([1000]);
    const a = withSeededMathRandom(9, () => tf.dropout(x, 0.5));
    const b = withSeededMathRandom(9, () => tf.dropout(x, 0.5));
    expect(Array.from(a.dataSync())).toEqual(Array.from(b.dataSync()));
    tf.dispose([x, a, b]);
  });
});

describe('labelled data', () => {
  it('splits stratified and reproducibly', () => {
    const examples = Array.from({ length: 1000 }, (_, i) => ({ text: `t${i}`, label: i < 700 ? 0 : 1 }));
    const a = stratifiedSplit(examples, 0.2, 3);
    expect(a.test).toHaveLength(200);
    expect(a.test.filter((e) => e.label === 1)).toHaveLength(60);
    expect(stratifiedSplit(examples, 0.2, 3)).toEqual(a);
    const seen = new Set(a.train.map((e) => e.text));
    expect(a.test.some((e) => seen.has(e.text))).toBe(false);
  });

  it('IMDB: strips <br />, dedupes (49,582 unique texts), stratified 80/20 split', () => {
    expect(cleanReview('Great.<br /><br />Really <BR/>good')).toBe('Great. Really good');
    const imdb = loadImdb(0);
    const total = imdb.train.length + imdb.test.length;
    expect(total).toBeGreaterThan(49_000);
    expect(total).toBeLessThanOrEqual(49_582);
    expect(imdb.train.concat(imdb.test).some((e) => e.text.includes('<br'))).toBe(false);
    const positiveShare = (xs: { label: number }[]) => xs.filter((e) => e.label === 1).length / xs.length;
    expect(Math.abs(positiveShare(imdb.train) - positiveShare(imdb.test))).toBeLessThan(0.002);
    const train = new Set(imdb.train.map((e) => e.text));
    expect(imdb.test.filter((e) => train.has(e.text))).toHaveLength(0);
  });

  it('reads CSV (quotes, commas, newlines) and JSONL with named columns', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'm2-data-'));
    const rows = Array.from({ length: 10 }, (_, i) => `"review ${i}, with ""quotes""\nand a newline",${i % 2 ? 'pos' : 'neg'}`);
    await writeFile(join(dir, 'a.csv'), `body,sentiment\n${rows.join('\n')}\n`);
    const csv = await readLabelledFile(join(dir, 'a.csv'), { textColumn: 'body', labelColumn: 'sentiment', seed: 1 });
    expect(csv.labels).toEqual(['neg', 'pos']);
    expect(csv.train.length + csv.test.length).toBe(10);
    expect(csv.train.concat(csv.test).find((e) => e.text.startsWith('review 3'))!.text).toBe('review 3, with "quotes"\nand a newline');
    await writeFile(join(dir, 'b.jsonl'), Array.from({ length: 15 }, (_, i) => JSON.stringify({ text: `x${i}`, label: i % 3 })).join('\n'));
    const jsonl = await readLabelledFile(join(dir, 'b.jsonl'), { seed: 1 });
    expect(jsonl.labels).toEqual(['0', '1', '2']);
  });

  it('rejects bad data files with one line naming the file and the problem', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'm2-data-'));
    const file = async (name: string, content: string) => {
      await writeFile(join(dir, name), content);
      return join(dir, name);
    };
    const cases: Array<[string, Record<string, string>, RegExp]> = [
      [await file('empty.csv', ''), {}, /empty\.csv: the file is empty/],
      [await file('cols.csv', 'review,stars\nok,1\nbad,0\n'), {}, /no column "text" \(--text-column\); columns are: review, stars/],
      [await file('nolabel.csv', 'text,label\ngood,1\nbad,\n'), {}, /row 3 has no label in "label"/],
      [await file('one.csv', 'text,label\na,1\nb,1\n'), {}, /only one label value \("1"\)/],
      [await file('broken.jsonl', '{"text":"a","label":1}\n{not json\n'), {}, /line 2 is not a JSON object/],
      [join(dir, 'missing.csv'), {}, /missing\.csv: file not found/],
    ];
    for (const [path, columns, message] of cases) {
      const error = await readLabelledFile(path, { ...columns, seed: 0 }).then(() => undefined, (e: unknown) => e as Error);
      expect(error?.message, path).toMatch(message);
      expect(error?.message).not.toContain('\n');
    }
  });
});

const tinyBert = (extra: Record<string, unknown> = {}) =>
  new M2Bert({ preset: 'tiny', vocabSize: 30528, maxPositionEmbeddings: 16, longConvLMax: 16, ...extra });

const options = (outDir: string, steps: number): TrainerOptions => ({
  outDir, steps, seed: 4, progress: false, runOptions: {}, warmupSteps: 2, lrFloor: 0,
  optimizer: { lr: 3e-3, weightDecay: 1e-5, beta1: 0.9, beta2: 0.98, epsilon: 1e-6, weightDecayMode: 'composer' },
});

describe('M2-BERT tasks on the trainer', () => {
  // Training runs use wasm (the CLI's default backend); pure-JS cpu is ~30× slower for these shapes.
  let previous = '';
  beforeAll(async () => {
    previous = tf.getBackend();
    await setupBackend('wasm');
  });
  afterAll(async () => {
    await tf.setBackend(previous);
  });

  it('bert-mlm lowers the held-out MLM loss on a small corpus', async () => {
    // A learnable toy language: repeating 12-token phrases, so masked tokens are predictable from context.
    const phrase = (k: number) => Array.from({ length: 12 }, (_, i) => 200 + ((k * 5 + i) % 40));
    const seq = (k: number) => Int32Array.from([BERT_SPECIAL_IDS.cls, ...phrase(k), BERT_SPECIAL_IDS.sep, ...phrase(k).slice(0, 2)]);
    const train = Array.from({ length: 64 }, (_, k) => seq(k % 8));
    const validation = Array.from({ length: 16 }, (_, k) => seq(k % 8));
    const model = tinyBert({ hiddenDropout: 0, vocabSize: 1024 });
    const task = createMlmTask(model, { batchSize: 8, train, validation });
    const before = (await task.evaluate!()).loss;
    const result = await runTraining(task, { ...options(await mkdtemp(join(tmpdir(), 'm2-mlm-')), 40), optimizer: { ...options('', 0).optimizer, lr: 1e-2 } });
    task.dispose();
    expect(result.final.loss).toBeLessThan(before - 1);
  });

  // The interrupted run must be the same command (same --steps): the lr schedule depends on the total, so a
  // `steps: 3` run decays differently at step 3 and its resume cannot match. It is "killed" by an error thrown
  // after step 4 was applied but before its checkpoint, so the resume also discards that un-checkpointed step.
  it('classify resumes exactly (data order, dropout) and checkpoints load with M2Bert.fromPretrained', async () => {
    const tokenizer = await BertTokenizer.bertBaseUncased();
    const words = ['good', 'great', 'fine', 'bad', 'awful', 'poor'];
    const examples = Array.from({ length: 40 }, (_, i) => ({ text: `the film was ${words[i % 6]} and ${words[(i * 7) % 6]}`, label: i % 2 }));
    const data = { name: 'toy', labels: ['a', 'b'], train: examples.slice(0, 30), test: examples.slice(30) };
    // M2Bert draws its initial weights from Math.random-seeded tfjs ops: seed them so that every run starts alike.
    const make = () => createClassifyTask(withSeededMathRandom(1, () => tinyBert({ head: 'sequence-classification', labels: ['a', 'b'], problemType: 'single_label_classification', poolAll: true })),
      tokenizer, data, { batchSize: 8, seqLen: 16, evalSamples: 10 });
    const full = make();
    const reference = await runTraining(full, options(await mkdtemp(join(tmpdir(), 'm2-cls-')), 6));
    full.dispose();
    const dir = await mkdtemp(join(tmpdir(), 'm2-cls-'));
    const first = make();
    const killed = await runTraining(first, {
      ...options(dir, 6), checkpointEvery: 3,
      onStep: ({ step }) => {
        if (step === 4) throw new Error('killed after step 4');
      },
    }).then(() => undefined, (e: unknown) => e as Error);
    first.dispose();
    expect(killed?.message).toBe('killed after step 4');
    const loaded = await M2Bert.fromPretrained(join(dir, 'step-000003'));
    expect(loaded.config.head).toBe('sequence-classification');
    loaded.dispose();
    const second = make();
    const resumed = await runTraining(second, { ...options(dir, 6), resume: dir });
    second.dispose();
    expect(resumed.resumedFrom).toBe(3);
    expect(resumed.losses).toHaveLength(6);
    const deltas = resumed.losses.map((loss, i) => Math.abs(loss - reference.losses[i]));
    // The second epoch starts inside step 4 (30 examples, batches of 8): its order comes from the restored RNG.
    expect(Math.max(...deltas), deltas.join(', ')).toBeLessThanOrEqual(1e-6);
  });
});
