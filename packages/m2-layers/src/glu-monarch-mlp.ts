// The GLU Monarch MLP of M2-BERT (`BertGatedLinearUnitMLP` with BlockdiagLinear, m2-architecture.md §2.5): the
// dimension mixer, with block-diagonal matrices in place of the dense MLP.
import type { Tensor } from '@tensorflow/tfjs-core';
import * as tf from '@tensorflow/tfjs-core';
import type { LayerArgs } from '@tensorflow/tfjs-layers/dist/engine/topology.js';
import type { Kwargs } from '@tensorflow/tfjs-layers/dist/types.js';
import { ConfigError, geluGate, replayableDropout, ShapeError } from '@monarch-mixer/monarch-core';
import { BlockdiagLinear, positiveInteger } from './blockdiag-linear.js';
import { M2Layer } from './m2-layer.js';
import { recordingGradients } from './inference-cache.js';
import type { LayerShape } from './m2-layer.js';

/** Arguments of {@link GluMonarchMlp}. */
export interface GluMonarchMlpArgs extends LayerArgs {
  /** Model dim d (input and output). */
  modelDim: number;
  /** Intermediate dim I (the original uses 4d). */
  intermediateDim: number;
  /** Diagonal blocks of both block-diagonal linears. Default 4. */
  numBlocks?: number;
  /** Dropout on the gated activation, training only (`hidden_dropout_prob`). Default 0. */
  dropout?: number;
}

/**
 * The gated (GLU) MLP with block-diagonal weights: s → wo(GELU(g[..., :I]) ⊙ g[..., I:]), g = gated_layers(s).
 *
 * GELU is the exact erf form. No residual and no LayerNorm inside (the blocks add them). Parameters:
 * (2I·d + I·d)/numBlocks + d, against 3I·d + 2I + d for a dense GLU.
 *
 * Shapes: s [..., d] → [..., d]
 *
 * Weights (original keys): `gated_layers.weight` [nb, d/nb, 2I/nb] (no bias), `wo.weight` [nb, I/nb, d/nb],
 * `wo.bias` [d]. Block weights are [numBlocks, blockIn, blockOut] (PyTorch: swap the last two axes).
 *
 * @see arXiv:2310.12109 (Monarch Mixer) §3; m2-architecture.md §2.5.
 * @example
 * const mlp = new GluMonarchMlp({ modelDim: 16, intermediateDim: 64 });
 * mlp.apply(tf.ones([2, 5, 16])).shape; // → [2, 5, 16]
 */
export class GluMonarchMlp extends M2Layer {
  /** Serialization name. */
  static readonly className = 'GluMonarchMlp';
  /** Model dim d. */
  readonly modelDim: number;
  /** Intermediate dim I. */
  readonly intermediateDim: number;
  /** Diagonal blocks. */
  readonly numBlocks: number;
  /** Dropout rate (training only). */
  readonly dropout: number;
  private readonly gatedLayers: BlockdiagLinear;
  private readonly wo: BlockdiagLinear;

  /**
   * @param args - See {@link GluMonarchMlpArgs}.
   * @throws ConfigError on a bad size or dropout outside [0, 1).
   */
  constructor(args: GluMonarchMlpArgs) {
    super(args);
    this.modelDim = positiveInteger('GluMonarchMlp', 'modelDim', args.modelDim);
    this.intermediateDim = positiveInteger('GluMonarchMlp', 'intermediateDim', args.intermediateDim);
    this.numBlocks = positiveInteger('GluMonarchMlp', 'numBlocks', args.numBlocks ?? 4);
    this.dropout = dropoutRate('GluMonarchMlp', args.dropout ?? 0);
    const { modelDim: d, intermediateDim: I, numBlocks } = this;
    this.gatedLayers = new BlockdiagLinear({ inFeatures: d, outFeatures: 2 * I, numBlocks, useBias: false, name: `${this.name}_gated_layers` });
    this.wo = new BlockdiagLinear({ inFeatures: I, outFeatures: d, numBlocks, useBias: true, name: `${this.name}_wo` });
  }

  override build(inputShape: LayerShape | LayerShape[]): void {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as LayerShape;
    this.checkLastDim(shape);
    this.buildChild('gated_layers', this.gatedLayers, shape);
    this.buildChild('wo', this.wo, [...shape.slice(0, -1), this.intermediateDim]);
    this.built = true;
  }

