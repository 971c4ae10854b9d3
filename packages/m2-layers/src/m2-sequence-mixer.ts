// The M2 sequence mixer (`MonarchMixerSequenceMixing`, m2-architecture.md §2.3): a gated long convolution with
// implicit Hyena filters, computed through monarch-core's FFT-free long convolution, plus a token-by-token path.
import type { Tensor, Tensor1D, Tensor2D, Tensor3D } from '@tensorflow/tfjs-core';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type { LayerArgs } from '@tensorflow/tfjs-layers/dist/engine/topology.js';
import type { Kwargs } from '@tensorflow/tfjs-layers/dist/types.js';
import type { LayerVariable } from '@tensorflow/tfjs-layers';
import { bidirectionalConv, canFuseMixer, canFuseShortConv, causalConv, convKernelSpectrum, convPairWithSpectra, convWithSpectrum, envSetting, InvalidArgumentError, longConvPlan, mixerParams, ShapeError, webGpuMixerCore, webGpuShortConv } from '@monarch-mixer/monarch-core';
import type { ConvKernelSpectrum } from '@monarch-mixer/monarch-core';
import { positiveInteger } from './blockdiag-linear.js';
import { HyenaFilter } from './hyena-filter.js';
import { derivedTensors, recordingGradients } from './inference-cache.js';
import { layerNorm, linearInit, M2Layer, optionalPositive, uniform } from './m2-layer.js';
import type { LayerShape } from './m2-layer.js';

/** Arguments of {@link M2SequenceMixer}. */
export interface M2SequenceMixerArgs extends LayerArgs {
  /** Model dim d. */
  modelDim: number;
  /** Longest sequence L (`l_max` of the filters). */
  maxLength: number;
  /** Bidirectional long convolution (M2-BERT) or causal (M2-GPT). Default false. */
  bidirectional?: boolean;
  /** Adds the residual long convolution of the input (filter_fn2 and its D). Default true. */
  residualLongConv?: boolean;
  /** The 80M M2-BERT's extra input LayerNorm (`hyena_training_additions`, key `layernorm.*`). Default false. */
  preNorm?: boolean;
  /** Epsilon of that LayerNorm. Default 1e-5. */
  preNormEps?: number;
  /** Hidden width of the filter MLPs. Default 128. */
  filterOrder?: number;
  /** Width of the filters' positional table. Default 5. */
  embDim?: number;
  /** Initial sine frequency of the filters. Default 10. */
  w?: number;
  /** Multiplier inside the filters' sines. Default 1. */
  wMod?: number;
  /**
   * Init of every nn.Linear (in/out linears and the filter MLPs): N(0, initializerRange) weights and zero biases, as
   * HuggingFace's post_init does for M2-BERT (0.02). Default: PyTorch's module default U(±1/√in).
   */
  initializerRange?: number | null;
}

/**
 * Per-sequence state for token-by-token decoding through a causal {@link M2SequenceMixer}. Holds the short
 * convolution's last two inputs, the histories of both long convolutions' inputs, and the kernels (computed once,
 * so create a new state after changing the weights). Call `dispose()` when done.
 */
export class M2MixerStepState {
  /** Positions consumed so far. */
  position = 0;
  /** @internal Short-conv inputs at t−2 and t−1: [B, 2, 3d]. */
  shortHistory: Tensor3D;
  /** @internal Gated inputs h = v⊙x1 of the main long conv so far: [B, d, t]. */
  mainHistory?: Tensor3D;
  /** @internal Inputs u of the residual long conv so far: [B, d, t]. */
  residualHistory?: Tensor3D;
  /** @internal Main kernel reversed in time: [d, maxLength]. */
  readonly mainKernelReversed: Tensor2D;
  /** @internal Residual kernel reversed in time: [d, maxLength]. */
  readonly residualKernelReversed?: Tensor2D;

  /** @internal */
  constructor(shortHistory: Tensor3D, mainKernelReversed: Tensor2D, residualKernelReversed?: Tensor2D) {
    this.shortHistory = shortHistory;
    this.mainKernelReversed = mainKernelReversed;
    this.residualKernelReversed = residualKernelReversed;
  }

