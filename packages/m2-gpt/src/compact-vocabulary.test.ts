import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CompactTokenizer, CompactVocabulary, loadTokenizer, UNKNOWN_TOKEN } from './compact-vocabulary.js';
import { Gpt2Tokenizer } from './tokenizer.js';

const gpt2 = new Gpt2Tokenizer();
const corpus = gpt2.encodeDocuments(['the cat sat on the mat', 'the dog sat', 'a rare zygomorphic word']);

describe('CompactVocabulary', () => {
  it('keeps <|endoftext|> and the most frequent ids, pools the rest into <|unk|>', () => {
    const vocab = CompactVocabulary.fromCorpus(corpus, 5);
    expect(vocab.size).toBe(5);
    // counts: " sat" 2, " the" 2 (plus "the" ×2 at document starts), so the kept ids are 50256, then by count.
    expect(vocab.gpt2Ids[0]).toBe(50256);
    expect(vocab.gpt2Ids.slice(1, 4)).toEqual([...vocab.gpt2Ids.slice(1, 4)].sort((a, b) =>
      corpus.filter((x) => x === b).length - corpus.filter((x) => x === a).length || a - b));
    const kept = new Set(vocab.gpt2Ids);
    const expectedCoverage = corpus.filter((id) => kept.has(id)).length / corpus.length;
    expect(vocab.coverage(corpus)).toBeCloseTo(expectedCoverage, 12);
    expect(vocab.encode([gpt2.encode(' zyg')[0]])).toEqual([4]);
  });

  it('decodes through GPT-2 BPE, unknown ids as <|unk|>, and round-trips through vocab.json', async () => {
    const vocab = CompactVocabulary.fromCorpus(corpus, 6);
    const tokenizer = new CompactTokenizer(vocab);
    const ids = tokenizer.encode('the cat zzz');
    expect(tokenizer.decode(ids)).toContain(UNKNOWN_TOKEN);
    expect(tokenizer.decode(tokenizer.encode('the sat'))).toBe('the sat'); // 'the' and ' sat' occur twice: kept
    const dir = await mkdtemp(join(tmpdir(), 'm2-vocab-'));
    try {
      expect(await loadTokenizer(dir)).toBeInstanceOf(Gpt2Tokenizer);
      await vocab.save(dir);
      const loaded = await loadTokenizer(dir);
      expect(loaded).toBeInstanceOf(CompactTokenizer);
      expect(loaded.encode('the cat zzz')).toEqual(ids);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
