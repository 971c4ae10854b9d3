// The original PyTorch state_dict of an M2-BERT (m2-architecture.md §2.8): every key, its shape, whether it is a
// parameter, a buffer or an alias of a shared tensor. One table drives parameter counting, checkpoint validation,
// loading (key normalisation, recomputed buffers, layouts) and saving.
import type { M2BertConfig } from './m2-bert-config.js';

/** One entry of the original state_dict. Keys here are normalised: no `model.`/`module.`/`bert.` prefix. */
export interface StateDictEntry {
  /** Normalised key, e.g. `encoder.layer.0.attention.in_linear.weight` or `cls.predictions.decoder.bias`. */
  readonly key: string;
  /** PyTorch shape. */
  readonly shape: readonly number[];
  /** `parameter` (trained), `buffer` (saved, not trained) or `index` (the I64 `position_ids` buffer). */
  readonly kind: 'parameter' | 'buffer' | 'index';
  /** Set when this key is another name of a shared tensor (tied decoder, the 6 `freq` keys of a filter). */
  readonly aliasOf?: string;
  /** True for BlockdiagLinear weights: PyTorch (block, out, in), tfjs [block, in, out]. */
  readonly blockWeight?: boolean;
  /** True for buffers that may be missing from a checkpoint and are then recomputed (never `z`). */
  readonly recomputable?: boolean;
}

/** The head-independent prefixes that carry the `bert.` wrapper in BertFor* checkpoints. */
const ENCODER_PREFIXES = ['embeddings.', 'encoder.', 'pooler.'];

/** Whether a head wraps the encoder as `bert.` in its state_dict (all but a bare `BertModel`). */
export function usesBertPrefix(config: M2BertConfig): boolean {
  return config.head !== 'none';
}

/** The key as the original module writes it (adds `bert.` in front of encoder keys of BertFor* models). */
export function originalKey(config: M2BertConfig, key: string): string {
  return usesBertPrefix(config) && ENCODER_PREFIXES.some((p) => key.startsWith(p)) ? `bert.${key}` : key;
}

/**
 * Normalises a checkpoint key: drops composer's `state.model.`, `model.`, DDP's `module.` and `bert.` prefixes.
 * @example
 * normalizeKey('model.bert.encoder.layer.0.mlp.wo.bias'); // → 'encoder.layer.0.mlp.wo.bias'
 */
export function normalizeKey(key: string): string {
  let k = key;
  for (;;) {
    const stripped = k.replace(/^(state\.model\.|model\.|module\.|bert\.)/, '');
    if (stripped === k) return k;
    k = stripped;
  }
}

/** Whether a filter child of a mixer exists, and with which MLPs. */
function filterEntries(config: M2BertConfig, prefix: string): StateDictEntry[] {
  const { modelDim: d, filterOrder: o, filterEmbDim: e, longConvLMax: L } = config;
  const entries: StateDictEntry[] = [
    { key: `${prefix}bias`, shape: [d], kind: 'parameter' },
    { key: `${prefix}pos_emb.z`, shape: [1, L, e], kind: 'parameter' },
    { key: `${prefix}pos_emb.t`, shape: [1, L, 1], kind: 'buffer', recomputable: true },
  ];
  const freq = `${prefix}implicit_filter.1.freq`;
  for (const mlp of config.bidirectional ? ['implicit_filter', 'implicit_filter_rev'] : ['implicit_filter']) {
    const p = `${prefix}${mlp}.`;
    entries.push(
      { key: `${p}0.weight`, shape: [o, e], kind: 'parameter' },
      { key: `${p}0.bias`, shape: [o], kind: 'parameter' },
      { key: `${p}1.freq`, shape: [1, o], kind: 'parameter', ...(mlp === 'implicit_filter' ? {} : { aliasOf: freq }) },
      { key: `${p}2.weight`, shape: [o, o], kind: 'parameter' },
      { key: `${p}2.bias`, shape: [o], kind: 'parameter' },
      { key: `${p}3.freq`, shape: [1, o], kind: 'parameter', aliasOf: freq },
      { key: `${p}4.weight`, shape: [o, o], kind: 'parameter' },
      { key: `${p}4.bias`, shape: [o], kind: 'parameter' },
      { key: `${p}5.freq`, shape: [1, o], kind: 'parameter', aliasOf: freq },
      { key: `${p}6.weight`, shape: [d, o], kind: 'parameter' },
    );
  }
  entries.push({ key: `${prefix}modulation.deltas`, shape: [1, 1, d], kind: 'buffer', recomputable: true });
  return entries;
}

/**
 * Every key of the original state_dict of a model with this config, in module order, with PyTorch shapes.
 *
 * Keys are normalised (no `bert.` prefix; see {@link originalKey}). `position_ids` is listed as a recomputable
 * `index` buffer; the 6 `freq` keys of each filter and `cls.predictions.decoder.weight` are aliases.
 *
 * @param config - A resolved configuration.
 * @returns The entries.
 * @example
 * m2BertStateDict(resolveM2BertConfig({ preset: 'tiny' })).find((e) => e.key === 'cls.predictions.decoder.weight')?.aliasOf;
 * // → 'embeddings.word_embeddings.weight'
 */
