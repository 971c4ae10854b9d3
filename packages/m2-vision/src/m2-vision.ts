// M2 vision mixer (M2-ViT): an image classifier with neither attention nor dense MLPs (Fu et al., "Monarch Mixer",
// NeurIPS 2023, arXiv:2310.12109, ImageNet experiments; m2-architecture.md §4).
//
//   images → P×P patches → linear patch embedding → N × M2 block → LayerNorm → mean over patches → linear head
//   M2 block(x) = h + GluMonarchMlp(LN2(h)),  h = x + M2SequenceMixer(LN1(x))
//
// The sequence mixer is M2-BERT's (m2-architecture.md §2.3) with `bidirectional = true`: in_linear, a short
// depthwise conv, gates, and an implicit Hyena-filter long convolution over the N flattened patches (row-major),
// so every patch sees every other patch through a learned, position-dependent kernel of length N in each direction.
// The dimension mixer is the GLU MLP with block-diagonal (Monarch) matrices of M2-BERT (§2.5).
//
// Differs from the reference (no M2-ViT code or weights were ever released, issues #10 and #21):
// - The paper says only "Hyena-ViT-b with its MLPs replaced by block-diagonal matrices". We take safari's Hyena-ViT-b
//   layout (pre-norm, no CLS token, no position embedding, final LN → mean over patches → linear) and M2-BERT's
//   mixer and GLU MLP (4 blocks). The GLU width defaults to I = 8d/3 so the MLP has the parameter count of a
//   block-diagonal expansion-4 MLP; with d 768 and 12 layers that gives about 47M parameters (paper: 45M).
// - The long convolution is bidirectional (forward kernel + reversed kernel, §1.6), not causal: images have no
//   time order. The short conv stays M2-BERT's causal width-3 conv over the flattened patches.
// - No residual long convolution by default (`residualLongConv: false`): in post-LN M2-BERT it stands in for the
//   missing residual around the mixer; a pre-norm block already has that identity residual. Issue #21 asks whether
//   the paper kept it and is unanswered.
// - The patch embedding is a dense projection of flattened patches (same as a P×P stride-P Conv2D, written as one
//   2-D matMul so it trains on every backend); no drop-path, dropout or mixup (small-data CPU recipes).
// - Filters use M2-BERT's defaults (emb_dim 5, w 10) with a smaller filter MLP in the small presets (the filter MLP
//   would otherwise dominate a d 96 model's parameters).
//
// Shape legend: B batch · H×W image · C channels · P patch · N patches · d model dim · K classes.
import * as tf from '@tensorflow/tfjs-core';
import { GluMonarchMlp, layerNorm, M2SequenceMixer } from '@monarch-mixer/m2-layers';
import { recomputed } from '@monarch-mixer/monarch-core';
import { ImageClassifier } from './image-classifier.js';
import type { ClassifierRunOptions } from './image-classifier.js';
import { loadVisionModel } from './checkpoint.js';
import { countM2VisionParameters, numPatches, resolveM2VisionConfig } from './m2-vision-config.js';
import type { M2VisionConfig, M2VisionConfigInput } from './m2-vision-config.js';
import { checkImages, dense, linearWeight, patchify, SeededRandom, uniqueName } from './nn.js';

/** Options of the {@link M2Vision} constructor. */
export interface M2VisionOptions {
  /** Seed of the patch embedding and head (the M2 layers draw their own PyTorch-style initial values). Default 0. */
  seed?: number;
}

/** One pre-norm M2 block's parts: x + mixer(LN1(x)), then h + mlp(LN2(h)). */
export interface M2VisionBlock {
  /** LN1 scale [d]. */
  norm1Weight: tf.Variable;
  /** LN1 shift [d]. */
  norm1Bias: tf.Variable;
  /** Bidirectional M2 sequence mixer over the flattened patches. */
  mixer: M2SequenceMixer;
  /** LN2 scale [d]. */
  norm2Weight: tf.Variable;
  /** LN2 shift [d]. */
  norm2Bias: tf.Variable;
  /** Block-diagonal GLU MLP over channels. */
  mlp: GluMonarchMlp;
}

