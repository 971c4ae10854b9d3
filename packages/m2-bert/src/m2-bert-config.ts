// M2-BERT configuration: the keys, their defaults, the presets of every released checkpoint, validation in one
// place, and the HuggingFace `config.json` layout (snake_case keys) in both directions.
//
// Shape legend used in this package: B batch · L sequence · d model dim · I MLP intermediate dim · V vocabulary.
// Numbers and key names: m2-architecture.md §2.2–2.9 (HazyResearch/m2, branch staging).
import { ConfigError } from '@monarch-mixer/monarch-core';

/**
 * Which head sits on the encoder; chosen by `architectures` in `config.json`.
 * - `masked-lm`: `BertForMaskedLM` (transform + decoder tied to the word embeddings; no pooler).
 * - `sequence-classification`: `BertForSequenceClassification` (pooler + classifier).
 * - `text-encoding`: the retrieval checkpoints (`BertForTextEncoding`): pooler output is the embedding.
 * - `none`: `BertModel` (encoder + pooler, keys without the `bert.` prefix).
 */
export type M2BertHead = 'masked-lm' | 'sequence-classification' | 'text-encoding' | 'none';

/** Loss of the classification head (HF `problem_type`); `null` infers it from the labels as the original does. */
export type M2BertProblemType = 'regression' | 'single_label_classification' | 'multi_label_classification';

/** Configuration of an {@link M2Bert} model. Every key has a default in {@link M2_BERT_DEFAULTS}. */
export interface M2BertConfig {
  /** Vocabulary size V (`vocab_size`). Default 30528: bert-base-uncased's 30522 padded to a multiple of 8. */
  readonly vocabSize: number;
  /** Model width d (`hidden_size`). Divisible by `numBlocks`. Default 768. */
  readonly modelDim: number;
  /** GLU intermediate width I (`intermediate_size`); the gate projection is d → 2I. Default 3072 (4d). */
  readonly intermediateDim: number;
  /** Number of M2 encoder layers (`num_hidden_layers`). Default 12 (also for the "large" releases). */
  readonly numLayers: number;
  /** Rows of the position table (`max_position_embeddings`); inputs must have L ≤ this. Default 128. */
  readonly maxPositionEmbeddings: number;
  /** Rows of each filter's positional features z (`long_conv_l_max`); inputs must have L ≤ this. Default 128. */
  readonly longConvLMax: number;
  /** Token types (`type_vocab_size`). Default 2. */
  readonly typeVocabSize: number;
  /** Epsilon of the embedding, MLP and head LayerNorms (`layer_norm_eps`). Default 1e-12. */
  readonly layerNormEps: number;
  /** Dropout after the embeddings, in the MLP and before the classifier (`hidden_dropout_prob`). Default 0.1. */
  readonly hiddenDropout: number;
  /** Dropout before the classifier (`classifier_dropout`); `null` uses `hiddenDropout`. Default null. */
  readonly classifierDropout: number | null;
  /** Add learned absolute position embeddings (`use_positional_encodings`). Default true (every release). */
  readonly usePositionalEncodings: boolean;
  /** Bidirectional long convolutions: a second, reversed filter MLP per filter (`bidirectional`). Default true. */
  readonly bidirectional: boolean;
  /** The mixer's residual long convolution filter_fn2 + D₂ (`residual_long_conv`). Default true. */
  readonly residualLongConv: boolean;
  /** The 80M base model's extra LayerNorm (eps 1e-5) at each mixer input (`hyena_training_additions`). Default false. */
  readonly hyenaTrainingAdditions: boolean;
  /** Diagonal blocks of every BlockdiagLinear in the GLU MLP (`monarch_mlp_nblocks`). Default 4. */
  readonly numBlocks: number;
  /** Width of the implicit-filter MLP (`hyena_filter_order`). Default 128. */
  readonly filterOrder: number;
  /** Positional features of the implicit filter (`hyena_emb_dim`), odd and ≥ 3. Default 5. */
  readonly filterEmbDim: number;
  /** Initial frequency of the filter's Sin activations (`hyena_w`). Default 10. */
  readonly filterW: number;
  /** Frequency multiplier of the Sin activations (`hyena_w_mod`). Default 1. */
  readonly filterWMod: number;
  /** Mean pooling over `attention_mask` instead of the [CLS] row in the pooler (`pool_all`). Default false. */
  readonly poolAll: boolean;
  /** The head on the encoder (from `architectures`). Default `masked-lm`. */
  readonly head: M2BertHead;
  /** Class names by id (`id2label`); its length is the number of labels. Default ['LABEL_0', 'LABEL_1']. */
  readonly labels: readonly string[];
  /** Loss of the classification head (`problem_type`); null infers it from the labels. Default null. */
  readonly problemType: M2BertProblemType | null;
  /** Standard deviation of the N(0, σ) init of Linear/Embedding weights (`initializer_range`). Default 0.02. */
  readonly initializerRange: number;
  /** Learning rate of the implicit-filter MLPs, for trainers (`long_conv_kernel_learning_rate`). Default 1e-3. */
  readonly filterLearningRate: number;
  /** Learning rate of the filters' z tables, for trainers (`hyena_lr_pos_emb`). Default 1e-5. */
  readonly filterPositionLearningRate: number;
  /** Weight decay of the implicit-filter MLPs, for trainers (`hyena_wd`). Default 0.1. */
  readonly filterWeightDecay: number;
}

