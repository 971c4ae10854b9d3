// The two M2 blocks: the post-LN encoder layer of M2-BERT (m2-architecture.md §2.1) and the pre-LN causal block
// of M2-GPT (golden m2-gpt/causal-block), with a token-by-token decoding path for the causal block.
import type { Tensor, Tensor2D, Tensor3D } from '@tensorflow/tfjs-core';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type { LayerArgs } from '@tensorflow/tfjs-layers/dist/engine/topology.js';
import type { Kwargs } from '@tensorflow/tfjs-layers/dist/types.js';
import type { LayerVariable } from '@tensorflow/tfjs-layers';
import { positiveInteger } from './blockdiag-linear.js';
import { dropoutRate, GluMonarchMlp } from './glu-monarch-mlp.js';
import { layerNorm, M2Layer, optionalPositive } from './m2-layer.js';
import type { LayerShape } from './m2-layer.js';
import { M2MixerStepState, M2SequenceMixer } from './m2-sequence-mixer.js';

/** Arguments shared by {@link M2EncoderLayer} and {@link M2CausalBlock}. */
export interface M2BlockArgs extends LayerArgs {
  /** Model dim d. */
  modelDim: number;
  /** Longest sequence L (the filters' `l_max`). */
  maxLength: number;
  /** Intermediate dim I of the GLU MLP. Default 4d. */
  intermediateDim?: number;
  /** Diagonal blocks of the MLP's block-diagonal linears. Default 4. */
  numBlocks?: number;
  /** Adds the mixer's residual long convolution. Default true. */
  residualLongConv?: boolean;
  /** Hidden width of the filter MLPs. Default 128. */
  filterOrder?: number;
  /** Width of the filters' positional table. Default 5. */
  embDim?: number;
  /** Initial sine frequency of the filters. Default 10. */
  w?: number;
  /** Multiplier inside the filters' sines. Default 1. */
  wMod?: number;
  /** The mixer's nn.Linear init: N(0, initializerRange), zero bias (HF post_init, 0.02 for M2-BERT). Default PyTorch's. */
  initializerRange?: number | null;
  /** Epsilon of the block's LayerNorms. Default 1e-12 (encoder) / 1e-5 (causal block). */
  layerNormEps?: number;
  /** Dropout inside the MLP, training only. Default 0.1 (encoder) / 0 (causal block). */
  dropout?: number;
}

/** Arguments of {@link M2EncoderLayer}. */
export interface M2EncoderLayerArgs extends M2BlockArgs {
  /** Bidirectional long convolutions. Default true (every released M2-BERT). */
  bidirectional?: boolean;
  /** The 80M model's extra LayerNorm (eps 1e-5) at the mixer input (`hyena_training_additions`). Default false. */
  preNorm?: boolean;
}

/**
 * The common base of {@link M2EncoderLayer} and {@link M2CausalBlock}: the sizes both blocks take from
 * {@link M2BlockArgs}, resolved (defaults filled in) and checked once, and the layer plumbing of a block that maps
 * [B, L, d] to [B, L, d] (input check, output shape); each block supplies its math as `forward`.
 *
 * Shapes: x [B, L, d] → [B, L, d], L ≤ maxLength.
 */
export abstract class M2SizedLayer extends M2Layer {
  /** Model dim d. */
  readonly modelDim: number;
  /** Longest sequence. */
  readonly maxLength: number;
  /** MLP intermediate dim. */
  readonly intermediateDim: number;
  /** MLP diagonal blocks. */
  readonly numBlocks: number;
  /** Residual long convolution in the mixer. */
  readonly residualLongConv: boolean;
  /** Filter MLP width. */
  readonly filterOrder: number;
  /** Filter positional width. */
  readonly embDim: number;
  /** Initial filter frequency. */
  readonly w: number;
  /** Filter sine multiplier. */
  readonly wMod: number;
  /** Std of the mixer Linears' normal init, or undefined for PyTorch's default. */
  readonly initializerRange: number | undefined;