/**
 * The M2 vision mixer.
 *
 * Weights: `patch_embed.weight` [P²C, d] / `.bias`, `blocks.{i}.norm1.{weight,bias}`, `blocks.{i}.mixer.<suffix>`
 * (M2-BERT mixer keys: `in_linear.weight`, `filter_fn.implicit_filter.0.weight`, …), `blocks.{i}.norm2.*`,
 * `blocks.{i}.mlp.<suffix>` (`gated_layers.weight`, `wo.weight`, `wo.bias`), `norm.{weight,bias}`, `head.weight`
 * [d, K] / `.bias`.
 *
 * @example
 * const model = new M2Vision({ preset: 'tiny' });
 * model.logits(tf.zeros([2, 28, 28, 1])).shape; // → [2, 10]
 * await model.classify(tf.zeros([28, 28, 1]), { topK: 3 }); // → [{ label, index, probability }, …]
 */
export class M2Vision extends ImageClassifier<M2VisionConfig> {
  readonly config: M2VisionConfig;
  readonly modelType = 'm2-vision';
  /** The N pre-norm M2 blocks. */
  readonly blocks: readonly M2VisionBlock[];
  private readonly patchWeight: tf.Variable; // [P²C, d]
  private readonly patchBias: tf.Variable; // [d]
  private readonly normWeight: tf.Variable; // [d]
  private readonly normBias: tf.Variable; // [d]
  private readonly headWeight: tf.Variable; // [d, K]
  private readonly headBias: tf.Variable; // [K]

  /**
   * Builds a randomly initialised model.
   * @param config - A config, a partial config, or `{ preset: 'tiny' | 'small' | 'base', ...overrides }`.
   * @param options - `seed` (default 0).
   * @throws ConfigError on a bad config.
   */
  constructor(config: M2VisionConfigInput = {}, options: M2VisionOptions = {}) {
    super();
    this.config = resolveM2VisionConfig(config);
    const { modelDim: d, patchSize: P, channels: C, numClasses: K } = this.config;
    const N = numPatches(this.config);
    const rng = new SeededRandom(options.seed ?? 0);
    const ones = (name: string) => tf.tidy(() => tf.variable(tf.ones([d]), true, uniqueName(name))); // tidy frees the initial value
    const zeros = (name: string, n = d) => tf.tidy(() => tf.variable(tf.zeros([n]), true, uniqueName(name)));
    this.patchWeight = linearWeight(rng, [P * P * C, d], P * P * C, uniqueName('patch_embed'));
    this.patchBias = zeros('patch_embed_bias');
    this.blocks = Array.from({ length: this.config.numLayers }, (_, i) => {
      const mixer = new M2SequenceMixer({
        modelDim: d,
        maxLength: N,
        bidirectional: true,
        residualLongConv: this.config.residualLongConv,
        filterOrder: this.config.filterOrder,
        embDim: this.config.filterEmbDim,
        w: this.config.filterW,
        name: uniqueName(`block_${i}_mixer`),
      });
      const mlp = new GluMonarchMlp({
        modelDim: d,
        intermediateDim: this.config.intermediateDim,
        numBlocks: this.config.numBlocks,
        name: uniqueName(`block_${i}_mlp`),
      });
      tf.tidy(() => {
        mixer.apply(tf.zeros([1, N, d])); // builds the weights
        mlp.apply(tf.zeros([1, N, d]));
      });
      return { norm1Weight: ones('norm1'), norm1Bias: zeros('norm1_bias'), mixer, norm2Weight: ones('norm2'), norm2Bias: zeros('norm2_bias'), mlp };
    });
    this.normWeight = ones('norm');
    this.normBias = zeros('norm_bias');
    this.headWeight = linearWeight(rng, [d, K], d, uniqueName('head'));
    this.headBias = zeros('head_bias', K);
  }

  /**
   * Loads a directory written by {@link ImageClassifier.save} (`config.json` + `model.safetensors`).
   * @throws FileFormatError (one line) for a missing file, a wrong modelType, or missing/misshapen tensors.
   */
  static async load(dir: string): Promise<M2Vision> {
    return loadVisionModel(dir, (config) => new M2Vision(config as M2VisionConfigInput));
  }

