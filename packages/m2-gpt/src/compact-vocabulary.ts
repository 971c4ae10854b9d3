// An optional smaller output vocabulary for small models on CPUs: the K−1 most frequent GPT-2 ids of a training
// corpus keep their own row, every other id maps to one shared `<|unk|>` row.
//
// Why: with the full 50257-token vocabulary the tied head and its softmax dominate a tiny model's training step on
// 2 CPU cores (d 128: the head is 6.4M of the 7.0M parameters and ~80% of the step time on wasm). Honesty: losses
// measured on a compact vocabulary are NOT comparable to full-vocabulary perplexities (rare tokens are pooled into
// one class); compare models only on the same vocabulary. The tokenizer is still GPT-2 BPE.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FileFormatError, InvalidArgumentError } from '@monarch-mixer/monarch-core';
import { END_OF_TEXT_ID, Gpt2Tokenizer, GPT2_VOCAB_SIZE } from './tokenizer.js';
import type { StreamDecoder, TextTokenizer } from './tokenizer.js';

/** The text an out-of-vocabulary id decodes to. */
export const UNKNOWN_TOKEN = '<|unk|>';

/**
 * A map from GPT-2 ids to a compact id range [0, size): id size−1 is `<|unk|>`, `<|endoftext|>` is always kept.
 * @example
 * const vocab = CompactVocabulary.fromCorpus(tokenizer.encodeDocuments(texts), 8192);
 * vocab.coverage(ids); // → e.g. 0.97 (fraction of tokens that keep their own id)
 */
export class CompactVocabulary {
  /** Model vocabulary size (kept ids + 1 for `<|unk|>`). */
  readonly size: number;
  /** The compact id of `<|unk|>` (size − 1). */
  readonly unknownId: number;
  /** GPT-2 id of each compact id (the last entry, `<|unk|>`, is −1). */
  readonly gpt2Ids: readonly number[];
  private readonly compactOf: Int32Array; // GPT-2 id → compact id

  /**
   * @param gpt2Ids - The kept GPT-2 ids in compact order (without `<|unk|>`, which is appended).
   * @throws InvalidArgumentError on a duplicate or out-of-range id.
   */
  constructor(gpt2Ids: readonly number[]) {
    this.size = gpt2Ids.length + 1;
    this.unknownId = gpt2Ids.length;
    this.gpt2Ids = Object.freeze([...gpt2Ids, -1]);
    this.compactOf = new Int32Array(GPT2_VOCAB_SIZE).fill(this.unknownId);
    gpt2Ids.forEach((id, compact) => {
      if (!Number.isInteger(id) || id < 0 || id >= GPT2_VOCAB_SIZE || this.compactOf[id] !== this.unknownId) {
        throw new InvalidArgumentError(`CompactVocabulary: GPT-2 id ${id} is out of range or listed twice.`, { parameter: 'gpt2Ids', value: id });
      }
      this.compactOf[id] = compact;
    });
  }

  /**
   * Keeps `<|endoftext|>` and the size − 2 most frequent ids of a corpus (ties: lower id first).
   * @param corpus - GPT-2 ids of the training corpus.
   * @param size - Model vocabulary size, ≥ 2 (including `<|unk|>`).
   */
  static fromCorpus(corpus: Iterable<number>, size: number): CompactVocabulary {
    if (!Number.isInteger(size) || size < 2 || size > GPT2_VOCAB_SIZE + 1) {
      throw new InvalidArgumentError(`CompactVocabulary: size must be an integer in [2, ${GPT2_VOCAB_SIZE + 1}], got ${size}.`, {
        parameter: 'size',
        value: size,
      });
    }
    const counts = new Float64Array(GPT2_VOCAB_SIZE);
    for (const id of corpus) counts[id] += 1;
    const ranked = Array.from(counts.keys())
      .filter((id) => counts[id] > 0 && id !== END_OF_TEXT_ID)
      .sort((a, b) => counts[b] - counts[a] || a - b);
    return new CompactVocabulary([END_OF_TEXT_ID, ...ranked.slice(0, size - 2)]);
  }