/** Defaults of every {@link M2BertConfig} key: the M2-BERT-base 110M-style settings of §2.7 at d 768. */
export const M2_BERT_DEFAULTS: Readonly<M2BertConfig> = Object.freeze({
  vocabSize: 30528,
  modelDim: 768,
  intermediateDim: 3072,
  numLayers: 12,
  maxPositionEmbeddings: 128,
  longConvLMax: 128,
  typeVocabSize: 2,
  layerNormEps: 1e-12,
  hiddenDropout: 0.1,
  classifierDropout: null,
  usePositionalEncodings: true,
  bidirectional: true,
  residualLongConv: true,
  hyenaTrainingAdditions: false,
  numBlocks: 4,
  filterOrder: 128,
  filterEmbDim: 5,
  filterW: 10,
  filterWMod: 1,
  poolAll: false,
  head: 'masked-lm',
  labels: Object.freeze(['LABEL_0', 'LABEL_1']),
  problemType: null,
  initializerRange: 0.02,
  filterLearningRate: 1e-3,
  filterPositionLearningRate: 1e-5,
  filterWeightDecay: 0.1,
});

/** Names of the built-in presets: every released M2-BERT configuration (§2.7) plus `tiny` for tests. */
export type M2BertPresetName =
  | 'tiny'
  | 'm2-bert-80M'
  | 'm2-bert-110M'
  | 'm2-bert-260M'
  | 'm2-bert-341M'
  | 'm2-bert-80M-2k'
  | 'm2-bert-80M-8k'
  | 'm2-bert-80M-32k'
  | 'm2-bert-80M-2k-retrieval'
  | 'm2-bert-80M-8k-retrieval'
  | 'm2-bert-80M-32k-retrieval';

const longContext = (length: number, head: M2BertHead) =>
  Object.freeze({ maxPositionEmbeddings: length, longConvLMax: length, head });

/**
 * Built-in configurations (m2-architecture.md §2.7). All have 12 layers and vocabulary 30528.
 * - `m2-bert-80M` (`danfu09/m2-bert-80M`): d 768, L 128, with the extra mixer LayerNorms.
 * - `m2-bert-110M` d 960, `m2-bert-260M` d 1536, `m2-bert-341M` d 1792: L 128, masked LM.
 * - `m2-bert-80M-{2k,8k,32k}` (`togethercomputer/…`): d 768, long-context masked LM.
 * - `m2-bert-80M-{2k,8k,32k}-retrieval`: the same encoders with the pooler as the embedding head.
 * - `tiny`: the golden-fixture model (V 1024, d 64, I 256, 2 layers, L 32, filter order 16): 147,200 parameters.
 */