  /**
   * @param args - See {@link M2BlockArgs}.
   * @param who - The block's class name, for error messages.
   * @throws ConfigError on a bad size.
   */
  protected constructor(args: M2BlockArgs, who: string) {
    super(args);
    this.modelDim = positiveInteger(who, 'modelDim', args.modelDim);
    this.maxLength = positiveInteger(who, 'maxLength', args.maxLength);
    this.intermediateDim = positiveInteger(who, 'intermediateDim', args.intermediateDim ?? 4 * this.modelDim);
    this.numBlocks = positiveInteger(who, 'numBlocks', args.numBlocks ?? 4);
    this.residualLongConv = args.residualLongConv ?? true;
    this.filterOrder = positiveInteger(who, 'filterOrder', args.filterOrder ?? 128);
    this.embDim = positiveInteger(who, 'embDim', args.embDim ?? 5);
    this.w = args.w ?? 10;
    this.wMod = args.wMod ?? 1;
    this.initializerRange = optionalPositive(who, 'initializerRange', args.initializerRange);
  }

  /**
   * The block's math on an input already checked to be [B, L ≤ maxLength, modelDim].
   * Shapes: x [B, L, d] → [B, L, d]
   * @param x - The block input.
   * @param training - Whether dropout is active. Default false.
   */
  abstract forward(x: Tensor3D, training?: boolean): Tensor3D;

  override call(inputs: Tensor | Tensor[], kwargs: Kwargs): Tensor {
    const x = this.singleInput(inputs);
    this.checkSequenceInput(x, this.modelDim, this.maxLength);
    return this.forward(x as Tensor3D, kwargs['training'] === true);
  }

  override computeOutputShape(inputShape: LayerShape | LayerShape[]): LayerShape {
    return this.sequenceOutputShape(inputShape, this.modelDim, this.maxLength);
  }
}

/** The {@link M2SequenceMixer} arguments both blocks share (direction and pre-norm are the block's own). */
function mixerArgs(block: M2SizedLayer, name: string) {
  const { modelDim, maxLength, residualLongConv, filterOrder, embDim, w, wMod, initializerRange } = block;
  return { modelDim, maxLength, residualLongConv, filterOrder, embDim, w, wMod, initializerRange, name };
}

/** The block's GLU Monarch MLP. */
function blockMlp(block: M2SizedLayer, dropout: number, name: string): GluMonarchMlp {
  return new GluMonarchMlp({ modelDim: block.modelDim, intermediateDim: block.intermediateDim, numBlocks: block.numBlocks, dropout, name });
}

/** The size fields of a block's `getConfig()`, read back from the block. */
function sizeConfig(block: M2SizedLayer) {
  const { modelDim, maxLength, intermediateDim, numBlocks, residualLongConv, filterOrder, embDim, w, wMod } = block;
  return { modelDim, maxLength, intermediateDim, numBlocks, residualLongConv, filterOrder, embDim, w, wMod, initializerRange: block.initializerRange ?? null };
}

/**
 * One M2-BERT layer (post-LN): s = mixer(h); out = LayerNorm(mlp(s) + s). There is no residual around the mixer;
 * its own residual long convolution plays that role.
 *
 * Shapes: h [B, L, d] → [B, L, d], L ≤ maxLength.
 *
 * Weights (original keys under `bert.encoder.layer.{i}.`): `attention.*` (see {@link M2SequenceMixer}),
 * `mlp.gated_layers.weight`, `mlp.wo.weight/bias` (see {@link GluMonarchMlp}), `mlp.layernorm.weight/bias`.
 *
 * @see arXiv:2310.12109 (Monarch Mixer) §5.1; m2-architecture.md §2.1.
 * @example
 * const layer = new M2EncoderLayer({ modelDim: 16, maxLength: 32, filterOrder: 8 });
 * layer.apply(tf.randomNormal([2, 32, 16])).shape; // → [2, 32, 16]
 */
export class M2EncoderLayer extends M2SizedLayer {
  /** Serialization name. */
  static readonly className = 'M2EncoderLayer';
  /** Bidirectional long convolutions. */
  readonly bidirectional: boolean;
  /** The mixer's extra input LayerNorm. */
  readonly preNorm: boolean;
  /** Epsilon of the output LayerNorm. */
  readonly layerNormEps: number;
  /** MLP dropout rate (training only). */
  readonly dropout: number;
  /** The sequence mixer (`attention`). */
  readonly attention: M2SequenceMixer;
  /** The GLU Monarch MLP (`mlp`). */
  readonly mlp: GluMonarchMlp;
  private normWeight?: LayerVariable;
  private normBias?: LayerVariable;