  /** Frees the state's tensors. */
  dispose(): void {
    tf.dispose([this.shortHistory, this.mainHistory, this.residualHistory, this.mainKernelReversed, this.residualKernelReversed].filter((t) => t !== undefined));
  }
}

/**
 * The M2 sequence mixer: a gated long convolution over the sequence with implicit Hyena kernels.
 *
 * ```
 * u  = preNorm ? LN(u) : u
 * z  = shortConv3(in_linear(u))            # causal depthwise, k = 3; split into x1, x2, v (in that order)
 * y  = (conv(v⊙x1, filter_fn) + D1⊙(v⊙x1)) ⊙ x2
 * y += conv(u, filter_fn2) + D2⊙u          # residualLongConv
 * out = out_linear(y)
 * ```
 * conv is causal (zero-padded to 2L) or bidirectional (kf and reversed kr), from monarch-core. There is no
 * residual around the mixer itself. Parameters: 4d² + 4d·… (in/out linears 4d²+4d, short conv 12d, two filters).
 *
 * Shapes: u [B, L, d] → [B, L, d], L ≤ maxLength.
 *
 * Weights (original keys): `in_linear.weight` [3d, d] / `.bias` [3d], `short_filter.weight` [3d, 1, 3] / `.bias`
 * [3d], `out_linear.weight` [d, d] / `.bias`, `filter_fn.*`, `filter_fn2.*` (see {@link HyenaFilter}),
 * `layernorm.weight/bias` (preNorm). PyTorch layouts.
 *
 * @see arXiv:2310.12109 (Monarch Mixer) §3–5; m2-architecture.md §2.3.
 * @example
 * const mixer = new M2SequenceMixer({ modelDim: 16, maxLength: 32, filterOrder: 8 });
 * mixer.apply(tf.randomNormal([2, 32, 16])).shape; // → [2, 32, 16]
 */
export class M2SequenceMixer extends M2Layer {
  /** Serialization name. */
  static readonly className = 'M2SequenceMixer';
  /** Model dim d. */
  readonly modelDim: number;
  /** Longest sequence. */
  readonly maxLength: number;
  /** Bidirectional (true) or causal (false) long convolutions. */
  readonly bidirectional: boolean;
  /** Whether the residual long convolution is present. */
  readonly residualLongConv: boolean;
  /** Whether the input LayerNorm is present. */
  readonly preNorm: boolean;
  /** Its epsilon. */
  readonly preNormEps: number;
  /** Filter MLP width. */
  readonly filterOrder: number;
  /** Filter positional width. */
  readonly embDim: number;
  /** Initial filter frequency. */
  readonly w: number;
  /** Filter sine multiplier. */
  readonly wMod: number;
  /** Std of the Linears' normal init, or undefined for PyTorch's default. */
  readonly initializerRange: number | undefined;
  private readonly filter: HyenaFilter;
  private readonly residualFilter?: HyenaFilter;
  private inWeight?: LayerVariable;
  private inBias?: LayerVariable;
  private shortWeight?: LayerVariable;
  private shortBias?: LayerVariable;
  private outWeight?: LayerVariable;
  private outBias?: LayerVariable;
  private normWeight?: LayerVariable;
  private normBias?: LayerVariable;

