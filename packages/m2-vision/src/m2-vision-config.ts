// M2 vision mixer configuration: the keys, their defaults, the presets, validation, and an analytic parameter count.
//
// Shape legend used in this package: B batch · H×W image · C channels · P patch size · N = (H/P)·(W/P) patches ·
// d model dim · I GLU intermediate dim · K classes.
import { ConfigError } from '@monarch-mixer/monarch-core';

/** Configuration of an {@link M2Vision} model. Every key has a default in {@link M2_VISION_DEFAULTS}. */
export interface M2VisionConfig {
  /** Image height and width in pixels (square images). Must be divisible by `patchSize`. Default 224. */
  readonly imageSize: number;
  /** Colour channels C: 1 (grayscale) or 3 (RGB). Default 3. */
  readonly channels: number;
  /** Side P of the square patches; the model sees N = (imageSize/P)² patches. Default 16. */
  readonly patchSize: number;
  /** Model width d. Must be divisible by `numBlocks`. Default 768. */
  readonly modelDim: number;
  /** Number of pre-norm M2 blocks. Default 12. */
  readonly numLayers: number;
  /** GLU intermediate width I (the gate projection is d → 2I). Must be divisible by `numBlocks`. Default ⌈8d/3⌉ rounded up to a multiple of numBlocks. */
  readonly intermediateDim: number;
  /** Diagonal blocks of every BlockdiagLinear in the MLP. Default 4 (as in M2-BERT). */
  readonly numBlocks: number;
  /** Width of the implicit-filter MLP (`hyena_filter_order`). Default 128 (Hyena-ViT and M2-BERT). */
  readonly filterOrder: number;
  /** Positional-embedding features of the implicit filter (`hyena_emb_dim`), odd and ≥ 3. Default 5. */
  readonly filterEmbDim: number;
  /** Initial frequency of the filter's Sin activations (`hyena_w`). Default 10. */
  readonly filterW: number;
  /** Add the mixer's residual long convolution (filter_fn2 + D₂). Default false: a pre-norm block already has an identity residual. */
  readonly residualLongConv: boolean;
  /** Number of classes K. Default 1000. */
  readonly numClasses: number;
  /** Class names, `numClasses` of them (used by `classify`). Default `["0", "1", …]`. */
  readonly labels: readonly string[];
  /** Epsilon of every LayerNorm. Default 1e-5. */
  readonly layerNormEps: number;
}

/** Defaults of every {@link M2VisionConfig} key (`intermediateDim` and `labels` are derived when left out). */
export const M2_VISION_DEFAULTS: Readonly<Omit<M2VisionConfig, 'intermediateDim' | 'labels'>> = Object.freeze({
  imageSize: 224,
  channels: 3,
  patchSize: 16,
  modelDim: 768,
  numLayers: 12,
  numBlocks: 4,
  filterOrder: 128,
  filterEmbDim: 5,
  filterW: 10,
  residualLongConv: false,
  numClasses: 1000,
  layerNormEps: 1e-5,
});

/** Names of the built-in presets. */
export type M2VisionPresetName = 'tiny' | 'small' | 'base';

/**
 * Built-in sizes.
 * - `tiny`: 28×28 grayscale, patch 4 (49 patches), d 64, 4 layers, 10 classes: MNIST / Fashion-MNIST on a CPU.
 * - `small`: 32×32 RGB, patch 4 (64 patches), d 192, 6 layers, 10 classes: CIFAR-scale.
 * - `base`: the ViT-b/16 shape at 224² (196 patches, d 768, 12 layers, 1000 classes): about 47M parameters,
 *   the paper's M2-ViT-b reports 45M.
 */
export const m2VisionPresets: Readonly<Record<M2VisionPresetName, Partial<M2VisionConfig>>> = Object.freeze({
  tiny: Object.freeze({ imageSize: 28, channels: 1, patchSize: 4, modelDim: 64, numLayers: 4, filterOrder: 16, numClasses: 10 }),
  small: Object.freeze({ imageSize: 32, channels: 3, patchSize: 4, modelDim: 192, numLayers: 6, filterOrder: 32, numClasses: 10 }),
  base: Object.freeze({}),
});

