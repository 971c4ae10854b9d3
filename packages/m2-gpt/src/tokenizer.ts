// GPT-2 byte-level BPE (r50k_base, 50257 ids) on top of `gpt-tokenizer`, plus `<|endoftext|>` handling and a
// streaming decoder that never splits a UTF-8 character across two emitted chunks.
import { encode as r50kEncode } from 'gpt-tokenizer/encoding/r50k_base';
import r50kRanks from 'gpt-tokenizer/bpeRanks/r50k_base';
import { InvalidArgumentError } from '@monarch-mixer/monarch-core';

/** Vocabulary size of GPT-2 BPE: 50,256 byte-pair ranks plus `<|endoftext|>`. */
export const GPT2_VOCAB_SIZE = 50257;
/** Id of `<|endoftext|>`, the document separator. */
export const END_OF_TEXT_ID = 50256;
/** The text form of {@link END_OF_TEXT_ID}. */
export const END_OF_TEXT = '<|endoftext|>';

/** Incremental decoder: feed ids one at a time, get back only complete characters. */
export interface StreamDecoder {
  /** Adds one token; returns the text that became complete (may be '' while a character is split across tokens). */
  push(id: number): string;
  /** Returns whatever is still buffered (an incomplete character decodes to U+FFFD) and resets. */
  flush(): string;
}

/** Text ↔ model ids, as {@link generate} needs it. {@link Gpt2Tokenizer} and `CompactTokenizer` implement it. */
export interface TextTokenizer {
  /** Ids the model sees. */
  readonly vocabSize: number;
  /** Id of the document separator. */
  readonly endOfTextId: number;
  /** Text → model ids. */
  encode(text: string): number[];
  /** Model ids → text. */
  decode(ids: Iterable<number>): string;
  /** Streaming decoder that never splits a character. */
  createStreamDecoder(): StreamDecoder;
}

const utf8 = new TextEncoder();
let tokenBytesTable: Uint8Array[] | undefined;

/** Bytes of every token id, built once from the shipped r50k ranks (rank = id). */
function tokenBytes(): Uint8Array[] {
  if (!tokenBytesTable) {
    const ranks = r50kRanks as (string | number[])[];
    tokenBytesTable = ranks.map((entry) => (typeof entry === 'string' ? utf8.encode(entry) : Uint8Array.from(entry)));
    tokenBytesTable.push(utf8.encode(END_OF_TEXT));
  }
  return tokenBytesTable;
}

function checkId(id: number, table: Uint8Array[]): Uint8Array {
  const bytes = Number.isInteger(id) ? table[id] : undefined;
  if (bytes === undefined) {
    throw new InvalidArgumentError(`Gpt2Tokenizer: token id must be an integer in [0, ${GPT2_VOCAB_SIZE}), got ${id}.`, {
      parameter: 'id',
      value: id,
    });
  }
  return bytes;
}

/**
 * GPT-2 BPE tokenizer (the tokenizer of the safari/Hyena PILE pipeline that M2-GPT followed, §3).
 *
 * Encoding is `gpt-tokenizer`'s r50k_base (identical ids to tiktoken and HF GPT-2). `gpt-tokenizer` throws on a
 * literal `<|endoftext|>` in text, so {@link encode} splits the text on it and inserts id 50256 itself, and
 * {@link encodeDocuments} appends 50256 after every document. Decoding uses our own byte table so that a
 * character split across tokens is never emitted half-way ({@link createStreamDecoder}).
 *
 * @example
 * const tok = new Gpt2Tokenizer();
 * tok.encode('Hello world'); // → [15496, 995]
 * tok.decode([15496, 995]);  // → 'Hello world'
 */
export class Gpt2Tokenizer implements TextTokenizer {
  /** Vocabulary size (50257). */
  readonly vocabSize = GPT2_VOCAB_SIZE;
  /** Id of `<|endoftext|>` (50256). */
  readonly endOfTextId = END_OF_TEXT_ID;

  /**
   * Encodes text to ids. A literal `<|endoftext|>` in the text becomes id 50256.
   * @param text - Any string.
   * @returns Token ids.
   */
  encode(text: string): number[] {
    const parts = text.split(END_OF_TEXT);
    const ids: number[] = [];
    parts.forEach((part, index) => {
      if (index > 0) ids.push(END_OF_TEXT_ID);
      if (part.length > 0) ids.push(...r50kEncode(part, { disallowedSpecial: new Set() }));
    });
    return ids;
  }

  /**
   * Encodes documents into one stream, `<|endoftext|>` (50256) after each document (the GPT-2 convention).
   * @param documents - Texts, in order.
   * @returns The concatenated ids.
   * @example
   * new Gpt2Tokenizer().encodeDocuments(['a', 'b']); // → [64, 50256, 65, 50256]
   */
  encodeDocuments(documents: Iterable<string>): number[] {
    const ids: number[] = [];
    for (const document of documents) {
      for (const id of this.encode(document)) ids.push(id);
      ids.push(END_OF_TEXT_ID);
    }
    return ids;
  }

  /**
   * Decodes ids to text (an incomplete UTF-8 character at the end decodes to U+FFFD).
   * @param ids - Token ids in [0, 50257).
   * @throws InvalidArgumentError on an id outside the vocabulary.
   */
  decode(ids: Iterable<number>): string {
    const table = tokenBytes();
    const chunks: Uint8Array[] = [];
    let length = 0;
    for (const id of ids) {
      const bytes = checkId(id, table);
      chunks.push(bytes);
      length += bytes.length;
    }
    const all = new Uint8Array(length);
    let offset = 0;
    for (const chunk of chunks) {
      all.set(chunk, offset);
      offset += chunk.length;
    }
    return new TextDecoder('utf-8').decode(all);
  }

  /**
   * A decoder for streaming: emits text only once its UTF-8 bytes are complete.
   * @example
   * const d = new Gpt2Tokenizer().createStreamDecoder();
   * [d.push(10263), d.push(234), d.push(245)]; // → ['', '', '北']
   */
  createStreamDecoder(): StreamDecoder {
    const table = tokenBytes();
    let decoder = new TextDecoder('utf-8');
    return {
      push: (id: number) => decoder.decode(checkId(id, table), { stream: true }),
      flush: () => {
        const rest = decoder.decode();
        decoder = new TextDecoder('utf-8');
        return rest;
      },
    };
  }
}