export const m2BertPresets: Readonly<Record<M2BertPresetName, Readonly<Partial<M2BertConfig>>>> = Object.freeze({
  tiny: Object.freeze({
    vocabSize: 1024, modelDim: 64, intermediateDim: 256, numLayers: 2,
    maxPositionEmbeddings: 32, longConvLMax: 32, filterOrder: 16,
  }),
  'm2-bert-80M': Object.freeze({ hyenaTrainingAdditions: true }),
  'm2-bert-110M': Object.freeze({ modelDim: 960, intermediateDim: 3840 }),
  'm2-bert-260M': Object.freeze({ modelDim: 1536, intermediateDim: 6144 }),
  'm2-bert-341M': Object.freeze({ modelDim: 1792, intermediateDim: 7168 }),
  'm2-bert-80M-2k': longContext(2048, 'masked-lm'),
  'm2-bert-80M-8k': longContext(8192, 'masked-lm'),
  'm2-bert-80M-32k': longContext(32768, 'masked-lm'),
  'm2-bert-80M-2k-retrieval': longContext(2048, 'text-encoding'),
  'm2-bert-80M-8k-retrieval': longContext(8192, 'text-encoding'),
  'm2-bert-80M-32k-retrieval': longContext(32768, 'text-encoding'),
});

/** A partial config, optionally starting from a preset. */
export type M2BertConfigInput = Partial<M2BertConfig> & { preset?: M2BertPresetName | string };

const KEYS = new Set<string>(Object.keys(M2_BERT_DEFAULTS));
const HEADS: readonly M2BertHead[] = ['masked-lm', 'sequence-classification', 'text-encoding', 'none'];
const PROBLEM_TYPES: readonly M2BertProblemType[] = ['regression', 'single_label_classification', 'multi_label_classification'];

/**
 * Fills in defaults, checks every constraint in one place, and returns a frozen config.
 *
 * @param partial - Keys to override; `preset` picks a base from {@link m2BertPresets} first.
 * @returns The full, frozen configuration.
 * @throws ConfigError on an unknown key or preset, or a value out of range (one line each).
 * @example
 * resolveM2BertConfig({ preset: 'tiny' }).modelDim; // → 64
 */
