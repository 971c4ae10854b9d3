// M2-GPT configuration: the keys, their defaults, the presets, validation, and an analytic parameter count.
//
// Shape legend used in this package: B batch · L sequence · d model dim · I MLP intermediate dim · V vocabulary.
import { ConfigError } from '@monarch-mixer/monarch-core';

/** Configuration of an {@link M2Gpt} model. Every key has a default in {@link M2_GPT_DEFAULTS}. */
export interface M2GptConfig {
  /** Vocabulary size V. Default 50257 (GPT-2 BPE, `<|endoftext|>` = 50256). */
  readonly vocabSize: number;
  /** Maximum sequence length L (the Hyena filter's `l_max`; prompts plus generated tokens must fit). Default 1024. */
  readonly maxLength: number;
  /** Model width d. Must be divisible by `numBlocks`. Default 768. */
  readonly modelDim: number;
  /** Number of pre-LN causal M2 blocks. Default 12. */
  readonly numLayers: number;
  /** GLU intermediate width I (the gate projection is d → 2I). Must be divisible by `numBlocks`. Default 4·d. */
  readonly intermediateDim: number;
  /** Diagonal blocks of every BlockdiagLinear in the MLP. Default 4 (as in M2-BERT). */
  readonly numBlocks: number;
  /** Width of the implicit-filter MLP (`hyena_filter_order`). Default 128 (as in every M2-BERT release). */
  readonly filterOrder: number;
  /** Positional-embedding features of the implicit filter (`hyena_emb_dim`), odd and ≥ 3. Default 5. */
  readonly filterEmbDim: number;
  /** Initial frequency of the filter's Sin activations (`hyena_w`). Default 10. */
  readonly filterW: number;
  /** Frequency multiplier of the Sin activations (`hyena_w_mod`). Default 1. */
  readonly filterWMod: number;
  /** Add the mixer's residual long convolution (filter_fn2 + D₂). Default true (as in M2-BERT and the golden block). */
  readonly residualLongConv: boolean;
  /** Add learned absolute position embeddings to the token embeddings. Default false: the implicit filter already carries position. */
  readonly learnedPositions: boolean;
  /** Epsilon of every LayerNorm. Default 1e-5 (PyTorch default; the golden causal block). */
  readonly layerNormEps: number;
  /** Standard deviation of the N(0, σ) initialisation of embeddings. Default 0.02 (GPT-2). */
  readonly initializerRange: number;
}

/** Defaults of every {@link M2GptConfig} key (`intermediateDim` defaults to 4 × modelDim when left out). */
export const M2_GPT_DEFAULTS: Readonly<Omit<M2GptConfig, 'intermediateDim'>> = Object.freeze({
  vocabSize: 50257,
  maxLength: 1024,
  modelDim: 768,
  numLayers: 12,
  numBlocks: 4,
  filterOrder: 128,
  filterEmbDim: 5,
  filterW: 10,
  filterWMod: 1,
  residualLongConv: true,
  learnedPositions: false,
  layerNormEps: 1e-5,
  initializerRange: 0.02,
});

/** Names of the built-in presets. */
export type M2GptPresetName = 'tiny' | 'small' | 'medium';

/**
 * Built-in sizes.
 * - `tiny`: d 128, 4 layers, L 256, filter order 32, full GPT-2 vocabulary: 6,965,376 parameters (6,432,896 of them
 *   the embedding); trains on 2 CPU cores (wasm backend). A smaller output vocabulary is an explicit opt-in
 *   (`vocabSize` with a `CompactVocabulary`), never the default.
 * - `small`: d 768, 24 layers, L 2048: 144,951,552 parameters, the paper's ~145M M2-GPT (Transformer 125M, Hyena 153M).
 * - `medium`: d 1024, 40 layers, L 2048: 360,027,136 parameters, the paper's 360M M2-GPT (Transformer 355M, Hyena 355M).
 *
 * The paper gives only the totals (m2-architecture.md §3); widths and depths are our choice to match them.
 */
export const m2GptPresets: Readonly<Record<M2GptPresetName, Readonly<Partial<M2GptConfig>>>> = Object.freeze({
  tiny: Object.freeze({ modelDim: 128, numLayers: 4, maxLength: 256, filterOrder: 32 }),
  small: Object.freeze({ modelDim: 768, numLayers: 24, maxLength: 2048 }),
  medium: Object.freeze({ modelDim: 1024, numLayers: 40, maxLength: 2048 }),
});

/** Parameter counts the paper reports for each preset's size class (§3, §5.4), for side-by-side reports. */
export const PAPER_PARAMETER_COUNTS: Readonly<Record<'small' | 'medium', { m2Gpt: number; transformer: number; hyena: number }>> =
  Object.freeze({
    small: { m2Gpt: 145e6, transformer: 125e6, hyena: 153e6 },
    medium: { m2Gpt: 360e6, transformer: 355e6, hyena: 355e6 },
  });

const KEYS = new Set<string>([...Object.keys(M2_GPT_DEFAULTS), 'intermediateDim']);

/**
 * Fills in defaults, checks every constraint in one place, and returns a frozen config.
 *
 * @param partial - Keys to override; `preset` picks a base from {@link m2GptPresets} first.
 * @returns The full, frozen configuration.
 * @throws ConfigError on an unknown key, an unknown preset, or a value out of range (one line each).
 * @example
 * resolveM2GptConfig({ preset: 'tiny' }).modelDim; // → 128
 */