  /**
   * @param args - See {@link M2SequenceMixerArgs}.
   * @throws ConfigError on a bad size.
   */
  constructor(args: M2SequenceMixerArgs) {
    super(args);
    this.modelDim = positiveInteger('M2SequenceMixer', 'modelDim', args.modelDim);
    this.maxLength = positiveInteger('M2SequenceMixer', 'maxLength', args.maxLength);
    this.bidirectional = args.bidirectional ?? false;
    this.residualLongConv = args.residualLongConv ?? true;
    this.preNorm = args.preNorm ?? false;
    this.preNormEps = args.preNormEps ?? 1e-5;
    this.filterOrder = args.filterOrder ?? 128;
    this.embDim = args.embDim ?? 5;
    this.w = args.w ?? 10;
    this.wMod = args.wMod ?? 1;
    this.initializerRange = optionalPositive('M2SequenceMixer', 'initializerRange', args.initializerRange);
    const filterArgs = {
      modelDim: this.modelDim,
      maxLength: this.maxLength,
      embDim: this.embDim,
      filterOrder: this.filterOrder,
      w: this.w,
      wMod: this.wMod,
      bidirectional: this.bidirectional,
      initializerRange: this.initializerRange,
    };
    this.filter = new HyenaFilter({ ...filterArgs, name: `${this.name}_filter_fn` });
    if (this.residualLongConv) this.residualFilter = new HyenaFilter({ ...filterArgs, name: `${this.name}_filter_fn2` });
  }

  override build(inputShape: LayerShape | LayerShape[]): void {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as LayerShape;
    this.checkSequenceInput({ shape }, this.modelDim, this.maxLength);
    const d = this.modelDim;
    if (this.preNorm) {
      this.normWeight = this.addOriginalWeight('layernorm.weight', [d], tfl.initializers.ones());
      this.normBias = this.addOriginalWeight('layernorm.bias', [d], tfl.initializers.zeros());
    }
    // PyTorch module defaults (or post_init's normal): Linear U(±1/√in); depthwise Conv1d fan-in 1·3 → U(±1/√3).
    const inInit = linearInit(3 * d, d, this.initializerRange);
    this.inWeight = this.addOriginalWeight('in_linear.weight', [3 * d, d], inInit.weight);
    this.inBias = this.addOriginalWeight('in_linear.bias', [3 * d], inInit.bias);
    this.shortWeight = this.addOriginalWeight('short_filter.weight', [3 * d, 1, 3], uniform([3 * d, 1, 3], 1 / Math.sqrt(3)));
    this.shortBias = this.addOriginalWeight('short_filter.bias', [3 * d], uniform([3 * d], 1 / Math.sqrt(3)));
    this.buildChild('filter_fn', this.filter, shape);
    if (this.residualFilter) this.buildChild('filter_fn2', this.residualFilter, shape);
    const outInit = linearInit(d, d, this.initializerRange);
    this.outWeight = this.addOriginalWeight('out_linear.weight', [d, d], outInit.weight);
    this.outBias = this.addOriginalWeight('out_linear.bias', [d], outInit.bias);
    this.built = true;
  }

  override call(inputs: Tensor | Tensor[], _kwargs: Kwargs): Tensor {
    const u = this.singleInput(inputs);
    this.checkSequenceInput(u, this.modelDim, this.maxLength);
    return this.forward(u as Tensor3D);
  }

  /** The mixer's math on a checked input. Shapes: u [B, L, d] → [B, L, d]. */
  forward(input: Tensor3D): Tensor3D {
    return this.forwardAndCapture(input);
  }

  /**
   * Runs the full forward on a prompt and fills a fresh decoding state with it, so decoding continues with
   * {@link M2SequenceMixer.step} at position L (one pass instead of L steps).
   *
   * Shapes: input [B, L, d] → [B, L, d]
   * @param input - The first L positions (L ≤ maxLength).
   * @param state - A fresh state from {@link M2SequenceMixer.createStepState} (position 0), same batch size.
   * @throws ShapeError if the state is not fresh or the batch size differs.
   */
  prefill(input: Tensor3D, state: M2MixerStepState): Tensor3D {
    this.checkSequenceInput(input, this.modelDim, this.maxLength);
    if (state.position !== 0 || state.shortHistory.shape[0] !== input.shape[0]) {
      throw new ShapeError(
        `M2SequenceMixer '${this.name}': prefill needs a fresh state (position 0) for batch ${input.shape[0]}, got position ${state.position} and batch ${state.shortHistory.shape[0]}.`,
      );
    }
    return this.forwardAndCapture(input, state);
  }

