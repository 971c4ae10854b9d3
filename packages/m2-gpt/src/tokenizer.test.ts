import { describe, expect, it } from 'vitest';
import { END_OF_TEXT_ID, Gpt2Tokenizer } from './tokenizer.js';

const tokenizer = new Gpt2Tokenizer();

describe('Gpt2Tokenizer', () => {
  it('encodes like GPT-2 (known ids)', () => {
    expect(tokenizer.encode('Hello world')).toEqual([15496, 995]); // GPT-2: "Hello" 15496, " world" 995
    expect(tokenizer.encode(' the')).toEqual([262]);
    expect(tokenizer.vocabSize).toBe(50257);
  });

  it('maps <|endoftext|> to 50256 and separates documents with it', () => {
    expect(tokenizer.encode('a<|endoftext|>b')).toEqual([64, END_OF_TEXT_ID, 65]);
    expect(tokenizer.encodeDocuments(['a', 'b'])).toEqual([64, END_OF_TEXT_ID, 65, END_OF_TEXT_ID]);
    expect(tokenizer.decode([64, END_OF_TEXT_ID, 65])).toBe('a<|endoftext|>b');
  });

  it('round-trips text, including multi-byte characters', () => {
    const text = 'Café naïve 北京 🙂 — “quotes”\n\tend';
    expect(tokenizer.decode(tokenizer.encode(text))).toBe(text);
  });

  it('streams without splitting characters across tokens', () => {
    const text = '北京 🙂 ok';
    const ids = tokenizer.encode(text);
    const stream = tokenizer.createStreamDecoder();
    const chunks = ids.map((id) => stream.push(id));
    chunks.push(stream.flush());
    expect(chunks.join('')).toBe(text);
    for (const chunk of chunks) expect(chunk).not.toContain('\uFFFD');
    expect(chunks).toContain(''); // at least one token completed no character
  });

  it('rejects ids outside the vocabulary', () => {
    expect(() => tokenizer.decode([50257])).toThrow(/outside|integer in \[0, 50257\)/);
  });
});