  /** GPT-2 ids → compact ids (unknown ids → `unknownId`). */
  encode(gpt2Ids: Iterable<number>): number[] {
    return Array.from(gpt2Ids, (id) => this.compactOf[id] ?? this.unknownId);
  }

  /** Fraction of a corpus's tokens that keep their own id. */
  coverage(gpt2Ids: Iterable<number>): number {
    let kept = 0;
    let total = 0;
    for (const id of gpt2Ids) {
      total += 1;
      if (this.compactOf[id] !== this.unknownId) kept += 1;
    }
    return total === 0 ? 1 : kept / total;
  }

  /** Writes `vocab.json` ({ kind: 'compact-gpt2', gpt2Ids }) into `dir`. */
  async save(dir: string): Promise<void> {
    await mkdir(dir, { recursive: true });
    const kept = this.gpt2Ids.slice(0, -1);
    await writeFile(join(dir, 'vocab.json'), `${JSON.stringify({ kind: 'compact-gpt2', gpt2Ids: kept })}\n`);
  }

  /** Reads `dir/vocab.json`. @throws FileFormatError (one line). */
  static async load(dir: string): Promise<CompactVocabulary> {
    const path = join(dir, 'vocab.json');
    let parsed: { kind?: unknown; gpt2Ids?: unknown };
    try {
      parsed = JSON.parse(await readFile(path, 'utf8'));
    } catch (error) {
      throw new FileFormatError(`${path}: cannot read the vocabulary (${(error as Error).message.replace(/\s+/g, ' ')}).`, { parameter: path });
    }
    if (parsed.kind !== 'compact-gpt2' || !Array.isArray(parsed.gpt2Ids)) {
      throw new FileFormatError(`${path}: expected { kind: "compact-gpt2", gpt2Ids: [...] }.`, { parameter: path });
    }
    return new CompactVocabulary(parsed.gpt2Ids as number[]);
  }
}

/** GPT-2 BPE text handling through a {@link CompactVocabulary}: `<|unk|>` decodes to the text `<|unk|>`. */
export class CompactTokenizer implements TextTokenizer {
  /** The compact vocabulary. */
  readonly vocabulary: CompactVocabulary;
  private readonly gpt2 = new Gpt2Tokenizer();

  /** @param vocabulary - The id map. */
  constructor(vocabulary: CompactVocabulary) {
    this.vocabulary = vocabulary;
  }

  /** Model vocabulary size. */
  get vocabSize(): number {
    return this.vocabulary.size;
  }

  /** Compact id of `<|endoftext|>` (0). */
  get endOfTextId(): number {
    return this.vocabulary.encode([END_OF_TEXT_ID])[0]!;
  }

  /** Text → compact ids. */
  encode(text: string): number[] {
    return this.vocabulary.encode(this.gpt2.encode(text));
  }

  /** Compact ids → text. */
  decode(ids: Iterable<number>): string {
    const stream = this.createStreamDecoder();
    let text = '';
    for (const id of ids) text += stream.push(id);
    return text + stream.flush();
  }

  /** Streaming decoder over compact ids. */
  createStreamDecoder(): StreamDecoder {
    const inner = this.gpt2.createStreamDecoder();
    return {
      push: (id: number) => {
        const gpt2 = this.vocabulary.gpt2Ids[id];
        if (gpt2 === undefined) {
          throw new InvalidArgumentError(`CompactTokenizer: id ${id} is outside [0, ${this.vocabulary.size}).`, { parameter: 'id', value: id });
        }
        return gpt2 < 0 ? inner.flush() + UNKNOWN_TOKEN : inner.push(gpt2);
      },
      flush: () => inner.flush(),
    };
  }
}

/**
 * The tokenizer of a model directory: a {@link CompactTokenizer} if it has `vocab.json`, else GPT-2 BPE.
 * @example
 * const tokenizer = await loadTokenizer('runs/tiny'); tokenizer.encode('Hello'); // → model ids
 */
export async function loadTokenizer(dir: string): Promise<TextTokenizer> {
  try {
    await readFile(join(dir, 'vocab.json'));
  } catch {
    return new Gpt2Tokenizer();
  }
  return new CompactTokenizer(await CompactVocabulary.load(dir));
}