  /**
   * @param args - See {@link M2EncoderLayerArgs}.
   * @throws ConfigError on a bad size or dropout.
   */
  constructor(args: M2EncoderLayerArgs) {
    super(args, 'M2EncoderLayer');
    this.bidirectional = args.bidirectional ?? true;
    this.preNorm = args.preNorm ?? false;
    this.layerNormEps = args.layerNormEps ?? 1e-12;
    this.dropout = dropoutRate('M2EncoderLayer', args.dropout ?? 0.1);
    this.attention = new M2SequenceMixer({ ...mixerArgs(this, `${this.name}_attention`), bidirectional: this.bidirectional, preNorm: this.preNorm });
    this.mlp = blockMlp(this, this.dropout, `${this.name}_mlp`);
  }

  override build(inputShape: LayerShape | LayerShape[]): void {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as LayerShape;
    this.checkSequenceInput({ shape }, this.modelDim, this.maxLength);
    this.buildChild('attention', this.attention, shape);
    this.buildChild('mlp', this.mlp, shape);
    this.normWeight = this.addOriginalWeight('mlp.layernorm.weight', [this.modelDim], tfl.initializers.ones());
    this.normBias = this.addOriginalWeight('mlp.layernorm.bias', [this.modelDim], tfl.initializers.zeros());
    this.built = true;
  }

  /** The layer's math on a checked input. Shapes: h [B, L, d] → [B, L, d]. */
  override forward(h: Tensor3D, training = false): Tensor3D {
    return tf.tidy(() => {
      const s = this.attention.forward(h); // no residual around the mixer
      return layerNorm(tf.add(this.mlp.forward(s, training), s), this.normWeight!.read(), this.normBias!.read(), this.layerNormEps) as Tensor3D;
    });
  }

  override getConfig(): Record<string, any> {
    return {
      ...super.getConfig(),
      ...sizeConfig(this),
      bidirectional: this.bidirectional,
      preNorm: this.preNorm,
      layerNormEps: this.layerNormEps,
      dropout: this.dropout,
    };
  }
}

/** Per-sequence decoding state of an {@link M2CausalBlock} (wraps its mixer's state). Call `dispose()` when done. */
export class M2CausalBlockStepState {
  /** @internal */
  constructor(readonly mixer: M2MixerStepState) {}

  /** Positions consumed so far. */
  get position(): number {
    return this.mixer.position;
  }

  /** Frees the state's tensors. */
  dispose(): void {
    this.mixer.dispose();
  }
}

/**
 * A pre-LN causal M2 block (the M2-GPT block of the golden `m2-gpt/causal-block`):
 * h = x + mixer(LN1(x)); out = h + mlp(LN2(h)), with a causal mixer (no reverse filters).
 *
 * Shapes: x [B, L, d] → [B, L, d], L ≤ maxLength. Output position t depends only on inputs ≤ t.
 *
 * Weights (original keys): `norm1.weight/bias`, `mixer.*` (see {@link M2SequenceMixer}), `norm2.weight/bias`,
 * `mlp.gated_layers.weight`, `mlp.wo.weight/bias`.
 *
 * @see arXiv:2310.12109 (Monarch Mixer) §5.2 (causal M2); m2-architecture.md §3.
 * @example
 * const block = new M2CausalBlock({ modelDim: 16, maxLength: 32, filterOrder: 8 });
 * block.apply(tf.randomNormal([1, 10, 16])).shape; // → [1, 10, 16]
 */
export class M2CausalBlock extends M2SizedLayer {
  /** Serialization name. */
  static readonly className = 'M2CausalBlock';
  /** Epsilon of both LayerNorms. */
  readonly layerNormEps: number;
  /** MLP dropout rate (training only). */
  readonly dropout: number;
  /** The causal sequence mixer (`mixer`). */
  readonly mixer: M2SequenceMixer;
  /** The GLU Monarch MLP (`mlp`). */
  readonly mlp: GluMonarchMlp;
  private norm1Weight?: LayerVariable;
  private norm1Bias?: LayerVariable;
  private norm2Weight?: LayerVariable;
  private norm2Bias?: LayerVariable;

  /**
   * @param args - See {@link M2BlockArgs}.
   * @throws ConfigError on a bad size or dropout.
   */
  constructor(args: M2BlockArgs) {
    super(args, 'M2CausalBlock');
    this.layerNormEps = args.layerNormEps ?? 1e-5;
    this.dropout = dropoutRate('M2CausalBlock', args.dropout ?? 0);
    this.mixer = new M2SequenceMixer({ ...mixerArgs(this, `${this.name}_mixer`), bidirectional: false });
    this.mlp = blockMlp(this, this.dropout, `${this.name}_mlp`);
  }

