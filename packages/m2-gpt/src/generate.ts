// Text generation for any causal LM of this package: sampling options, stop sequences, streaming as an async
// iterator, and two ways to get next-token logits — incremental (a per-layer cache, O(t) work per token) or
// the naive full recompute of the prefix (kept for the bench and as the reference).
import { InvalidArgumentError } from '@monarch-mixer/monarch-core';
import { resolveSamplingOptions, sampleNextToken, SeededRandom } from './sampling.js';
import type { SamplingOptions } from './sampling.js';
import { Gpt2Tokenizer } from './tokenizer.js';
import type { TextTokenizer } from './tokenizer.js';

/** Feeds tokens one at a time and returns the logits for the next token; holds a per-layer cache. */
export interface IncrementalDecoder {
  /**
   * Appends one token at the next position.
   * Shapes: → logits [V] (a copy on the host).
   */
  step(id: number): Float32Array;
  /**
   * {@link IncrementalDecoder.step} with the logits read back asynchronously: the only way on webgpu in Node, which
   * has no synchronous read. {@link generate} uses it when present.
   */
  stepAsync?(id: number): Promise<Float32Array>;
  /** Number of tokens fed so far. */
  readonly position: number;
  /** Frees the cache's tensors. */
  dispose(): void;
}

/** What {@link generate} needs from a model. Both {@link M2Gpt} and {@link BaselineGpt} implement it. */
export interface CausalLanguageModel {
  /** Vocabulary size V. */
  readonly vocabSize: number;
  /** Longest sequence the model accepts. */
  readonly maxLength: number;
  /** Next-token logits after the last id, recomputing the whole prefix (the naive path). Shapes: ids [t] → [V]. */
  nextTokenLogits(ids: readonly number[]): Float32Array;
  /** {@link CausalLanguageModel.nextTokenLogits} read back asynchronously; {@link generate} uses it when present. */
  nextTokenLogitsAsync?(ids: readonly number[]): Promise<Float32Array>;
  /** An incremental decoder, where the model has one. */
  createIncrementalDecoder?(): IncrementalDecoder;
}

/** Options of {@link generate} and {@link generateStream}. */
export interface GenerateOptions extends SamplingOptions {
  /** Tokens to generate at most (≥ 1). Default 64. */
  maxNewTokens?: number;
  /** Stop as soon as the generated text contains one of these; the stop text is not returned. Default none. */
  stopSequences?: readonly string[];
  /** Stop on `<|endoftext|>` (not returned as text). Default true. */
  stopAtEndOfText?: boolean;
  /** Use the model's incremental decoder when it has one. Default true; false = naive recompute per token. */
  incremental?: boolean;
  /** Tokenizer for prompts given as text and for decoding. Default: GPT-2 BPE ({@link Gpt2Tokenizer}). */
  tokenizer?: TextTokenizer;
}

/** One streamed step: the sampled token and the text that became final with it (may be ''). */
export interface GeneratedToken {
  /** Sampled id. */
  token: number;
  /** New text released by this token (held back while it could still be the start of a stop sequence). */
  text: string;
}

/** Why generation ended. */
export type FinishReason = 'maxNewTokens' | 'stopSequence' | 'endOfText' | 'maxLength';

/** Result of {@link generate}. */
export interface GenerateResult {
  /** Generated text (prompt excluded, stop sequence excluded). */
  text: string;
  /** Generated ids (the stop token/sequence's ids included). */
  tokens: number[];
  /** Why it stopped. */
  finishReason: FinishReason;
}

/**
 * Streams generated tokens as an async iterator of `{ token, text }`; the iterator's return value is the
 * {@link GenerateResult}. An empty prompt starts from `<|endoftext|>`.
 *
 * @param model - Any {@link CausalLanguageModel}.
 * @param prompt - Text, or token ids.
 * @param options - Sampling and stopping options.
 * @throws InvalidArgumentError (one line) on bad options, or a prompt longer than the model's `maxLength`.
 * @example
 * for await (const { text } of generateStream(model, 'Once upon', { maxNewTokens: 20, seed: 1 })) process.stdout.write(text);
 */