  /** The forward pass; with a state, also stores what decoding needs after the last position. */
  private forwardAndCapture(input: Tensor3D, state?: M2MixerStepState): Tensor3D {
    return tf.tidy(() => {
      const [batch, length] = input.shape;
      const u = this.preNorm ? layerNorm(input, this.normWeight!.read(), this.normBias!.read(), this.preNormEps) : input;
      // webgpu inference: short convolutions, gate, both long convolutions and their sum as one WGSL dispatch.
      const fused = !state && !recordingGradients() && canFuseMixer(length) ? this.fusedCore(u as Tensor3D, length) : undefined;
      if (fused !== undefined) return fused;
      // Each step runs in its own tidy and frees what it consumed, so the live set stays at a few [B, L, d]
      // activations (one tidy around everything kept ~50 of them, plus the convolutions' spectra, until the end: at
      // L = 16384 that overflowed the 4 GiB wasm heap). Freed tensors that a gradient needs are kept by the tape.
      // in_linear's output rows are [x1; x2; v]: slicing the small weights is cheaper than splitting the activation.
      const z: Tensor[] = [];
      // webgpu (training): one in_linear matMul and one fused short-convolution dispatch (with its WGSL gradient).
      const [x1, x2, v] = (state ? undefined : this.fusedShortConvs(u)) ?? [0, 1, 2].map((part) =>
        tf.tidy(() => {
          const zi = this.inLinearPart(u, part); // [B, L, d]
          if (state) z.push(tf.keep(zi));
          return this.shortConv(zi, part); // [B, L, d]
        }),
      );
      const h = tf.tidy(() => tf.transpose(tf.mul(v!, x1!), [0, 2, 1]) as Tensor3D); // [B, d, L]: channel-first for the long conv
      tf.dispose([v!, x1!]);
      const ut = tf.transpose(u, [0, 2, 1]) as Tensor3D; // [B, d, L]
      let y: Tensor;
      if (this.residualFilter && !recordingGradients()) {
        // Inference: both convolutions share one inverse transform (their outputs are real: one is its real part).
        const [main, residual] = convPairWithSpectra(h, this.kernelSpectrum(this.filter, length), ut, this.kernelSpectrum(this.residualFilter, length), this.filter.skipWeight() as Tensor1D, this.residualFilter.skipWeight() as Tensor1D);
        if (!state) tf.dispose([h, ut]);
        y = tf.tidy(() => tf.add(tf.mul(main, tf.transpose(x2!, [0, 2, 1])), residual)); // [B, d, L]
        tf.dispose([main, residual]);
      } else {
        const main = this.longConv(this.filter, h, length);
        y = tf.tidy(() => tf.mul(main, tf.transpose(x2!, [0, 2, 1]))); // [B, d, L]
        tf.dispose(main);
        if (this.residualFilter) {
          const residual = this.longConv(this.residualFilter, ut, length);
          const sum = tf.add(y, residual);
          tf.dispose([y, residual]);
          y = sum;
        }
        if (!state) tf.dispose([h, ut]);
      }
      tf.dispose(x2!);
      if (state) {
        const last = tf.concat(z, 2); // [B, L, 3d]: in_linear output before the short conv
        const padded = tf.pad(last, [[0, 0], [Math.max(0, 2 - length), 0], [0, 0]]); // [B, max(L, 2), 3d]
        const tail = tf.slice(padded, [0, padded.shape[1]! - 2, 0], [batch, 2, 3 * this.modelDim]) as Tensor3D; // z[L−2], z[L−1]
        tf.dispose(state.shortHistory);
        state.shortHistory = tf.keep(tail);
        state.mainHistory = tf.keep(h);
        state.residualHistory = this.residualFilter ? tf.keep(ut) : undefined;
        state.position = length;
        tf.dispose(z);
      }
      const [outWeightT] = this.transposedWeights('out_linear', this.outWeight!.read(), () => [tf.transpose(this.outWeight!.read())]); // [d, d]
      const rows = tf.tidy(() => tf.reshape(tf.transpose(y, [0, 2, 1]), [batch * length, this.modelDim])); // [B·L, d]
      tf.dispose(y);
      return tf.reshape(tf.add(tf.matMul(rows, outWeightT!), this.outBias!.read()), [batch, length, this.modelDim]) as Tensor3D; // [B, L, d]
    });
  }

