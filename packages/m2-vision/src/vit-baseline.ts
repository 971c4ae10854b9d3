// Attention ViT baseline of the same shape as the M2 vision mixer, for side-by-side runs (Dosovitskiy et al., ViT,
// arXiv:2010.11929; the paper's ViT-b row in m2-architecture.md §4).
//
//   images → patches → linear patch embedding + learned positions → N × block → LayerNorm → mean over patches → linear
//   block(x) = h + Mlp(LN2(h)),  h = x + MultiHeadSelfAttention(LN1(x)),  Mlp = fc2(gelu(fc1(·))), expansion 4
//
// Same patching, pre-norm layout, mean-pooled head and width as M2Vision; it differs only in the two mixers (softmax
// attention over patches instead of the long convolution; a dense MLP instead of the block-diagonal GLU) and in the
// learned position embeddings, which attention needs and the convolution does not.
//
// Shape legend: B batch · N patches · d model dim · h heads · dh = d/h · K classes.
import * as tf from '@tensorflow/tfjs-core';
import { ConfigError } from '@monarch-mixer/monarch-core';
import { ImageClassifier } from './image-classifier.js';
import { loadVisionModel } from './checkpoint.js';
import type { M2VisionConfig } from './m2-vision-config.js';
import { geluExact as gelu, layerNorm } from '@monarch-mixer/m2-layers';
import { checkImages, dense, linearWeight, patchify, SeededRandom, seededNormal, uniqueName } from './nn.js';

/** Configuration of a {@link VitBaseline}. */
export interface VitBaselineConfig {
  /** Image height and width (square). */
  readonly imageSize: number;
  /** Colour channels (1 or 3). */
  readonly channels: number;
  /** Patch side P. */
  readonly patchSize: number;
  /** Model width d, divisible by `numHeads`. */
  readonly modelDim: number;
  /** Number of pre-norm transformer blocks. */
  readonly numLayers: number;
  /** Attention heads h. */
  readonly numHeads: number;
  /** MLP hidden width (4·d in ViT). */
  readonly mlpDim: number;
  /** Number of classes K. */
  readonly numClasses: number;
  /** Class names, `numClasses` of them. */
  readonly labels: readonly string[];
  /** Epsilon of every LayerNorm. */
  readonly layerNormEps: number;
}

/**
 * The ViT baseline matching an M2 vision config: same image size, patching, width, depth, classes and labels;
 * heads = d / 32 (at least 1), MLP 4·d.
 * @param config - A resolved {@link M2VisionConfig}.
 * @param overrides - Keys to change (e.g. `numHeads`).
 * @throws ConfigError if d is not divisible by the heads.
 * @example
 * vitBaselineConfigFor(resolveM2VisionConfig({ preset: 'tiny' })).numHeads; // → 3
 */
export function vitBaselineConfigFor(config: M2VisionConfig, overrides: Partial<VitBaselineConfig> = {}): VitBaselineConfig {
  const merged: VitBaselineConfig = {
    imageSize: config.imageSize,
    channels: config.channels,
    patchSize: config.patchSize,
    modelDim: config.modelDim,
    numLayers: config.numLayers,
    numHeads: Math.max(1, Math.floor(config.modelDim / 32)),
    mlpDim: 4 * config.modelDim,
    numClasses: config.numClasses,
    labels: config.labels,
    layerNormEps: config.layerNormEps,
    ...overrides,
  };
  checkVitConfig(merged);
  return Object.freeze({ ...merged, labels: Object.freeze([...merged.labels]) });
}

function checkVitConfig(c: VitBaselineConfig): void {
  for (const key of ['imageSize', 'patchSize', 'modelDim', 'numLayers', 'numHeads', 'mlpDim', 'numClasses'] as const) {
    if (!Number.isInteger(c[key]) || c[key] < 1) throw new ConfigError(`VitBaselineConfig.${key} must be a positive integer, got ${String(c[key])}.`, { parameter: key });
  }
  if (c.modelDim % c.numHeads !== 0) {
    throw new ConfigError(`VitBaselineConfig.modelDim (${c.modelDim}) must be divisible by numHeads (${c.numHeads}).`, { parameter: 'numHeads' });
  }
  if (c.imageSize % c.patchSize !== 0) {
    throw new ConfigError(`VitBaselineConfig.imageSize (${c.imageSize}) must be divisible by patchSize (${c.patchSize}).`, { parameter: 'imageSize' });
  }
  if (c.labels.length !== c.numClasses) {
    throw new ConfigError(`VitBaselineConfig.labels must have numClasses (${c.numClasses}) entries, got ${c.labels.length}.`, { parameter: 'labels' });
  }
}