  override build(inputShape: LayerShape | LayerShape[]): void {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as LayerShape;
    this.checkSequenceInput({ shape }, this.modelDim, this.maxLength);
    const d = this.modelDim;
    this.norm1Weight = this.addOriginalWeight('norm1.weight', [d], tfl.initializers.ones());
    this.norm1Bias = this.addOriginalWeight('norm1.bias', [d], tfl.initializers.zeros());
    this.buildChild('mixer', this.mixer, shape);
    this.norm2Weight = this.addOriginalWeight('norm2.weight', [d], tfl.initializers.ones());
    this.norm2Bias = this.addOriginalWeight('norm2.bias', [d], tfl.initializers.zeros());
    this.buildChild('mlp', this.mlp, shape);
    this.built = true;
  }

  /** The block's math on a checked input. Shapes: x [B, L, d] → [B, L, d]. */
  override forward(x: Tensor3D, training = false): Tensor3D {
    return tf.tidy(() => this.residuals(x, this.mixer.forward(this.norm1(x) as Tensor3D), training));
  }

  /** The mixer's output m = mixer(LN1(x)) (test hook for the golden `mixer_output`). Shapes: [B, L, d] → [B, L, d]. */
  mixerOutput(x: Tensor3D): Tensor3D {
    this.assertBuilt('mixerOutput');
    this.checkSequenceInput(x, this.modelDim, this.maxLength);
    return tf.tidy(() => this.mixer.forward(this.norm1(x) as Tensor3D));
  }

  /**
   * Starts token-by-token decoding.
   * @param batchSize - Sequences decoded together. Default 1.
   * @example
   * const state = block.createStepState();
   * const y0 = block.step(x0, state); // [1, d]
   */
  createStepState(batchSize = 1): M2CausalBlockStepState {
    return new M2CausalBlockStepState(this.mixer.createStepState(batchSize));
  }

  /**
   * Runs the full forward on a prompt and fills a fresh decoding state, so {@link M2CausalBlock.step} continues at
   * position L: one pass over the prompt instead of L steps.
   * Shapes: x [B, L, d] → [B, L, d]
   * @param x - The block input for positions 0..L−1.
   * @param state - A fresh state from {@link M2CausalBlock.createStepState}.
   * @throws ShapeError if the state is not fresh, the batch differs, or L > maxLength.
   * @example
   * const state = block.createStepState();
   * const prompt = block.prefill(x, state); // [1, L, d]
   * const next = block.step(xNext, state);   // position L
   */
  prefill(x: Tensor3D, state: M2CausalBlockStepState): Tensor3D {
    this.checkSequenceInput(x, this.modelDim, this.maxLength);
    return tf.tidy(() => this.residuals(x, this.mixer.prefill(this.norm1(x) as Tensor3D, state.mixer)));
  }

  /**
   * Processes ONE new position; equals the full forward at that position (O(t·d) per token for the convolutions).
   * Shapes: x [B, d] → [B, d]
   * @param x - The block input at position `state.position`.
   * @param state - From {@link M2CausalBlock.createStepState}; updated in place.
   * @throws ShapeError past maxLength or on a wrong input shape.
   */
  step(x: Tensor2D, state: M2CausalBlockStepState): Tensor2D {
    return tf.tidy(() => this.residuals(x, this.mixer.step(this.norm1(x) as Tensor2D, state.mixer)));
  }

  override getConfig(): Record<string, any> {
    return {
      ...super.getConfig(),
      ...sizeConfig(this),
      layerNormEps: this.layerNormEps,
      dropout: this.dropout,
    };
  }

  /**
   * The block's two residuals around a mixer output m: h = x + m; out = h + mlp(LN2(h)). Shared by the full
   * forward, prefill and single-position step, which differ only in how m is computed.
   * Shapes: x, m [B, L, d] → [B, L, d], or [B, d] → [B, d] when stepping.
   */
  private residuals<T extends Tensor2D | Tensor3D>(x: T, mixed: Tensor, training = false): T {
    const h = tf.add(x, mixed);
    return tf.add(h, this.mlp.forward(this.norm2(h), training)) as T;
  }

  private norm1(x: Tensor): Tensor {
    return layerNorm(x, this.norm1Weight!.read(), this.norm1Bias!.read(), this.layerNormEps);
  }

  private norm2(x: Tensor): Tensor {
    return layerNorm(x, this.norm2Weight!.read(), this.norm2Bias!.read(), this.layerNormEps);
  }
}