  /** x1, x2, v after their short convolutions via monarch-core's WGSL kernel (webgpu), or undefined elsewhere. */
  private fusedShortConvs(u: Tensor): Tensor[] | undefined {
    // Checked before the in_linear matMul, whose output would otherwise be thrown away when the kernel declines.
    if (!canFuseShortConv() || u.dtype !== 'float32') return undefined;
    const [batch, length, d] = u.shape as [number, number, number];
    return tf.tidy(() => {
      const [inWeightT] = this.transposedWeights('in_linear_full', this.inWeight!.read(), () => [tf.transpose(this.inWeight!.read())]); // [d, 3d]
      const z = tf.reshape(tf.add(tf.matMul(tf.reshape(u, [batch * length, d]), inWeightT!), this.inBias!.read()), [batch, length, 3 * d]) as Tensor3D; // [B, L, 3d]
      const zc = webGpuShortConv(z, this.shortWeight!.read(), this.shortBias!.read() as Tensor1D); // [B, L, 3d]
      return zc === undefined ? undefined : tf.split(zc, 3, 2); // x1, x2, v
    });
  }

  /**
   * The mixer on webgpu at inference through monarch-core's fused kernel (webGpuMixerCore): one in_linear matMul,
   * one dispatch for short convolutions + gate + long convolutions, out_linear. Undefined when the kernel declines.
   */
  private fusedCore(u: Tensor3D, length: number): Tensor3D | undefined {
    const [batch] = u.shape;
    const d = this.modelDim;
    const rows = batch * length;
    const filters = this.residualFilter ? [this.filter, this.residualFilter] : [this.filter];
    const skips = filters.map((f) => f.skipWeight());
    const [params] = derivedTensors(this, 'fused_mixer_params', [this.shortWeight!.read(), this.shortBias!.read(), ...skips], '', () =>
      [mixerParams(this.shortWeight!.read(), this.shortBias!.read(), skips[0]!, skips[1])]);
    const spectra = filters.map((f) => this.kernelSpectrum(f, length));
    const [outWeightT] = this.transposedWeights('out_linear', this.outWeight!.read(), () => [tf.transpose(this.outWeight!.read())]); // [d, d]
    // Channel-last below L = 2048 (fewer dispatches where the host is the bottleneck), channel-first from 2048 on
    // (the kernel's strided reads cost more GPU time than one transpose); M2_MIXER_CHANNEL_FIRST=0 / 1 forces either.
    const layout = envSetting('M2_MIXER_CHANNEL_FIRST');
    if (layout === '0' || (layout !== '1' && length < 2048)) {
      // Channel-last: z [B, L, 3d] from one matMul, the kernel reads it strided.
      const [inWeightT] = this.transposedWeights('in_linear_full', this.inWeight!.read(), () => [tf.transpose(this.inWeight!.read())]); // [d, 3d]
      const z = tf.reshape(tf.fused.matMul({ a: tf.reshape(u, [rows, d]) as Tensor2D, b: inWeightT as Tensor2D, bias: this.inBias!.read() }), [batch, length, 3 * d]) as Tensor3D;
      const y = webGpuMixerCore(z, this.residualFilter ? u : undefined, params as Tensor1D, spectra[0]!, spectra[1], { channelFirst: false }); // [B, L, d]
      if (y === undefined) return undefined;
      return tf.reshape(tf.fused.matMul({ a: tf.reshape(y, [rows, d]) as Tensor2D, b: outWeightT as Tensor2D, bias: this.outBias!.read() }), [batch, length, d]) as Tensor3D;
    }
    // Channel-first, so the kernel reads and writes whole rows: uᵀ once, zᵀ = W_in·uᵀ + b (the stored [3d, d]
    // weight needs no transpose), and out_linear reads yᵀ through the matMul's transposeA (its bias folded in).
    const uT = tf.transpose(u, [2, 0, 1]) as Tensor3D; // [d, B, L]
    const [inBiasColumn] = derivedTensors(this, 'in_bias_column', [this.inBias!.read()], '', () => [tf.reshape(this.inBias!.read(), [3 * d, 1])]); // [3d, 1]
    // (Not fused.matMul with the [3d, 1] bias: tfjs-webgpu 4.22's vec4 matMul program adds a column bias wrongly.)
    const zT = tf.reshape(tf.add(tf.matMul(this.inWeight!.read() as Tensor2D, tf.reshape(uT, [d, rows]) as Tensor2D), inBiasColumn!), [3 * d, batch, length]) as Tensor3D; // [3d, B, L]
    const yT = webGpuMixerCore(zT, this.residualFilter ? uT : undefined, params as Tensor1D, spectra[0]!, spectra[1], { channelFirst: true }); // [d, B, L]
    if (yT === undefined) return undefined;
    return tf.reshape(tf.fused.matMul({ a: tf.reshape(yT, [d, rows]) as Tensor2D, b: outWeightT as Tensor2D, transposeA: true, bias: this.outBias!.read() }), [batch, length, d]) as Tensor3D; // [B, L, d]
  }