/**
 * Parameters of a {@link VitBaseline}, counted analytically.
 * @example
 * countVitBaselineParameters(vitBaselineConfigFor(resolveM2VisionConfig({ preset: 'base' }))); // → about 86M
 */
export function countVitBaselineParameters(c: VitBaselineConfig): number {
  const d = c.modelDim;
  const N = (c.imageSize / c.patchSize) ** 2;
  const perLayer = 4 * d /* LNs */ + 3 * d * d + 3 * d /* qkv */ + d * d + d /* proj */ + d * c.mlpDim + c.mlpDim + c.mlpDim * d + d;
  return c.patchSize * c.patchSize * c.channels * d + d + N * d + c.numLayers * perLayer + 2 * d + d * c.numClasses + c.numClasses;
}

interface VitBlockWeights {
  ln1Weight: tf.Variable;
  ln1Bias: tf.Variable;
  qkvWeight: tf.Variable; // [d, 3d]
  qkvBias: tf.Variable;
  projWeight: tf.Variable; // [d, d]
  projBias: tf.Variable;
  ln2Weight: tf.Variable;
  ln2Bias: tf.Variable;
  fc1Weight: tf.Variable; // [d, mlp]
  fc1Bias: tf.Variable;
  fc2Weight: tf.Variable; // [mlp, d]
  fc2Bias: tf.Variable;
}

/**
 * Attention ViT with mean pooling and no CLS token: the quality and size yardstick for {@link M2Vision}.
 * Weights are stored `[in, out]` (tfjs layout) under timm-like names (`blocks.{i}.attn.qkv.weight`, …).
 *
 * @example
 * const vit = new VitBaseline(vitBaselineConfigFor(resolveM2VisionConfig({ preset: 'tiny' })));
 * vit.logits(tf.zeros([2, 28, 28, 1])).shape; // → [2, 10]
 */
export class VitBaseline extends ImageClassifier<VitBaselineConfig> {
  readonly config: VitBaselineConfig;
  readonly modelType = 'vit-baseline';
  private readonly weights = new Map<string, tf.Variable>();
  private readonly blocks: VitBlockWeights[];

  /**
   * @param config - A config from {@link vitBaselineConfigFor} (checked again here).
   * @param options - `seed` of the initial weights (default 0).
   * @throws ConfigError on a bad config.
   */
  constructor(config: VitBaselineConfig, options: { seed?: number } = {}) {
    super();
    checkVitConfig(config);
    this.config = Object.freeze({ ...config, labels: Object.freeze([...config.labels]) });
    const { modelDim: d, patchSize: P, channels: C, mlpDim: M, numClasses: K } = this.config;
    const N = (this.config.imageSize / P) ** 2;
    const rng = new SeededRandom(options.seed ?? 0);
    const add = (name: string, v: tf.Variable): tf.Variable => (this.weights.set(name, v), v);
    const ones = (name: string, n: number): tf.Variable => add(name, tf.tidy(() => tf.variable(tf.ones([n]), true, uniqueName(name))));
    const zeros = (name: string, n: number): tf.Variable => add(name, tf.tidy(() => tf.variable(tf.zeros([n]), true, uniqueName(name))));
    add('patch_embed.weight', linearWeight(rng, [P * P * C, d], P * P * C, uniqueName('patch_embed')));
    zeros('patch_embed.bias', d);
    add('pos_embed', tf.tidy(() => tf.variable(tf.tensor2d(seededNormal(rng, N * d, 0.02), [N, d]), true, uniqueName('pos_embed'))));
    this.blocks = Array.from({ length: this.config.numLayers }, (_, i) => {
      const p = `blocks.${i}.`;
      return {
        ln1Weight: ones(`${p}norm1.weight`, d),
        ln1Bias: zeros(`${p}norm1.bias`, d),
        qkvWeight: add(`${p}attn.qkv.weight`, linearWeight(rng, [d, 3 * d], d, uniqueName('qkv'))),
        qkvBias: zeros(`${p}attn.qkv.bias`, 3 * d),
        projWeight: add(`${p}attn.proj.weight`, linearWeight(rng, [d, d], d, uniqueName('proj'))),
        projBias: zeros(`${p}attn.proj.bias`, d),
        ln2Weight: ones(`${p}norm2.weight`, d),
        ln2Bias: zeros(`${p}norm2.bias`, d),
        fc1Weight: add(`${p}mlp.fc1.weight`, linearWeight(rng, [d, M], d, uniqueName('fc1'))),
        fc1Bias: zeros(`${p}mlp.fc1.bias`, M),
        fc2Weight: add(`${p}mlp.fc2.weight`, linearWeight(rng, [M, d], M, uniqueName('fc2'))),
        fc2Bias: zeros(`${p}mlp.fc2.bias`, d),
      };
    });
    ones('norm.weight', d);
    zeros('norm.bias', d);
    add('head.weight', linearWeight(rng, [d, K], d, uniqueName('head')));
    zeros('head.bias', K);
  }

