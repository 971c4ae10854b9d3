// Text-in, answers-out tasks on an M2-BERT: fill-mask (masked LM), embed (retrieval pooled output), classify.
import * as tf from '@tensorflow/tfjs-core';
import { InvalidArgumentError } from '@monarch-mixer/monarch-core';
import { maxSequenceLength } from './m2-bert-config.js';
import type { M2BertHead } from './m2-bert-config.js';
import { M2Bert } from './m2-bert.js';
import { BertTokenizer } from './tokenizer.js';
import type { BertBatch, PaddingMode } from './tokenizer.js';

/** One candidate for a [MASK] position. */
export interface FillMaskResult {
  /** Probability of the token at that position. */
  score: number;
  /** Token id. */
  tokenId: number;
  /** Token text (WordPiece, e.g. `##s`). */
  token: string;
  /** The input with this token in place of the mask (decoded, special tokens dropped). */
  sequence: string;
  /** Index of the [MASK] among the masks of the text (0 for the first). */
  maskIndex: number;
}

/** A classification: the best label, its probability, and every label's probability. */
export interface ClassifyResult {
  /** Best label (from `id2label`). */
  label: string;
  /** Its probability (softmax; sigmoid for multi-label; the raw value for regression). */
  score: number;
  /** Every label's probability (or raw value for regression). */
  scores: Record<string, number>;
}

/** Options of {@link M2BertPipeline.embed}. */
export interface EmbedOptions {
  /** Texts per forward pass. Default 8. */
  batchSize?: number;
  /** Padding; default `max_length` (as the released retrieval models were trained; see users.md §2). */
  padding?: PaddingMode;
  /** Truncate texts longer than the max length instead of throwing. Default false. */
  truncation?: boolean;
  /** Divide each vector by its L2 norm (for cosine similarity by dot product). Default false (the original). */
  normalize?: boolean;
}

/**
 * An M2-BERT with its tokenizer: `fillMask`, `embed`, `classify`.
 *
 * The tokenizer's max length is the model's (min of max_position_embeddings and long_conv_l_max), and inputs are
 * padded to it by default: M2 has no attention mask in the encoder, so only max-length padding reproduces the
 * released models' outputs.
 *
 * @example
 * const pipe = await M2BertPipeline.fromPretrained('m2-bert-80M-2k-retrieval');
 * const [vector] = await pipe.embed(['Monarch matrices are sub-quadratic.']);
 * vector.length; // → 768
 */
export class M2BertPipeline {
  /**
   * @param model - The model.
   * @param tokenizer - Its tokenizer (`modelMaxLength` is set to the model's max length).
   */
  constructor(
    readonly model: M2Bert,
    readonly tokenizer: BertTokenizer,
  ) {
    tokenizer.modelMaxLength = maxSequenceLength(model.config);
  }

  /**
   * Loads a model folder and its tokenizer (the folder's tokenizer.json / vocab.txt, else bert-base-uncased). Node only.
   * @param dir - The folder.
   * @throws ConfigError / FileFormatError as {@link M2Bert.fromPretrained}.
   */
  static async fromPretrained(dir: string): Promise<M2BertPipeline> {
    const model = await M2Bert.fromPretrained(dir);
    return new M2BertPipeline(model, await BertTokenizer.fromDirectory(dir));
  }

  /**
   * Predicts the tokens behind every [MASK] of a text (masked-LM models).
   *
   * @param text - Text with one or more `[MASK]`.
   * @param options - `topK` candidates per mask (default 5), `padding` (default `max_length`).
   * @returns For each mask (in order), its `topK` candidates, best first.
   * @throws InvalidArgumentError if the model has no MLM head or the text has no [MASK].
   * @example
   * pipe.fillMask('Paris is the [MASK] of France.')[0][0].token; // → 'capital' (with a trained model)
   */
  fillMask(text: string, options: { topK?: number; padding?: PaddingMode } = {}): FillMaskResult[][] {
    const run = this.fillMaskTopK(text, options);
    try {
      return run.results(run.values.arraySync() as number[][], run.indices.arraySync() as number[][]);
    } finally {
      tf.dispose([run.values, run.indices]);
    }
  }

  /**
   * {@link M2BertPipeline.fillMask} with the scores read back asynchronously: every backend, webgpu in Node (which has
   * no synchronous read) included.
   *
   * @param text - Text with one or more `[MASK]`.
   * @param options - `topK` candidates per mask (default 5), `padding` (default `max_length`).
   * @returns For each mask (in order), its `topK` candidates, best first.
   * @throws InvalidArgumentError if the model has no MLM head or the text has no [MASK].
   * @example
   * (await pipe.fillMaskAsync('Paris is the [MASK] of France.'))[0][0].token; // → 'capital' (with a trained model)
   */
  async fillMaskAsync(text: string, options: { topK?: number; padding?: PaddingMode } = {}): Promise<FillMaskResult[][]> {
    const run = this.fillMaskTopK(text, options);
    try {
      return run.results((await run.values.array()) as number[][], (await run.indices.array()) as number[][]);
    } finally {
      tf.dispose([run.values, run.indices]);
    }
  }

