// The implicit long-convolution filter of M2 (`HyenaFilter`, m2-architecture.md §2.4): a learned positional table
// z, a small sine MLP with one shared frequency, and an exponential decay window give one kernel per channel.
import type { Tensor, Tensor2D } from '@tensorflow/tfjs-core';
import * as tf from '@tensorflow/tfjs-core';
import type { LayerArgs } from '@tensorflow/tfjs-layers/dist/engine/topology.js';
import type { Kwargs } from '@tensorflow/tfjs-layers/dist/types.js';
import type { LayerVariable } from '@tensorflow/tfjs-layers';
import { ConfigError, ShapeError } from '@monarch-mixer/monarch-core';
import { positiveInteger } from './blockdiag-linear.js';
import { linear, linearInit, M2Layer, optionalPositive } from './m2-layer.js';
import type { LayerShape } from './m2-layer.js';

/** Arguments of {@link HyenaFilter}. */
export interface HyenaFilterArgs extends LayerArgs {
  /** Channels d: one kernel per channel. */
  modelDim: number;
  /** Longest kernel L (`l_max`); shorter inputs use the first rows of z and t. */
  maxLength: number;
  /** Width e of the positional table z; odd, ≥ 3. Default 5. */
  embDim?: number;
  /** Hidden width o of the filter MLP (`hyena_filter_order`). Default 128. */
  filterOrder?: number;
  /** Initial value of the shared sine frequency (`hyena_w`). Default 10. */
  w?: number;
  /** Fixed multiplier inside the sines (`hyena_w_mod`). Default 1. */
  wMod?: number;
  /** Adds the reverse MLP `implicit_filter_rev` for a bidirectional convolution. Default false. */
  bidirectional?: boolean;
  /** Init of the MLP Linears: N(0, initializerRange) weights and zero biases (HF post_init). Default: PyTorch's U(±1/√in). */
  initializerRange?: number | null;
}

/** Kernels of a {@link HyenaFilter}: `forward` [d, L] and, when bidirectional, `reverse` [d, L]. */
export interface HyenaKernels {
  /** kf [d, L]: kf[c, j] weighs the input j positions back. */
  forward: Tensor2D;
  /** kr [d, L] (bidirectional only): kr[c, j] weighs the input j + 1 positions ahead. */
  reverse?: Tensor2D;
}

/** MLP indices that hold a Linear (the odd ones are the shared Sin). */
const LINEAR_INDICES = [0, 2, 4, 6] as const;

/**
 * The implicit Hyena filter of M2: kernels k[c, t] = MLP(z[t])[c] · exp(−t·|delta_c|), generated, not stored.
 *
 * MLP = Linear(e→o), Sin, Linear(o→o), Sin, Linear(o→o), Sin, Linear(o→d, no bias); every Sin is sin(wMod·freq⊙x)
 * with ONE shared freq [1, o]. The skip weight D (`bias` [d]) is applied by the convolution, not here.
 * Parameters: L·e + 3o + e·o + 2o² + 2o + o·d + d per direction group (dense kernels would need d·L).
 *
 * Shapes: `kernels(L)` → { forward [d, L], reverse? [d, L] }; as a layer, [B, L, ...] → [d, L] (forward kernel).
 *
 * Weights (original keys): `pos_emb.z` [1, L, e] (learned), `pos_emb.t` [1, L, 1] (buffer),
 * `implicit_filter.{0,2,4}.weight/bias`, `implicit_filter.6.weight`, `implicit_filter.{1,3,5}.freq` (one tensor),
 * `implicit_filter_rev.*` (bidirectional; shares freq), `modulation.deltas` [1, 1, d] (buffer), `bias` [d] (D).
 * Linear weights keep PyTorch's [out, in] layout.
 *
 * @see arXiv:2302.10866 (Hyena) §3.3; arXiv:2310.12109 (Monarch Mixer) §5; m2-architecture.md §2.4.
 * @example
 * const filter = new HyenaFilter({ modelDim: 8, maxLength: 32, filterOrder: 16 });
 * filter.build([null, 32, 8]);
 * filter.kernels(20).forward.shape; // → [8, 20]
 */