export function resolveM2GptConfig(partial: Partial<M2GptConfig> & { preset?: string } = {}): M2GptConfig {
  if (typeof partial !== 'object' || partial === null || Array.isArray(partial)) {
    throw new ConfigError(`M2GptConfig must be an object of config keys, got ${Array.isArray(partial) ? 'an array' : String(partial)}.`, { parameter: 'config' });
  }
  const { preset, ...rest } = partial;
  let base: Partial<M2GptConfig> = {};
  if (preset !== undefined) {
    if (!Object.hasOwn(m2GptPresets, preset)) {
      throw new ConfigError(`Unknown M2-GPT preset "${preset}". Expected one of: ${Object.keys(m2GptPresets).join(', ')}.`, {
        parameter: 'preset',
        value: preset,
      });
    }
    base = m2GptPresets[preset as M2GptPresetName];
  }
  for (const key of Object.keys(rest)) {
    if (!KEYS.has(key)) {
      throw new ConfigError(`M2GptConfig has no key "${key}". Expected one of: ${[...KEYS].join(', ')}.`, { parameter: key });
    }
  }
  const merged = { ...M2_GPT_DEFAULTS, ...base, ...stripUndefined(rest) } as Omit<M2GptConfig, 'intermediateDim'> & {
    intermediateDim?: number;
  };
  const config: M2GptConfig = { ...merged, intermediateDim: merged.intermediateDim ?? 4 * merged.modelDim };

  const positiveInts: (keyof M2GptConfig)[] = [
    'vocabSize', 'maxLength', 'modelDim', 'numLayers', 'intermediateDim', 'numBlocks', 'filterOrder', 'filterEmbDim',
  ];
  for (const key of positiveInts) {
    const value = config[key];
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
      throw new ConfigError(`M2GptConfig.${key} must be a positive integer, got ${String(value)}.`, { parameter: key, value });
    }
  }
  for (const key of ['filterW', 'filterWMod', 'layerNormEps', 'initializerRange'] as const) {
    const value = config[key];
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
      throw new ConfigError(`M2GptConfig.${key} must be a finite number > 0, got ${String(value)}.`, { parameter: key, value });
    }
  }
  for (const key of ['residualLongConv', 'learnedPositions'] as const) {
    if (typeof config[key] !== 'boolean') {
      throw new ConfigError(`M2GptConfig.${key} must be true or false, got ${String(config[key])}.`, { parameter: key });
    }
  }
  for (const key of ['modelDim', 'intermediateDim'] as const) {
    if (config[key] % config.numBlocks !== 0) {
      const hint = Math.max(config.numBlocks, Math.floor(config[key] / config.numBlocks) * config.numBlocks);
      throw new ConfigError(
        `M2GptConfig.${key} (${config[key]}) must be divisible by numBlocks (${config.numBlocks}). Try ${hint}.`,
        { parameter: key, value: config[key] },
      );
    }
  }
  if (config.filterEmbDim < 3 || config.filterEmbDim % 2 === 0) {
    throw new ConfigError(`M2GptConfig.filterEmbDim must be odd and ≥ 3 (t plus cos/sin bands), got ${config.filterEmbDim}.`, {
      parameter: 'filterEmbDim',
      value: config.filterEmbDim,
    });
  }
  return Object.freeze(config);
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** Trainable parameter counts of an M2-GPT, by part. */
export interface M2GptParameterCount {
  /** Token embedding V·d (tied with the LM head, counted once), plus L·d if `learnedPositions`. */
  embeddings: number;
  /** One causal block: LN1, sequence mixer (incl. both implicit filters), LN2, GLU Monarch MLP. */
  perBlock: number;
  /** Of which the two implicit-filter MLPs, their positional features z and D skips. */
  perBlockFilters: number;
  /** Final LayerNorm. */
  finalNorm: number;
  /** The whole model. */
  total: number;
}

/**
 * Counts the trainable parameters of an M2-GPT analytically, without allocating anything.
 *
 * Per block (§2.3–2.5, causal so no `_rev` filter MLPs): LN1 2d; in_linear 3d² + 3d; short conv 3d·3 + 3d;
 * per filter: z L·e, Linear(e→o) e·o + o, shared Sin freq o, two Linear(o→o) 2(o² + o), Linear(o→d) o·d, D d;
 * out_linear d² + d; LN2 2d; gated_layers 2I·d/nb; wo I·d/nb + d.
 * Buffers (`pos_emb.t`, `modulation.deltas`) are not parameters.
 *
 * @param config - A resolved configuration.
 * @returns Counts by part and the total.
 * @example
 * countM2GptParameters(resolveM2GptConfig({ preset: 'small' })).total; // → 144,951,552
 */
export function countM2GptParameters(config: M2GptConfig): M2GptParameterCount {
  const { modelDim: d, intermediateDim: I, numBlocks: nb, filterOrder: o, filterEmbDim: e, maxLength: L } = config;
  const filter = L * e + (e * o + o) + o + 2 * (o * o + o) + o * d + d;
  const filters = filter * (config.residualLongConv ? 2 : 1);
  const mixer = 3 * d * d + 3 * d + (3 * d * 3 + 3 * d) + filters + d * d + d;
  const mlp = (2 * I * d) / nb + (I * d) / nb + d;
  const perBlock = 2 * d + mixer + 2 * d + mlp;
  const embeddings = config.vocabSize * d + (config.learnedPositions ? L * d : 0);
  const finalNorm = 2 * d;
  return {
    embeddings,
    perBlock,
    perBlockFilters: filters,
    finalNorm,
    total: embeddings + config.numLayers * perBlock + finalNorm,
  };
}