  /** Loads a directory written by {@link ImageClassifier.save} with modelType `vit-baseline`. */
  static async load(dir: string): Promise<VitBaseline> {
    return loadVisionModel(dir, (config) => new VitBaseline(config as unknown as VitBaselineConfig));
  }

  logits(images: tf.Tensor4D): tf.Tensor2D {
    checkImages('VitBaseline', images, this.config.imageSize, this.config.channels);
    const { modelDim: d, numHeads: h, layerNormEps: eps, patchSize } = this.config;
    const w = this.weights;
    const B = images.shape[0];
    const N = (this.config.imageSize / patchSize) ** 2;
    const dh = d / h;
    return tf.tidy(() => {
      const patches = patchify(images, patchSize); // [B·N, P²C]
      let x = dense(patches, w.get('patch_embed.weight')!, w.get('patch_embed.bias')!); // [B·N, d]
      x = tf.reshape(tf.add(tf.reshape(x, [B, N, d]), w.get('pos_embed')!), [B * N, d]);
      for (const blk of this.blocks) {
        // Attention: qkv → heads [B, h, N, dh] → softmax(q·kᵀ/√dh)·v → merge heads → proj.
        const qkv = dense(layerNorm(x, blk.ln1Weight, blk.ln1Bias, eps) as tf.Tensor2D, blk.qkvWeight, blk.qkvBias); // [B·N, 3d]
        const [q, k, v] = tf.split(qkv, 3, 1).map((t) => tf.transpose(tf.reshape(t, [B, N, h, dh]), [0, 2, 1, 3])); // [B, h, N, dh]
        const scores = tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(dh)); // [B, h, N, N]
        const context = tf.matMul(tf.softmax(scores), v); // [B, h, N, dh]
        const merged = tf.reshape(tf.transpose(context, [0, 2, 1, 3]), [B * N, d]); // [B·N, d]
        x = tf.add(x, dense(merged as tf.Tensor2D, blk.projWeight, blk.projBias));
        // MLP: fc2(gelu(fc1(LN2(x)))).
        const hidden = gelu(dense(layerNorm(x, blk.ln2Weight, blk.ln2Bias, eps) as tf.Tensor2D, blk.fc1Weight, blk.fc1Bias));
        x = tf.add(x, dense(hidden as tf.Tensor2D, blk.fc2Weight, blk.fc2Bias));
      }
      const normed = layerNorm(x, w.get('norm.weight')!, w.get('norm.bias')!, eps); // [B·N, d]
      const pooled = tf.mean(tf.reshape(normed, [B, N, d]), 1) as tf.Tensor2D; // [B, d]
      return dense(pooled, w.get('head.weight')!, w.get('head.bias')!); // [B, K]
    });
  }

  namedWeights(): Map<string, tf.Variable> {
    return new Map(this.weights);
  }
}