  /**
   * Weights transposed (and sliced) once for x·Wᵀ as a plain 2-D matMul: cached between inference calls, rebuilt
   * when the weight changes, recomputed (and differentiated) under a gradient tape.
   */
  private transposedWeights(key: string, source: Tensor, make: () => Tensor[]): Tensor[] {
    return derivedTensors(this, key, [source], '', make);
  }

  /** The filters' kernels at `length` (test hook). Shapes: → { filter_fn: {forward [d, L], reverse?}, filter_fn2? }. */
  filterKernels(length: number): { filterFn: ReturnType<HyenaFilter['kernels']>; filterFn2?: ReturnType<HyenaFilter['kernels']> } {
    this.assertBuilt('filterKernels');
    return { filterFn: this.filter.kernels(length), filterFn2: this.residualFilter?.kernels(length) };
  }

  /**
   * Starts token-by-token decoding (causal mixers only).
   * @param batchSize - Sequences decoded together. Default 1.
   * @throws InvalidArgumentError for a bidirectional mixer (a token's output depends on later tokens).
   */
  createStepState(batchSize = 1): M2MixerStepState {
    this.assertBuilt('createStepState');
    if (this.bidirectional) {
      throw new InvalidArgumentError(`M2SequenceMixer '${this.name}': step decoding needs a causal mixer (bidirectional is true).`);
    }
    const reversed = (filter: HyenaFilter) => tf.keep(tf.tidy(() => tf.reverse(filter.kernels(this.maxLength).forward, 1) as Tensor2D));
    return new M2MixerStepState(
      tf.keep(tf.zeros([batchSize, 2, 3 * this.modelDim])),
      reversed(this.filter),
      this.residualFilter ? reversed(this.residualFilter) : undefined,
    );
  }