export function resolveM2BertConfig(partial: M2BertConfigInput = {}): M2BertConfig {
  const { preset, ...rest } = partial;
  let base: Partial<M2BertConfig> = {};
  if (preset !== undefined) {
    if (!Object.hasOwn(m2BertPresets, preset)) {
      throw new ConfigError(`Unknown M2-BERT preset "${preset}". Expected one of: ${Object.keys(m2BertPresets).join(', ')}.`, {
        parameter: 'preset',
        value: preset,
      });
    }
    base = m2BertPresets[preset as M2BertPresetName];
  }
  for (const key of Object.keys(rest)) {
    if (!KEYS.has(key)) {
      throw new ConfigError(`M2BertConfig has no key "${key}". Expected one of: ${[...KEYS].join(', ')}.`, { parameter: key });
    }
  }
  const defined = Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== undefined)) as Partial<M2BertConfig>;
  const config: M2BertConfig = { ...M2_BERT_DEFAULTS, ...base, ...defined };
  const fail = (key: string, message: string, value?: unknown): never => {
    throw new ConfigError(`M2BertConfig.${key} ${message}`, { parameter: key, value });
  };

  const positiveInts = [
    'vocabSize', 'modelDim', 'intermediateDim', 'numLayers', 'maxPositionEmbeddings', 'longConvLMax', 'typeVocabSize',
    'numBlocks', 'filterOrder', 'filterEmbDim',
  ] as const;
  for (const key of positiveInts) {
    const value = config[key];
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) fail(key, `must be a positive integer, got ${String(value)}.`, value);
  }
  for (const key of ['layerNormEps', 'filterW', 'filterWMod', 'initializerRange'] as const) {
    const value = config[key];
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) fail(key, `must be a finite number > 0, got ${String(value)}.`, value);
  }
  for (const key of ['filterLearningRate', 'filterPositionLearningRate', 'filterWeightDecay'] as const) {
    const value = config[key];
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) fail(key, `must be a finite number ≥ 0, got ${String(value)}.`, value);
  }
  for (const key of ['hiddenDropout', 'classifierDropout'] as const) {
    const value = config[key];
    if (value === null && key === 'classifierDropout') continue;
    if (typeof value !== 'number' || !(value >= 0 && value < 1)) fail(key, `must be a probability in [0, 1), got ${String(value)}.`, value);
  }
  for (const key of ['usePositionalEncodings', 'bidirectional', 'residualLongConv', 'hyenaTrainingAdditions', 'poolAll'] as const) {
    if (typeof config[key] !== 'boolean') fail(key, `must be true or false, got ${String(config[key])}.`, config[key]);
  }
  for (const key of ['modelDim', 'intermediateDim'] as const) {
    if (config[key] % config.numBlocks !== 0) {
      const hint = Math.max(config.numBlocks, Math.floor(config[key] / config.numBlocks) * config.numBlocks);
      fail(key, `(${config[key]}) must be divisible by numBlocks (${config.numBlocks}). Try ${hint}.`, config[key]);
    }
  }
  if (config.filterEmbDim < 3 || config.filterEmbDim % 2 === 0) {
    fail('filterEmbDim', `must be odd and ≥ 3 (t plus cos/sin bands), got ${config.filterEmbDim}.`, config.filterEmbDim);
  }
  if (!HEADS.includes(config.head)) fail('head', `must be one of ${HEADS.join(', ')}, got "${String(config.head)}".`, config.head);
  if (config.problemType !== null && !PROBLEM_TYPES.includes(config.problemType)) {
    fail('problemType', `must be null or one of ${PROBLEM_TYPES.join(', ')}, got "${String(config.problemType)}".`, config.problemType);
  }
  if (!Array.isArray(config.labels) || config.labels.length < 1 || !config.labels.every((l) => typeof l === 'string')) {
    fail('labels', `must be a non-empty array of label names, got ${JSON.stringify(config.labels)}.`, config.labels);
  }
  return Object.freeze({ ...config, labels: Object.freeze([...config.labels]) });
}

/** The longest input a model accepts: min(maxPositionEmbeddings, longConvLMax). */
export function maxSequenceLength(config: M2BertConfig): number {
  return config.usePositionalEncodings ? Math.min(config.maxPositionEmbeddings, config.longConvLMax) : config.longConvLMax;
}

// ---------------------------------------------------------------------------------------------------------------
// HuggingFace config.json (the M2 key layout of configuration_bert.py)

const ARCHITECTURE_OF_HEAD: Readonly<Record<M2BertHead, string>> = {
  'masked-lm': 'BertForMaskedLM',
  'sequence-classification': 'BertForSequenceClassification',
  'text-encoding': 'BertForTextEncoding',
  none: 'BertModel',
};