export function m2BertStateDict(config: M2BertConfig): StateDictEntry[] {
  const { vocabSize: V, modelDim: d, intermediateDim: I, numBlocks: nb } = config;
  const entries: StateDictEntry[] = [{ key: 'embeddings.word_embeddings.weight', shape: [V, d], kind: 'parameter' }];
  if (config.usePositionalEncodings) {
    entries.push({ key: 'embeddings.position_embeddings.weight', shape: [config.maxPositionEmbeddings, d], kind: 'parameter' });
  }
  entries.push(
    { key: 'embeddings.token_type_embeddings.weight', shape: [config.typeVocabSize, d], kind: 'parameter' },
    { key: 'embeddings.LayerNorm.weight', shape: [d], kind: 'parameter' },
    { key: 'embeddings.LayerNorm.bias', shape: [d], kind: 'parameter' },
    { key: 'embeddings.position_ids', shape: [1, config.maxPositionEmbeddings], kind: 'index', recomputable: true },
  );
  for (let i = 0; i < config.numLayers; i += 1) {
    const p = `encoder.layer.${i}.`;
    const a = `${p}attention.`;
    if (config.hyenaTrainingAdditions) {
      entries.push({ key: `${a}layernorm.weight`, shape: [d], kind: 'parameter' }, { key: `${a}layernorm.bias`, shape: [d], kind: 'parameter' });
    }
    entries.push(
      { key: `${a}in_linear.weight`, shape: [3 * d, d], kind: 'parameter' },
      { key: `${a}in_linear.bias`, shape: [3 * d], kind: 'parameter' },
      { key: `${a}short_filter.weight`, shape: [3 * d, 1, 3], kind: 'parameter' },
      { key: `${a}short_filter.bias`, shape: [3 * d], kind: 'parameter' },
      ...filterEntries(config, `${a}filter_fn.`),
      ...(config.residualLongConv ? filterEntries(config, `${a}filter_fn2.`) : []),
      { key: `${a}out_linear.weight`, shape: [d, d], kind: 'parameter' },
      { key: `${a}out_linear.bias`, shape: [d], kind: 'parameter' },
      { key: `${p}mlp.gated_layers.weight`, shape: [nb, (2 * I) / nb, d / nb], kind: 'parameter', blockWeight: true },
      { key: `${p}mlp.wo.weight`, shape: [nb, d / nb, I / nb], kind: 'parameter', blockWeight: true },
      { key: `${p}mlp.wo.bias`, shape: [d], kind: 'parameter' },
      { key: `${p}mlp.layernorm.weight`, shape: [d], kind: 'parameter' },
      { key: `${p}mlp.layernorm.bias`, shape: [d], kind: 'parameter' },
    );
  }
  if (config.head !== 'masked-lm') {
    entries.push({ key: 'pooler.dense.weight', shape: [d, d], kind: 'parameter' }, { key: 'pooler.dense.bias', shape: [d], kind: 'parameter' });
  }
  if (config.head === 'masked-lm') {
    entries.push(
      { key: 'cls.predictions.transform.dense.weight', shape: [d, d], kind: 'parameter' },
      { key: 'cls.predictions.transform.dense.bias', shape: [d], kind: 'parameter' },
      { key: 'cls.predictions.transform.LayerNorm.weight', shape: [d], kind: 'parameter' },
      { key: 'cls.predictions.transform.LayerNorm.bias', shape: [d], kind: 'parameter' },
      { key: 'cls.predictions.decoder.weight', shape: [V, d], kind: 'parameter', aliasOf: 'embeddings.word_embeddings.weight' },
      { key: 'cls.predictions.decoder.bias', shape: [V], kind: 'parameter' },
    );
  }
  if (config.head === 'sequence-classification') {
    const n = config.labels.length;
    entries.push({ key: 'classifier.weight', shape: [n, d], kind: 'parameter' }, { key: 'classifier.bias', shape: [n], kind: 'parameter' });
  }
  return entries;
}

/** Trainable parameter counts of an M2-BERT, by part. */
export interface M2BertParameterCount {
  /** Word, position and token-type tables and the embedding LayerNorm. */
  embeddings: number;
  /** One encoder layer (mixer with its filters, GLU Monarch MLP, LayerNorms). */
  perLayer: number;
  /** Pooler, MLM transform and decoder bias, classifier (the decoder weight is tied, counted once). */
  heads: number;
  /** The whole model. */
  total: number;
}

/**
 * Counts trainable parameters analytically from the state_dict table, allocating nothing.
 * Shared tensors count once (decoder = word embeddings; one `freq` per filter); buffers are not parameters.
 *
 * @param config - A resolved configuration.
 * @returns Counts by part and the total.
 * @example
 * countM2BertParameters(resolveM2BertConfig({ preset: 'm2-bert-110M' })).total; // → 115583616
 */
export function countM2BertParameters(config: M2BertConfig): M2BertParameterCount {
  let embeddings = 0;
  let layers = 0;
  let heads = 0;
  for (const entry of m2BertStateDict(config)) {
    if (entry.kind !== 'parameter' || entry.aliasOf) continue;
    const size = entry.shape.reduce((a, b) => a * b, 1);
    if (entry.key.startsWith('embeddings.')) embeddings += size;
    else if (entry.key.startsWith('encoder.')) layers += size;
    else heads += size;
  }
  return { embeddings, perLayer: layers / config.numLayers, heads, total: embeddings + layers + heads };
}