  /** The top-k probabilities [masks, k] and token ids of every [MASK], and how to turn them, read, into results. */
  private fillMaskTopK(text: string, options: { topK?: number; padding?: PaddingMode }): {
    values: tf.Tensor2D; indices: tf.Tensor2D; results: (scores: number[][], tokenIds: number[][]) => FillMaskResult[][];
  } {
    this.requireHead(['masked-lm'], 'fillMask');
    const topK = options.topK ?? 5;
    if (!Number.isInteger(topK) || topK < 1) throw new InvalidArgumentError(`fillMask: topK must be a positive integer, got ${topK}.`);
    const batch = this.tokenizer.encodeBatch([text], { padding: options.padding ?? 'max_length' });
    const ids = batch.inputIds[0]!;
    const positions = ids.flatMap((id, i) => (id === this.tokenizer.maskTokenId ? [i] : []));
    if (positions.length === 0) {
      throw new InvalidArgumentError(`fillMask: the text has no ${this.tokenizer.maskToken} token.`, { parameter: 'text' });
    }
    const k = Math.min(topK, this.model.config.vocabSize);
    const { values, indices } = tf.tidy(() => {
      const output = this.forward(batch);
      const V = this.model.config.vocabSize;
      const rows = tf.gather(tf.reshape(output.logits!, [-1, V]), tf.tensor1d(positions, 'int32')); // [masks, V]
      return tf.topk(tf.softmax(rows), k);
    });
    const realLength = batch.attentionMask[0]!.reduce((a, b) => a + b, 0);
    const results = (scores: number[][], tokenIds: number[][]) =>
      positions.map((position, maskIndex) =>
        tokenIds[maskIndex]!.map((tokenId, rank) => {
          const filled = ids.slice(0, realLength);
          filled[position] = tokenId;
          return {
            score: scores[maskIndex]![rank]!,
            tokenId,
            token: this.tokenizer.idToToken(tokenId) ?? `[${tokenId}]`,
            sequence: this.tokenizer.decode(filled),
            maskIndex,
          };
        }),
      );
    return { values: values as tf.Tensor2D, indices: indices as tf.Tensor2D, results };
  }

  /**
   * Sentence embeddings: the pooler output tanh(W·h[CLS] + b), as the repo's LoCo evaluator reads it from the
   * retrieval models. Inputs are padded to the model's max length by default, because that is how the released
   * models were trained and evaluated; padding to the batch's longest text gives different vectors (issues #19, #43).
   *
   * @param texts - Texts (queries and documents alike; no prefix).
   * @param options - See {@link EmbedOptions}.
   * @returns One vector of length d per text.
   * @throws InvalidArgumentError if the model has no pooler (a masked-LM checkpoint) or a text is too long.
   */
  async embed(texts: readonly string[], options: EmbedOptions = {}): Promise<number[][]> {
    this.requireHead(['text-encoding', 'none', 'sequence-classification'], 'embed');
    const batchSize = options.batchSize ?? 8;
    const vectors: number[][] = [];
    for (let start = 0; start < texts.length; start += batchSize) {
      const batch = this.tokenizer.encodeBatch(texts.slice(start, start + batchSize), {
        padding: options.padding ?? 'max_length',
        truncation: options.truncation,
      });
      const pooled = tf.tidy(() => {
        const p = this.forward(batch).poolerOutput!;
        return options.normalize ? tf.div(p, tf.maximum(tf.norm(p, 'euclidean', 1, true), 1e-12)) : p;
      });
      vectors.push(...((await pooled.array()) as number[][]));
      pooled.dispose();
    }
    return vectors;
  }

  /**
   * Classifies texts (or sentence pairs) with a sequence-classification checkpoint; labels come from `id2label`.
   * @param texts - Texts.
   * @param options - `pairs` (second segments), `padding` (default `max_length`), `truncation`.
   * @returns One result per text.
   * @throws InvalidArgumentError if the model has no classifier.
   */
  async classify(
    texts: readonly string[],
    options: { pairs?: readonly string[]; padding?: PaddingMode; truncation?: boolean } = {},
  ): Promise<ClassifyResult[]> {
    this.requireHead(['sequence-classification'], 'classify');
    const { labels, problemType } = this.model.config;
    const batch = this.tokenizer.encodeBatch(texts, { padding: options.padding ?? 'max_length', ...options });
    const kind = problemType ?? (labels.length === 1 ? 'regression' : 'single_label_classification');
    const scores = tf.tidy(() => {
      const logits = this.forward(batch).logits!;
      return kind === 'regression' ? logits : kind === 'multi_label_classification' ? tf.sigmoid(logits) : tf.softmax(logits);
    });
    const rows = (await scores.array()) as number[][];
    scores.dispose();
    return rows.map((row) => {
      const best = row.indexOf(Math.max(...row));
      return { label: labels[best]!, score: row[best]!, scores: Object.fromEntries(labels.map((l, i) => [l, row[i]!])) };
    });
  }

  /** Frees the model's weights. */
  dispose(): void {
    this.model.dispose();
  }

  private forward(batch: BertBatch) {
    return this.model.forward({ inputIds: batch.inputIds, tokenTypeIds: batch.tokenTypeIds, attentionMask: batch.attentionMask });
  }

  private requireHead(heads: M2BertHead[], task: string): void {
    if (!heads.includes(this.model.config.head)) {
      throw new InvalidArgumentError(
        `${task}: needs a model with head ${heads.join(' or ')}, but this checkpoint is ${this.model.config.head}.`,
        { parameter: 'model', value: this.model.config.head },
      );
    }
  }
}