/** Snake-case key of config.json for every camelCase key whose value is copied unchanged. */
const HF_KEYS = {
  vocabSize: 'vocab_size',
  modelDim: 'hidden_size',
  intermediateDim: 'intermediate_size',
  numLayers: 'num_hidden_layers',
  maxPositionEmbeddings: 'max_position_embeddings',
  longConvLMax: 'long_conv_l_max',
  typeVocabSize: 'type_vocab_size',
  layerNormEps: 'layer_norm_eps',
  hiddenDropout: 'hidden_dropout_prob',
  classifierDropout: 'classifier_dropout',
  usePositionalEncodings: 'use_positional_encodings',
  bidirectional: 'bidirectional',
  residualLongConv: 'residual_long_conv',
  hyenaTrainingAdditions: 'hyena_training_additions',
  numBlocks: 'monarch_mlp_nblocks',
  filterOrder: 'hyena_filter_order',
  filterEmbDim: 'hyena_emb_dim',
  filterW: 'hyena_w',
  filterWMod: 'hyena_w_mod',
  poolAll: 'pool_all',
  problemType: 'problem_type',
  initializerRange: 'initializer_range',
  filterLearningRate: 'long_conv_kernel_learning_rate',
  filterPositionLearningRate: 'hyena_lr_pos_emb',
  filterWeightDecay: 'hyena_wd',
} as const satisfies Partial<Record<keyof M2BertConfig, string>>;

/**
 * Reads the `head` from `architectures` and `auto_map`.
 * The retrieval checkpoints name `BertForSequenceClassification` but map it to `bert_layers.BertForTextEncoding`.
 */
function headFromHuggingFace(json: Record<string, unknown>): M2BertHead {
  const architectures = json.architectures;
  const architecture = Array.isArray(architectures) && typeof architectures[0] === 'string' ? architectures[0] : 'BertModel';
  const autoMap = (typeof json.auto_map === 'object' && json.auto_map !== null ? json.auto_map : {}) as Record<string, unknown>;
  const mapsToTextEncoding = Object.values(autoMap).some((v) => typeof v === 'string' && v.endsWith('BertForTextEncoding'));
  switch (architecture) {
    case 'BertForMaskedLM':
      return 'masked-lm';
    case 'BertForSequenceClassification':
      return mapsToTextEncoding ? 'text-encoding' : 'sequence-classification';
    case 'BertForTextEncoding':
      return 'text-encoding';
    case 'BertModel':
      return 'none';
    default:
      throw new ConfigError(
        `config.json: unsupported architecture "${architecture}". Expected one of: BertForMaskedLM, BertForSequenceClassification, BertForTextEncoding, BertModel.`,
        { parameter: 'architectures', value: architecture },
      );
  }
}

/**
 * Converts a HuggingFace M2-BERT `config.json` (snake_case, `model_type` "m2_bert" or "bert") to a resolved config.
 *
 * Keys the port does not need (`alibi_starting_size`, `use_flash_fft`, `num_attention_heads`, …) are ignored;
 * missing `monarch_mixer_sequence_mixing` / `use_flash_*` keys are fine (the retrieval configs lack them).
 * `hyena_training_additions` is read here, but {@link fromPretrained} overrides it from the weights.
 *
 * @param json - The parsed config.json.
 * @returns The resolved configuration.
 * @throws ConfigError for `use_flash_mm` true, `monarch_mixer_sequence_mixing` false, a non-GLU or non-Monarch MLP,
 *   an unknown architecture, or a value out of range.
 * @example
 * configFromHuggingFace({ hidden_size: 960, intermediate_size: 3840, architectures: ['BertForMaskedLM'] }).modelDim; // → 960
 */