const KEYS = new Set<string>([...Object.keys(M2_VISION_DEFAULTS), 'intermediateDim', 'labels']);

/** Partial config accepted by {@link resolveM2VisionConfig}: any keys, optionally on top of a preset. */
export type M2VisionConfigInput = Partial<M2VisionConfig> & { preset?: M2VisionPresetName | string };

/**
 * Fills in defaults (from `preset` if given, then {@link M2_VISION_DEFAULTS}), checks every constraint and
 * returns a frozen config.
 *
 * @param input - Partial config, optionally `{ preset: 'tiny' | 'small' | 'base', ...overrides }`.
 * @returns The resolved, frozen config.
 * @throws ConfigError on an unknown key or preset, or a value that breaks a constraint (one line with a hint).
 * @example
 * resolveM2VisionConfig({ preset: 'tiny' }).intermediateDim; // → 172
 */
export function resolveM2VisionConfig(input: M2VisionConfigInput = {}): M2VisionConfig {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new ConfigError(`M2VisionConfig must be an object of config keys, got ${Array.isArray(input) ? 'an array' : String(input)}.`, { parameter: 'config' });
  }
  const { preset, ...overrides } = input;
  for (const key of Object.keys(overrides)) {
    if (!KEYS.has(key)) {
      throw new ConfigError(`M2VisionConfig: unknown key "${key}". Expected one of: ${[...KEYS].join(', ')}.`, { parameter: key });
    }
  }
  let base: Partial<M2VisionConfig> = {};
  if (preset !== undefined) {
    if (!Object.hasOwn(m2VisionPresets, preset)) {
      throw new ConfigError(`Unknown M2Vision preset "${preset}". Expected one of: ${Object.keys(m2VisionPresets).join(', ')}.`, {
        parameter: 'preset',
        value: preset,
      });
    }
    base = m2VisionPresets[preset as M2VisionPresetName];
  }
  const merged = { ...M2_VISION_DEFAULTS, ...base, ...dropUndefined(overrides) };
  const nb = merged.numBlocks;
  const intermediateDim = merged.intermediateDim ?? Math.ceil(Math.ceil((8 * merged.modelDim) / 3) / nb) * nb;
  // Default labels only for a sane class count (a hostile config must not allocate a huge array); checkConfig reports the rest.
  const n = merged.numClasses;
  const labels = merged.labels ?? (Number.isInteger(n) && n >= 1 && n <= 1_000_000 ? Array.from({ length: n }, (_, i) => String(i)) : undefined);
  const config = { ...merged, intermediateDim, labels: Array.isArray(labels) ? Object.freeze([...labels]) : labels } as M2VisionConfig;
  checkConfig(config);
  return Object.freeze(config);
}

function dropUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function checkConfig(c: M2VisionConfig): void {
  const positive = ['imageSize', 'patchSize', 'modelDim', 'numLayers', 'intermediateDim', 'numBlocks', 'filterOrder', 'numClasses'] as const;
  for (const key of positive) {
    if (!Number.isInteger(c[key]) || c[key] < 1) {
      throw new ConfigError(`M2VisionConfig.${key} must be a positive integer, got ${String(c[key])}.`, { parameter: key, value: c[key] });
    }
  }
  if (c.channels !== 1 && c.channels !== 3) {
    throw new ConfigError(`M2VisionConfig.channels must be 1 (grayscale) or 3 (RGB), got ${String(c.channels)}.`, { parameter: 'channels', value: c.channels });
  }
  if (c.imageSize % c.patchSize !== 0) {
    const hint = c.imageSize - (c.imageSize % c.patchSize);
    throw new ConfigError(`M2VisionConfig.imageSize (${c.imageSize}) must be divisible by patchSize (${c.patchSize}). Try ${hint}.`, { parameter: 'imageSize', value: c.imageSize });
  }
  for (const key of ['modelDim', 'intermediateDim'] as const) {
    if (c[key] % c.numBlocks !== 0) {
      const hint = Math.ceil(c[key] / c.numBlocks) * c.numBlocks;
      throw new ConfigError(`M2VisionConfig.${key} (${c[key]}) must be divisible by numBlocks (${c.numBlocks}). Try ${hint}.`, { parameter: key, value: c[key] });
    }
  }
  if (!Number.isInteger(c.filterEmbDim) || c.filterEmbDim < 3 || c.filterEmbDim % 2 === 0) {
    throw new ConfigError(`M2VisionConfig.filterEmbDim must be an odd integer ≥ 3, got ${String(c.filterEmbDim)}.`, { parameter: 'filterEmbDim', value: c.filterEmbDim });
  }
  if (!(c.filterW > 0)) throw new ConfigError(`M2VisionConfig.filterW must be > 0, got ${String(c.filterW)}.`, { parameter: 'filterW', value: c.filterW });
  if (!(c.layerNormEps > 0)) throw new ConfigError(`M2VisionConfig.layerNormEps must be > 0, got ${String(c.layerNormEps)}.`, { parameter: 'layerNormEps', value: c.layerNormEps });
  if (typeof c.residualLongConv !== 'boolean') {
    throw new ConfigError(`M2VisionConfig.residualLongConv must be a boolean, got ${String(c.residualLongConv)}.`, { parameter: 'residualLongConv' });
  }
  if (!Array.isArray(c.labels) || c.labels.length !== c.numClasses || c.labels.some((l) => typeof l !== 'string')) {
    throw new ConfigError(`M2VisionConfig.labels must be ${c.numClasses} strings (numClasses), got ${Array.isArray(c.labels) ? c.labels.length : typeof c.labels}.`, { parameter: 'labels' });
  }
}

/** Number of patches N = (imageSize / patchSize)². */
export function numPatches(config: M2VisionConfig): number {
  return (config.imageSize / config.patchSize) ** 2;
}

/** Parameter count of an {@link M2Vision} model, by part. */
export interface M2VisionParameterCount {
  /** Patch embedding: P²·C·d weights + d bias. */
  patchEmbedding: number;
  /** One M2 block (two LayerNorms, sequence mixer, GLU MLP). */
  perLayer: number;
  /** The implicit long-convolution filters inside one block's mixer. */
  filtersPerLayer: number;
  /** Final LayerNorm and classification head. */
  head: number;
  /** Everything. */
  total: number;
}

/**
 * Counts the parameters of an {@link M2Vision} model analytically (nothing is allocated), so the `base` preset
 * can be checked against the paper's 45M.
 *
 * @param config - A resolved config.
 * @returns The counts by part and in total.
 * @example
 * countM2VisionParameters(resolveM2VisionConfig({ preset: 'base' })).total; // → about 47M
 */
export function countM2VisionParameters(config: M2VisionConfig): M2VisionParameterCount {
  const { modelDim: d, intermediateDim: I, numBlocks: nb, filterOrder: o, filterEmbDim: e, channels, patchSize } = config;
  const L = numPatches(config);
  const patchEmbedding = patchSize * patchSize * channels * d + d;
  // One HyenaFilter MLP: Linear(e→o)+bias, 2 × Linear(o→o)+bias, Linear(o→d) without bias.
  const filterMlp = e * o + o + 2 * (o * o + o) + o * d;
  // A bidirectional filter: forward and reverse MLPs, the shared Sin freq [o], pos_emb.z [L, e], D [d].
  const filter = 2 * filterMlp + o + L * e + d;
  const filtersPerLayer = filter * (config.residualLongConv ? 2 : 1);
  const mixer = d * 3 * d + 3 * d /* in_linear */ + 3 * d * 3 + 3 * d /* short conv */ + d * d + d /* out_linear */ + filtersPerLayer;
  const blockdiag = (inDim: number, outDim: number): number => nb * Math.ceil(inDim / nb) * Math.ceil(outDim / nb);
  const mlp = blockdiag(d, 2 * I) + blockdiag(I, d) + d;
  const perLayer = 2 * 2 * d /* two LayerNorms */ + mixer + mlp;
  const head = 2 * d + d * config.numClasses + config.numClasses;
  return { patchEmbedding, perLayer, filtersPerLayer, head, total: patchEmbedding + config.numLayers * perLayer + head };
}