  /**
   * Processes ONE new position given the state of the previous ones; equals the full forward at that position.
   * Costs O(t·d) for the long convolutions (a dot product over the history), not a whole-sequence convolution.
   * The state is updated in place (its old tensors are disposed).
   *
   * Shapes: input [B, d] → [B, d]
   * @param input - The mixer input at position `state.position`.
   * @param state - From {@link M2SequenceMixer.createStepState}.
   * @throws ShapeError past maxLength or on a wrong input shape.
   */
  step(input: Tensor2D, state: M2MixerStepState): Tensor2D {
    const d = this.modelDim;
    if (input.shape.length !== 2 || input.shape[1] !== d || input.shape[0] !== state.shortHistory.shape[0]) {
      throw new ShapeError(
        `M2SequenceMixer '${this.name}': step input must be [${state.shortHistory.shape[0]}, ${d}], got [${input.shape.join(', ')}].`,
      );
    }
    if (state.position >= this.maxLength) {
      throw new ShapeError(`M2SequenceMixer '${this.name}': step at position ${state.position} is past maxLength ${this.maxLength}.`);
    }
    const t = state.position;
    const out = tf.tidy(() => {
      const u = this.preNorm ? layerNorm(input, this.normWeight!.read(), this.normBias!.read(), this.preNormEps) : input;
      const [inWeightT] = this.transposedWeights('in_linear_full', this.inWeight!.read(), () => [tf.transpose(this.inWeight!.read())]); // [d, 3d]
      const z = tf.add(tf.matMul(u, inWeightT!), this.inBias!.read()); // [B, 3d]
      const window = tf.concat([state.shortHistory, tf.expandDims(z, 1)], 1); // [B, 3, 3d]: z[t−2], z[t−1], z[t]
      const taps = tf.transpose(tf.reshape(this.shortWeight!.read(), [3 * d, 3])); // [3, 3d]
      const zc = tf.add(tf.sum(tf.mul(window, taps), 1), this.shortBias!.read()); // [B, 3d]
      const [x1, x2, v] = tf.split(zc, [d, d, d], 1); // 3 × [B, d]
      const h = tf.mul(v!, x1!) as Tensor2D;
      const mainHistory = appendColumn(state.mainHistory, h); // [B, d, t+1]
      let y = tf.mul(tf.add(historyDot(mainHistory, state.mainKernelReversed, t, this.maxLength), tf.mul(h, this.filter.skipWeight())), x2!);
      let residualHistory: Tensor3D | undefined;
      if (this.residualFilter) {
        residualHistory = appendColumn(state.residualHistory, u as Tensor2D);
        y = tf.add(y, tf.add(historyDot(residualHistory, state.residualKernelReversed!, t, this.maxLength), tf.mul(u, this.residualFilter.skipWeight())));
      }
      const next = { short: tf.slice(window, [0, 1, 0], [-1, 2, -1]) as Tensor3D, mainHistory, residualHistory };
      tf.keep(next.short);
      tf.keep(mainHistory);
      if (residualHistory) tf.keep(residualHistory);
      const old = [state.shortHistory, state.mainHistory, state.residualHistory];
      state.shortHistory = next.short;
      state.mainHistory = next.mainHistory;
      state.residualHistory = next.residualHistory;
      tf.dispose(old.filter((x) => x !== undefined));
      const [outWeightT] = this.transposedWeights('out_linear', this.outWeight!.read(), () => [tf.transpose(this.outWeight!.read())]); // [d, d]
      return tf.add(tf.matMul(y, outWeightT!), this.outBias!.read()) as Tensor2D; // [B, d]
    });
    state.position = t + 1;
    return out;
  }

  override computeOutputShape(inputShape: LayerShape | LayerShape[]): LayerShape {
    return this.sequenceOutputShape(inputShape, this.modelDim, this.maxLength);
  }

  override getConfig(): Record<string, any> {
    return {
      ...super.getConfig(),
      modelDim: this.modelDim,
      maxLength: this.maxLength,
      bidirectional: this.bidirectional,
      residualLongConv: this.residualLongConv,
      preNorm: this.preNorm,
      preNormEps: this.preNormEps,
      filterOrder: this.filterOrder,
      embDim: this.embDim,
      w: this.w,
      wMod: this.wMod,
      initializerRange: this.initializerRange ?? null,
    };
  }

  /** Rows [part·d, (part+1)·d) of in_linear (part 0 = x1, 1 = x2, 2 = v). Shapes: u [B, L, d] → [B, L, d]. */
  private inLinearPart(u: Tensor, part: number): Tensor {
    const d = this.modelDim;
    const w = this.inWeight!.read();
    const b = this.inBias!.read();
    // 3 × ([d, d] transposed row block, [d] bias): x1, x2, v.
    const parts = derivedTensors(this, 'in_linear', [w, b], '', () =>
      [0, 1, 2].flatMap((i) => [tf.transpose(tf.slice(w, [i * d, 0], [d, d])), tf.slice(b, [i * d], [d])]),
    );
    const lead = u.shape.slice(0, -1);
    return tf.reshape(tf.add(tf.matMul(tf.reshape(u, [-1, d]), parts[2 * part]!), parts[2 * part + 1]!), [...lead, d]); // [..., d]
  }