export class HyenaFilter extends M2Layer {
  /** Serialization name. */
  static readonly className = 'HyenaFilter';
  /** Channels d. */
  readonly modelDim: number;
  /** Longest kernel L. */
  readonly maxLength: number;
  /** Width e of z. */
  readonly embDim: number;
  /** MLP width o. */
  readonly filterOrder: number;
  /** Initial sine frequency. */
  readonly w: number;
  /** Multiplier inside the sines. */
  readonly wMod: number;
  /** Whether there is a reverse MLP. */
  readonly bidirectional: boolean;
  /** Std of the MLP Linears' normal init, or undefined for PyTorch's default. */
  readonly initializerRange: number | undefined;
  private z?: LayerVariable;
  private t?: LayerVariable;
  private freq?: LayerVariable;
  private deltas?: LayerVariable;
  private skip?: LayerVariable;
  private readonly mlps = new Map<string, Map<number, { weight: LayerVariable; bias?: LayerVariable }>>();

  /**
   * @param args - See {@link HyenaFilterArgs}.
   * @throws ConfigError on a non-integer size or an even/small embDim.
   */
  constructor(args: HyenaFilterArgs) {
    super(args);
    this.modelDim = positiveInteger('HyenaFilter', 'modelDim', args.modelDim);
    this.maxLength = positiveInteger('HyenaFilter', 'maxLength', args.maxLength);
    this.embDim = positiveInteger('HyenaFilter', 'embDim', args.embDim ?? 5);
    if (this.embDim < 3 || this.embDim % 2 === 0) {
      throw new ConfigError(`HyenaFilter: embDim must be odd and ≥ 3 (time + cos/sin pairs), got ${this.embDim}. Try 5.`, {
        parameter: 'embDim',
        value: this.embDim,
      });
    }
    this.filterOrder = positiveInteger('HyenaFilter', 'filterOrder', args.filterOrder ?? 128);
    this.w = args.w ?? 10;
    this.wMod = args.wMod ?? 1;
    this.bidirectional = args.bidirectional ?? false;
    this.initializerRange = optionalPositive('HyenaFilter', 'initializerRange', args.initializerRange);
  }

  override build(_inputShape: LayerShape | LayerShape[]): void {
    const { modelDim: d, maxLength: L, embDim: e, filterOrder: o } = this;
    this.z = this.addOriginalWeight('pos_emb.z', [1, L, e], () => positionalTable(L, e));
    this.t = this.addOriginalWeight('pos_emb.t', [1, L, 1], () => tf.reshape(tf.linspace(0, 1, L), [1, L, 1]), false);
    for (const mlp of this.bidirectional ? ['implicit_filter', 'implicit_filter_rev'] : ['implicit_filter']) {
      const layers = new Map<number, { weight: LayerVariable; bias?: LayerVariable }>();
      const sizes: Record<number, [number, number]> = { 0: [e, o], 2: [o, o], 4: [o, o], 6: [o, d] };
      for (const index of LINEAR_INDICES) {
        const [fanIn, fanOut] = sizes[index]!;
        const init = linearInit(fanOut, fanIn, this.initializerRange);
        const weight = this.addOriginalWeight(`${mlp}.${index}.weight`, [fanOut, fanIn], init.weight);
        const bias = index === 6 ? undefined : this.addOriginalWeight(`${mlp}.${index}.bias`, [fanOut], init.bias);
        layers.set(index, { weight, bias });
      }
      this.mlps.set(mlp, layers);
    }
    // One Sin module is shared by indices 1, 3, 5 of both MLPs: one variable, listed under every key.
    this.freq = this.addOriginalWeight('implicit_filter.1.freq', [1, o], () => tf.fill([1, o], this.w));
    for (const mlp of this.mlps.keys()) {
      for (const index of [1, 3, 5]) {
        if (mlp !== 'implicit_filter' || index !== 1) this.addWeightAlias(`${mlp}.${index}.freq`, 'implicit_filter.1.freq');
      }
    }
    this.deltas = this.addOriginalWeight('modulation.deltas', [1, 1, d], () => modulationDeltas(d), false);
    this.skip = this.addOriginalWeight('bias', [d], () => tf.randomNormal([d]));
    this.built = true;
  }

