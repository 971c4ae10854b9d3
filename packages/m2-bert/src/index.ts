/**
 * M2-BERT for TensorFlow.js: the released M2-BERT checkpoints (80M/110M/260M/341M, the 2k/8k/32k long-context
 * and retrieval models) loaded from their HuggingFace folders, with masked-LM, classification and retrieval heads,
 * the bert-base-uncased tokenizer, and `fillMask` / `embed` / `classify` tasks.
 *
 * Place in the package graph: monarch-core → m2-layers → **m2-bert** → apps (cli, train, bench).
 *
 * Padding contract: M2's mixer takes no attention mask, so pad tokens change every output. The released models
 * were trained padded with [PAD] = 0 to their max length; `embed` and the tokenizer pad that way by default.
 *
 * @packageDocumentation
 */
export { HEAD_CHUNK_ROWS, M2Bert, maskedLmLoss } from './m2-bert.js';
export type { M2BertInputs, M2BertOutput, M2BertForwardOptions } from './m2-bert.js';
export {
  M2_BERT_DEFAULTS,
  m2BertPresets,
  resolveM2BertConfig,
  configFromHuggingFace,
  configToHuggingFace,
  maxSequenceLength,
} from './m2-bert-config.js';
export type { M2BertConfig, M2BertConfigInput, M2BertHead, M2BertPresetName, M2BertProblemType } from './m2-bert-config.js';
export { m2BertStateDict, countM2BertParameters, normalizeKey, originalKey } from './state-dict.js';
export type { StateDictEntry, M2BertParameterCount } from './state-dict.js';
export {
  fromPretrained,
  savePretrained,
  loadStateDict,
  stateDictRecords,
  stateDictRecordsAsync,
  readStateDict,
  configForWeights,
  WEIGHT_FILES,
} from './checkpoint.js';
export type { FromPretrainedOptions } from './checkpoint.js';
export {
  BertTokenizer,
  BERT_SPECIAL_IDS,
  convertMarkedVocab,
  vocabToText,
  vocabFromText,
  bertTokenizerJson,
  loadBertBaseUncasedVocab,
} from './tokenizer.js';
export type { BertBatch, EncodeBatchOptions, PaddingMode } from './tokenizer.js';
export { M2BertPipeline } from './tasks.js';
export type { FillMaskResult, ClassifyResult, EmbedOptions } from './tasks.js';