export function configFromHuggingFace(json: Record<string, unknown>): M2BertConfig {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new ConfigError('config.json: expected a JSON object.');
  }
  if (json.use_flash_mm === true) {
    throw new ConfigError(
      'config.json: use_flash_mm is true; the FlashMM mixer (csrc/flashmm) is a forward-only CUDA benchmark kernel whose parameters are not checkpoint-compatible. Set it to false.',
      { parameter: 'use_flash_mm', value: true },
    );
  }
  if (json.monarch_mixer_sequence_mixing === false) {
    throw new ConfigError('config.json: monarch_mixer_sequence_mixing is false (an attention BERT); only M2 sequence mixing is supported.', {
      parameter: 'monarch_mixer_sequence_mixing',
      value: false,
    });
  }
  for (const key of ['use_glu_mlp', 'use_monarch_mlp'] as const) {
    if (json[key] === false) {
      throw new ConfigError(`config.json: ${key} is false; only the GLU Monarch MLP of the released models is supported.`, { parameter: key });
    }
  }
  const partial: Record<string, unknown> = {};
  for (const [camel, snake] of Object.entries(HF_KEYS)) {
    if (json[snake] !== undefined) partial[camel] = json[snake];
  }
  if (json.classifier_dropout === undefined) delete partial.classifierDropout;
  // long_conv_l_max falls back to max_position_embeddings (they are equal in every release).
  if (partial.longConvLMax === undefined && partial.maxPositionEmbeddings !== undefined) partial.longConvLMax = partial.maxPositionEmbeddings;
  partial.head = headFromHuggingFace(json);
  const id2label = json.id2label;
  if (typeof id2label === 'object' && id2label !== null) {
    const entries = Object.entries(id2label as Record<string, unknown>).map(([id, name]) => [Number(id), String(name)] as const);
    entries.sort((a, b) => a[0] - b[0]);
    if (!entries.every(([id], index) => id === index)) {
      throw new ConfigError(`config.json: id2label ids must be 0..n-1, got ${entries.map(([id]) => id).join(', ')}.`, { parameter: 'id2label' });
    }
    partial.labels = entries.map(([, name]) => name);
  } else if (typeof json.num_labels === 'number') {
    partial.labels = Array.from({ length: json.num_labels }, (_, i) => `LABEL_${i}`);
  }
  return resolveM2BertConfig(partial as M2BertConfigInput);
}

/**
 * Writes a config in the HuggingFace M2-BERT `config.json` layout, loadable by the original `configuration_bert.py`.
 *
 * @param config - A resolved configuration.
 * @returns A JSON-ready object (snake_case keys, `architectures`, `auto_map`, `id2label`/`label2id`).
 * @example
 * configToHuggingFace(resolveM2BertConfig({ preset: 'tiny' })).hidden_size; // → 64
 */
export function configToHuggingFace(config: M2BertConfig): Record<string, unknown> {
  const json: Record<string, unknown> = {
    architectures: [config.head === 'text-encoding' ? 'BertForSequenceClassification' : ARCHITECTURE_OF_HEAD[config.head]],
    auto_map: {
      AutoConfig: 'configuration_bert.BertConfig',
      AutoModel: 'bert_layers.BertModel',
      ...(config.head === 'masked-lm' ? { AutoModelForMaskedLM: 'bert_layers.BertForMaskedLM' } : {}),
      ...(config.head === 'sequence-classification'
        ? { AutoModelForSequenceClassification: 'bert_layers.BertForSequenceClassification' }
        : {}),
      ...(config.head === 'text-encoding' ? { AutoModelForSequenceClassification: 'bert_layers.BertForTextEncoding' } : {}),
    },
    model_type: 'm2_bert',
  };
  for (const [camel, snake] of Object.entries(HF_KEYS)) json[snake] = config[camel as keyof M2BertConfig];
  Object.assign(json, {
    monarch_mixer_sequence_mixing: true,
    use_glu_mlp: true,
    use_monarch_mlp: true,
    use_flash_fft: false,
    use_flash_mm: false,
    hidden_act: 'gelu',
    hyena_filter_dropout: 0.2,
    attention_probs_dropout_prob: 0.0,
    num_attention_heads: 12,
    pad_token_id: 0,
    position_embedding_type: 'absolute',
    alibi_starting_size: config.maxPositionEmbeddings,
    id2label: Object.fromEntries(config.labels.map((name, id) => [String(id), name])),
    label2id: Object.fromEntries(config.labels.map((name, id) => [name, id])),
  });
  return json;
}