  /**
   * The convolution kernels for inputs of length `length` (≤ maxLength): z and t are sliced, not rescaled.
   * Shapes: → { forward [d, length], reverse? [d, length] }
   * @param length - Input length L_in.
   * @throws ShapeError if length is not in 1..maxLength.
   * @example
   * const { forward, reverse } = filter.kernels(128);
   */
  kernels(length: number): HyenaKernels {
    this.assertBuilt('kernels');
    if (!Number.isInteger(length) || length < 1 || length > this.maxLength) {
      throw new ShapeError(
        `HyenaFilter '${this.name}': kernel length must be 1..maxLength ${this.maxLength}, got ${length}.`,
        { parameter: 'length', value: length },
      );
    }
    return tf.tidy(() => {
      const { embDim: e, modelDim: d } = this;
      const z = tf.reshape(tf.slice(this.z!.read(), [0, 0, 0], [1, length, e]), [length, e]); // [L, e]
      const t = tf.reshape(tf.slice(this.t!.read(), [0, 0, 0], [1, length, 1]), [length, 1]); // [L, 1]
      const decay = tf.exp(tf.neg(tf.mul(t, tf.abs(tf.reshape(this.deltas!.read(), [1, d]))))); // [L, d]
      const kernel = (mlp: string): Tensor2D => tf.transpose(tf.mul(this.mlp(mlp, z), decay)) as Tensor2D; // [d, L]
      const forward = kernel('implicit_filter');
      return this.bidirectional ? { forward, reverse: kernel('implicit_filter_rev') } : { forward };
    });
  }

  /** The skip weight D [d] (`bias`), applied by the convolution as D ⊙ u. */
  skipWeight(): Tensor {
    this.assertBuilt('skipWeight');
    return this.skip!.read();
  }

  override call(inputs: Tensor | Tensor[], _kwargs: Kwargs): Tensor {
    const x = this.singleInput(inputs);
    const { forward, reverse } = this.kernels(x.shape[1]!);
    reverse?.dispose();
    return forward;
  }

  override computeOutputShape(inputShape: LayerShape | LayerShape[]): LayerShape {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as LayerShape;
    return [this.modelDim, shape[1] ?? null];
  }

  override getConfig(): Record<string, any> {
    return {
      ...super.getConfig(),
      modelDim: this.modelDim,
      maxLength: this.maxLength,
      embDim: this.embDim,
      filterOrder: this.filterOrder,
      w: this.w,
      wMod: this.wMod,
      bidirectional: this.bidirectional,
      initializerRange: this.initializerRange ?? null,
    };
  }

  /** sin(wMod·freq⊙(·)) MLP over positions. Shapes: z [L, e] → [L, d]. */
  private mlp(name: string, z: Tensor): Tensor {
    const layers = this.mlps.get(name)!;
    const freq = tf.mul(this.freq!.read(), this.wMod); // [1, o]
    let h = z;
    for (const index of [0, 2, 4]) {
      const { weight, bias } = layers.get(index)!;
      h = tf.sin(tf.mul(freq, linear(h, weight.read(), bias!.read()))); // [L, o]
    }
    return linear(h, layers.get(6)!.weight.read()); // [L, d]
  }
}

/**
 * The initial positional table z [1, L, e]: columns [t, cos(2π f_j n/L)…, −sin(2π f_j n/L)…] with t = n/(L−1),
 * n = 0..L−1, f = linspace(1e-4, B−1, B), B = (e−1)/2 (m2-architecture.md §2.4).
 */
export function positionalTable(length: number, embDim: number): Tensor {
  const bands = (embDim - 1) / 2;
  const values = new Float32Array(length * embDim);
  for (let n = 0; n < length; n++) {
    values[n * embDim] = length === 1 ? 0 : n / (length - 1);
    const angle = (2 * Math.PI * n) / length;
    for (let j = 0; j < bands; j++) {
      const f = bands === 1 ? 1e-4 : 1e-4 + ((bands - 1 - 1e-4) * j) / (bands - 1);
      values[n * embDim + 1 + j] = Math.cos(f * angle);
      values[n * embDim + 1 + bands + j] = -Math.sin(f * angle);
    }
  }
  return tf.tensor3d(values, [1, length, embDim]);
}

/** The fixed decay rates [1, 1, d] = linspace(ln(0.01)/1.5, ln(0.01)/0.3, d) (`modulation.deltas`). */
export function modulationDeltas(modelDim: number): Tensor {
  const min = Math.log(1e-2) / 1.5;
  const max = Math.log(1e-2) / 0.3;
  const values = Float32Array.from({ length: modelDim }, (_, i) => (modelDim === 1 ? min : min + ((max - min) * i) / (modelDim - 1)));
  return tf.tensor3d(values, [1, 1, modelDim]);
}