  override call(inputs: Tensor | Tensor[], kwargs: Kwargs): Tensor {
    const s = this.singleInput(inputs);
    this.checkLastDim(s.shape);
    return this.forward(s, kwargs['training'] === true);
  }

  /** The MLP's math on a checked input. Shapes: s [..., d] → [..., d]. */
  forward(s: Tensor, training = false): Tensor {
    // Tokens are independent here: long inputs run in row chunks, each chunk's [rows, 2I] intermediates freed before
    // the next (at L = 32768 the whole [L, I] gate, value and product would need 1.5 GiB of the 4 GiB wasm heap).
    const rows = s.size / this.modelDim;
    const chunkRows = Math.max(1, Math.floor(mlpChunkBytes / (4 * 2 * this.intermediateDim)));
    if (rows > chunkRows && !training && !recordingGradients()) {
      return tf.tidy(() => {
        const flat = tf.reshape(s, [rows, this.modelDim]); // [rows, d]
        const parts: Tensor[] = [];
        for (let start = 0; start < rows; start += chunkRows) {
          parts.push(tf.tidy(() => this.forward(tf.slice(flat, [start, 0], [Math.min(chunkRows, rows - start), this.modelDim])))); // [chunk, d]
        }
        const joined = tf.concat(parts, 0); // [rows, d]
        tf.dispose(parts);
        return tf.reshape(joined, s.shape);
      });
    }
    return tf.tidy(() => {
      const I = this.intermediateDim;
      const [gate, value] = this.gateAndValue(s); // 2 × [..., I]
      let a = geluGate(gate, value); // GELU(gate) ⊙ value: one fused pass on wasm
      if (training && this.dropout > 0) a = replayableDropout(a, this.dropout);
      return this.wo.forward(a); // [..., d]
    });
  }

  /**
   * g[..., :I] and g[..., I:] of g = gated_layers(s). When the gate is a whole number of blocks (always with the
   * original sizes) each half is computed from its own blocks, so the [.., 2I] activation is never split.
   */
  private gateAndValue(s: Tensor): [Tensor, Tensor] {
    const I = this.intermediateDim;
    const { blockOut, numBlocks } = this.gatedLayers;
    const gateBlocks = I / blockOut;
    if (Number.isInteger(gateBlocks) && gateBlocks < numBlocks) {
      return [this.gatedLayers.forwardBlocks(s, 0, gateBlocks, I), this.gatedLayers.forwardBlocks(s, gateBlocks, numBlocks - gateBlocks, I)];
    }
    const [gate, value] = tf.split(this.gatedLayers.forward(s), [I, I], -1);
    return [gate!, value!];
  }

  override computeOutputShape(inputShape: LayerShape | LayerShape[]): LayerShape {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as LayerShape;
    this.checkLastDim(shape);
    return shape;
  }

  override getConfig(): Record<string, any> {
    return {
      ...super.getConfig(),
      modelDim: this.modelDim,
      intermediateDim: this.intermediateDim,
      numBlocks: this.numBlocks,
      dropout: this.dropout,
    };
  }

  private checkLastDim(shape: readonly (number | null)[]): void {
    const dim = shape[shape.length - 1];
    if (shape.length < 1 || (dim !== null && dim !== this.modelDim)) {
      throw new ShapeError(`GluMonarchMlp '${this.name}': input last dim must be modelDim ${this.modelDim}, got ${dim ?? 'a scalar'}.`, {
        parameter: 'input',
        value: shape,
      });
    }
  }
}

/** Bytes of one chunk's [rows, 2I] gate-and-value activation above which inference runs the MLP in row chunks. */
let mlpChunkBytes = 128 * 2 ** 20;

/**
 * Sets the row-chunk size of the MLP in inference (test hook: small values force the chunked path).
 * @param bytes - Bytes of one chunk's [rows, 2I] activation.
 * @returns The previous value.
 */
export function setMlpChunkBytes(bytes: number): number {
  const previous = mlpChunkBytes;
  mlpChunkBytes = bytes;
  return previous;
}

/** Checks a dropout rate in [0, 1); returns it. */
export function dropoutRate(who: string, rate: unknown): number {
  if (typeof rate !== 'number' || !(rate >= 0 && rate < 1)) {
    throw new ConfigError(`${who}: dropout must be in [0, 1), got ${JSON.stringify(rate)}.`, { parameter: 'dropout', value: rate });
  }
  return rate;
}