  /**
   * Causal depthwise convolution with kernel 3 as shifted adds (no depthwiseConv2d: its filter gradient is missing
   * on wasm) on channels [part·d, (part+1)·d): zc[t] = b + w0·z[t−2] + w1·z[t−1] + w2·z[t], z[<0] = 0.
   * Shapes: z [B, L, d] → [B, L, d].
   */
  private shortConv(z: Tensor, part: number): Tensor {
    const [batch, length, d] = z.shape as [number, number, number];
    const taps = tf.slice(tf.reshape(this.shortWeight!.read(), [3 * d, 3]), [part * d, 0], [d, 3]); // [d, 3]
    const tap = (k: number) => tf.reshape(tf.slice(taps, [0, k], [d, 1]), [d]); // [d]
    const padded = tf.pad(z, [[0, 0], [2, 0], [0, 0]]); // [B, L+2, d]
    const bias = tf.slice(this.shortBias!.read(), [part * d], [d]);
    // One tap at a time, each in its own tidy: two [B, L, d] temporaries live at once instead of six.
    const shifted = (k: number) => tf.mul(tf.slice(padded, [0, k, 0], [batch, length, d]), tap(k)); // z[t−2+k]·w_k
    let acc = tf.tidy(() => tf.add(tf.mul(z, tap(2)), bias));
    for (const k of [1, 0]) {
      const next = tf.tidy(() => tf.add(acc, shifted(k)));
      acc.dispose();
      acc = next;
    }
    padded.dispose();
    return acc;
  }

  /** The filter's kernel spectrum at `length`, computed once per weights and length (inference only). */
  private kernelSpectrum(filter: HyenaFilter, length: number): ConvKernelSpectrum {
    const [re, im] = derivedTensors(filter, 'spectrum', filter.weights.map((w) => w.read()), String(length), () => {
      const { forward, reverse } = filter.kernels(length);
      const spectrum = convKernelSpectrum(forward, reverse);
      return [spectrum.re, spectrum.im];
    });
    return { length, channels: this.modelDim, plan: longConvPlan(length), re: re!, im: im! };
  }

  /** conv(x, filter) + D⊙x, causal or bidirectional. Shapes: x [B, d, L] → [B, d, L]. */
  private longConv(filter: HyenaFilter, x: Tensor3D, length: number): Tensor3D {
    const skip = filter.skipWeight() as Tensor1D;
    if (!recordingGradients()) {
      // Inference: the kernels depend on the filter's weights and L only, so their spectra are computed once.
      return convWithSpectrum(x, this.kernelSpectrum(filter, length), skip);
    }
    const { forward, reverse } = filter.kernels(length);
    return this.bidirectional ? bidirectionalConv(x, forward, reverse!, skip) : causalConv(x, forward, skip);
  }
}

/** Appends a column: history [B, d, t] (or none) and x [B, d] → [B, d, t+1]. */
function appendColumn(history: Tensor3D | undefined, x: Tensor2D): Tensor3D {
  const column = tf.expandDims(x, 2) as Tensor3D; // [B, d, 1]
  return history ? tf.concat([history, column], 2) : column;
}

/**
 * y[b, c] = Σ_{m ≤ t} k[c, t−m]·history[b, c, m], with the kernel given reversed in time (kr[c, j] = k[c, L−1−j]),
 * so k[c, t−m] = kr[c, L−1−t+m] is one contiguous slice. Shapes: history [B, d, t+1], kr [d, L] → [B, d].
 */
function historyDot(history: Tensor3D, kernelReversed: Tensor2D, t: number, maxLength: number): Tensor {
  const d = kernelReversed.shape[0];
  const weights = tf.slice(kernelReversed, [0, maxLength - 1 - t], [d, t + 1]); // [d, t+1]
  return tf.sum(tf.mul(history, weights), 2);
}