export async function* generateStream(
  model: CausalLanguageModel,
  prompt: string | readonly number[],
  options: GenerateOptions = {},
): AsyncGenerator<GeneratedToken, GenerateResult, void> {
  const sampling = resolveSamplingOptions(options);
  const { maxNewTokens = 64, stopSequences = [], stopAtEndOfText = true, incremental = true } = options;
  if (!Number.isInteger(maxNewTokens) || maxNewTokens < 1) {
    throw new InvalidArgumentError(`generate: maxNewTokens must be an integer ≥ 1, got ${maxNewTokens}.`, {
      parameter: 'maxNewTokens',
      value: maxNewTokens,
    });
  }
  if (stopSequences.some((s) => typeof s !== 'string' || s.length === 0)) {
    throw new InvalidArgumentError('generate: stopSequences must be non-empty strings.', { parameter: 'stopSequences' });
  }
  const tokenizer: TextTokenizer = options.tokenizer ?? new Gpt2Tokenizer();
  const endOfText = tokenizer.endOfTextId;
  const promptIds = typeof prompt === 'string' ? tokenizer.encode(prompt) : [...prompt];
  if (promptIds.length === 0) promptIds.push(endOfText);
  if (promptIds.length > model.maxLength) {
    throw new InvalidArgumentError(
      `generate: the prompt has ${promptIds.length} tokens but the model's maxLength is ${model.maxLength}. Shorten the prompt.`,
      { parameter: 'prompt', value: promptIds.length },
    );
  }
  for (const id of promptIds) {
    if (!Number.isInteger(id) || id < 0 || id >= model.vocabSize) {
      throw new InvalidArgumentError(`generate: prompt token ${id} is outside the vocabulary [0, ${model.vocabSize}).`, {
        parameter: 'prompt',
        value: id,
      });
    }
  }

  const rng = new SeededRandom(sampling.seed);
  const context = [...promptIds];
  const generated: number[] = [];
  const textDecoder = tokenizer.createStreamDecoder();
  let emitted = '';
  let pending = '';
  const decoder = incremental && model.createIncrementalDecoder ? model.createIncrementalDecoder() : undefined;
  try {
    let logits: Float32Array | undefined;
    // Asynchronous reads where the model has them: webgpu in Node cannot read synchronously.
    const step = (id: number) => (decoder!.stepAsync ? decoder!.stepAsync(id) : decoder!.step(id));
    const nextTokenLogits = (ids: readonly number[]) => (model.nextTokenLogitsAsync ? model.nextTokenLogitsAsync(ids) : model.nextTokenLogits(ids));
    if (decoder) for (const id of promptIds) logits = await step(id);
    let finishReason: FinishReason = 'maxNewTokens';
    while (generated.length < maxNewTokens) {
      if (!decoder) logits = await nextTokenLogits(context);
      const token = sampleNextToken(logits!, sampling, rng, context);
      generated.push(token);
      context.push(token);
      if (stopAtEndOfText && token === endOfText) {
        finishReason = 'endOfText';
        const rest = pending + textDecoder.flush(); // text held back for a stop sequence that never completed
        emitted += rest;
        yield { token, text: rest };
        break;
      }
      pending += textDecoder.push(token);
      const stop = findStop(pending, stopSequences);
      if (stop >= 0) {
        const text = pending.slice(0, stop);
        emitted += text;
        pending = '';
        finishReason = 'stopSequence';
        yield { token, text };
        break;
      }
      const hold = heldBack(pending, stopSequences);
      const text = pending.slice(0, pending.length - hold);
      pending = pending.slice(pending.length - hold);
      emitted += text;
      const atMaxLength = context.length > model.maxLength;
      if (generated.length === maxNewTokens || atMaxLength) {
        if (atMaxLength) finishReason = 'maxLength';
        const rest = pending + textDecoder.flush();
        emitted += rest;
        yield { token, text: text + rest };
        break;
      }
      yield { token, text };
      if (decoder) logits = await step(token);
    }
    return { text: emitted, tokens: generated, finishReason };
  } finally {
    decoder?.dispose();
  }
}

/**
 * Generates text to completion (see {@link generateStream} for the options).
 * @example
 * const { text } = await generate(model, 'The', { maxNewTokens: 8, temperature: 0 });
 */
export async function generate(
  model: CausalLanguageModel,
  prompt: string | readonly number[],
  options: GenerateOptions = {},
): Promise<GenerateResult> {
  const stream = generateStream(model, prompt, options);
  for (;;) {
    const next = await stream.next();
    if (next.done) return next.value;
  }
}

/** Index of the earliest stop sequence in `text`, or −1. */
function findStop(text: string, stops: readonly string[]): number {
  let best = -1;
  for (const stop of stops) {
    const index = text.indexOf(stop);
    if (index >= 0 && (best < 0 || index < best)) best = index;
  }
  return best;
}

/** Length of the longest suffix of `text` that is a proper prefix of some stop sequence. */
function heldBack(text: string, stops: readonly string[]): number {
  let hold = 0;
  for (const stop of stops) {
    for (let k = Math.min(stop.length - 1, text.length); k > hold; k--) {
      if (text.endsWith(stop.slice(0, k))) {
        hold = k;
        break;
      }
    }
  }
  return hold;
}
