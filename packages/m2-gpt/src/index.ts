/**
 * M2-GPT for TensorFlow.js: a causal, attention-free and MLP-free language model (Monarch Mixer, §3 of
 * arXiv:2310.12109), with GPT-2 BPE tokenization, streaming generation with incremental decoding, and an
 * attention GPT baseline of the same size for quality comparisons.
 *
 * Place in the package graph: monarch-core → m2-layers → **m2-gpt** → apps (cli, train, bench).
 *
 * @packageDocumentation
 */

export { M2Gpt } from './m2-gpt.js';
export type { M2GptForwardOptions, M2GptOptions, M2GptOutput, M2GptRunOptions } from './m2-gpt.js';
export { M2_GPT_DEFAULTS, m2GptPresets, PAPER_PARAMETER_COUNTS, resolveM2GptConfig, countM2GptParameters } from './m2-gpt-config.js';
export type { M2GptConfig, M2GptPresetName, M2GptParameterCount } from './m2-gpt-config.js';
export { Gpt2Tokenizer, GPT2_VOCAB_SIZE, END_OF_TEXT_ID, END_OF_TEXT } from './tokenizer.js';
export type { StreamDecoder, TextTokenizer } from './tokenizer.js';
export { CompactVocabulary, CompactTokenizer, loadTokenizer, UNKNOWN_TOKEN } from './compact-vocabulary.js';
export { SeededRandom, resolveSamplingOptions, sampleNextToken } from './sampling.js';
export type { SamplingOptions, ResolvedSamplingOptions } from './sampling.js';
export { generate, generateStream } from './generate.js';
export type {
  CausalLanguageModel, IncrementalDecoder, GenerateOptions, GeneratedToken, GenerateResult, FinishReason,
} from './generate.js';
export { BaselineGpt, baselineGptConfigFor, countBaselineGptParameters } from './baseline-gpt.js';
export type { BaselineGptConfig } from './baseline-gpt.js';
export { embeddingLookup, HEAD_CHUNK_ROWS, nextTokenLoss, nextTokenLossFromHidden, tiedHead, tiedHeadCrossEntropy } from './nn.js';
export { readCheckpointConfig, checkpointFromBytes } from './checkpoint.js';
export { gptModels, loadGptModel } from './models.js';
export type { GptLanguageModel, GptModelKind } from './models.js';
export type { CheckpointConfigFile } from './checkpoint.js';