  /**
   * Patch embeddings after the N blocks and the final LayerNorm.
   * Shapes: images [B, H, W, C] → [B, N, d].
   * @param images - A batch of images.
   * @param options - `gradientCheckpointing`: under a gradient tape each block keeps only its input and runs again
   *   in the backward pass (same values; see {@link ClassifierRunOptions}).
   * @throws ShapeError on a wrong image size.
   */
  features(images: tf.Tensor4D, options: ClassifierRunOptions = {}): tf.Tensor3D {
    checkImages('M2Vision', images, this.config.imageSize, this.config.channels);
    const { modelDim: d, patchSize, layerNormEps: eps } = this.config;
    const B = images.shape[0];
    const N = numPatches(this.config);
    return tf.tidy(() => {
      const patches = patchify(images, patchSize); // [B·N, P²C]
      let x = tf.reshape(dense(patches, this.patchWeight, this.patchBias), [B, N, d]) as tf.Tensor3D; // [B, N, d]
      for (const block of this.blocks) {
        const run = (input: tf.Tensor3D) => blockForward(block, input, eps);
        x = options.gradientCheckpointing ? recomputed(run, x, blockVariables(block)) : run(x);
      }
      return layerNorm(x, this.normWeight, this.normBias, eps) as tf.Tensor3D;
    });
  }

  logits(images: tf.Tensor4D, options: ClassifierRunOptions = {}): tf.Tensor2D {
    return tf.tidy(() => {
      const pooled = tf.mean(this.features(images, options), 1) as tf.Tensor2D; // [B, d]: mean over patches, no CLS token
      return dense(pooled, this.headWeight, this.headBias); // [B, K]
    });
  }

  namedWeights(): Map<string, tf.Variable> {
    const weights = new Map<string, tf.Variable>([
      ['patch_embed.weight', this.patchWeight],
      ['patch_embed.bias', this.patchBias],
    ]);
    this.blocks.forEach((block, i) => {
      weights.set(`blocks.${i}.norm1.weight`, block.norm1Weight);
      weights.set(`blocks.${i}.norm1.bias`, block.norm1Bias);
      for (const [suffix, v] of block.mixer.namedWeights()) weights.set(`blocks.${i}.mixer.${suffix}`, v.read() as tf.Variable);
      weights.set(`blocks.${i}.norm2.weight`, block.norm2Weight);
      weights.set(`blocks.${i}.norm2.bias`, block.norm2Bias);
      for (const [suffix, v] of block.mlp.namedWeights()) weights.set(`blocks.${i}.mlp.${suffix}`, v.read() as tf.Variable);
    });
    weights.set('norm.weight', this.normWeight);
    weights.set('norm.bias', this.normBias);
    weights.set('head.weight', this.headWeight);
    weights.set('head.bias', this.headBias);
    return weights;
  }

  /** The analytic count for this config ({@link countM2VisionParameters}); equals {@link ImageClassifier.countParameters}. */
  expectedParameterCount(): number {
    return countM2VisionParameters(this.config).total;
  }

  override dispose(): void {
    for (const block of this.blocks) {
      block.mixer.dispose();
      block.mlp.dispose();
    }
    for (const v of [this.patchWeight, this.patchBias, this.normWeight, this.normBias, this.headWeight, this.headBias]) v.dispose();
    for (const block of this.blocks) for (const v of [block.norm1Weight, block.norm1Bias, block.norm2Weight, block.norm2Bias]) v.dispose();
  }
}

/**
 * One pre-norm M2 block: h = x + mixer(LN1(x)) (sequence mixing), then h + mlp(LN2(h)) (dimension mixing).
 * Shapes: x [B, N, d] → [B, N, d].
 */
function blockForward(block: M2VisionBlock, x: tf.Tensor3D, eps: number): tf.Tensor3D {
  return tf.tidy(() => {
    const h = tf.add(x, block.mixer.apply(layerNorm(x, block.norm1Weight, block.norm1Bias, eps)) as tf.Tensor);
    return tf.add(h, block.mlp.apply(layerNorm(h, block.norm2Weight, block.norm2Bias, eps)) as tf.Tensor) as tf.Tensor3D;
  });
}

/** Every variable {@link blockForward} reads: the two norms' and the mixer's and MLP's weights. */
function blockVariables(block: M2VisionBlock): tf.Variable[] {
  const layerWeights = [...block.mixer.namedWeights().values(), ...block.mlp.namedWeights().values()].map((v) => v.read() as tf.Variable);
  return [block.norm1Weight, block.norm1Bias, block.norm2Weight, block.norm2Bias, ...layerWeights];
}
