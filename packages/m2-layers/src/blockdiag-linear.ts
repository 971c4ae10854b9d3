// BlockdiagLinear: the dimension mixer of M2-BERT (m2-architecture.md §1.3), a Dense layer whose kernel is one
// block-diagonal matrix with `numBlocks` blocks and no permutation.
import type { Tensor, Tensor1D, Tensor3D } from '@tensorflow/tfjs-core';
import * as tf from '@tensorflow/tfjs-core';
import type { LayerArgs } from '@tensorflow/tfjs-layers/dist/engine/topology.js';
import type { Kwargs } from '@tensorflow/tfjs-layers/dist/types.js';
import type { LayerVariable } from '@tensorflow/tfjs-layers';
import { blockDiagMatmul, blockdiagLinear, ConfigError, ShapeError } from '@monarch-mixer/monarch-core';
import { derivedTensors } from './inference-cache.js';
import { M2Layer, uniform } from './m2-layer.js';
import type { LayerShape } from './m2-layer.js';

/** Arguments of {@link BlockdiagLinear}. */
export interface BlockdiagLinearArgs extends LayerArgs {
  /** Input features. */
  inFeatures: number;
  /** Output features. */
  outFeatures: number;
  /** Diagonal blocks. Default 4. */
  numBlocks?: number;
  /** Adds a bias [outFeatures]. Default true. */
  useBias?: boolean;
}

/**
 * A linear layer with a block-diagonal weight: the `BlockdiagLinear` of M2-BERT, replacing `Dense`.
 *
 * The input is zero-padded on the right to numBlocks·blockIn, multiplied block by block, truncated to
 * `outFeatures`, and the bias is added. blockIn = ⌈in/numBlocks⌉, blockOut = ⌈out/numBlocks⌉. Parameters:
 * numBlocks·blockIn·blockOut ≈ in·out/numBlocks (dense: in·out).
 *
 * Shapes: x [..., inFeatures] → [..., outFeatures]
 *
 * Weights: `weight` [numBlocks, blockIn, blockOut] (PyTorch stores (block, out, in): swap the last two axes),
 * `bias` [outFeatures]. Init as the original: U(±√numBlocks/√(numBlocks·blockIn)) for the weight,
 * U(±1/√outFeatures) for the bias.
 *
 * @see arXiv:2310.12109 (Monarch Mixer) §3; m2-architecture.md §1.3.
 * @example
 * const layer = new BlockdiagLinear({ inFeatures: 8, outFeatures: 12 });
 * layer.apply(tf.ones([2, 8])).shape; // → [2, 12]
 */
export class BlockdiagLinear extends M2Layer {
  /** Serialization name. */
  static readonly className = 'BlockdiagLinear';
  /** Input features. */
  readonly inFeatures: number;
  /** Output features. */
  readonly outFeatures: number;
  /** Diagonal blocks. */
  readonly numBlocks: number;
  /** Whether there is a bias. */
  readonly useBias: boolean;
  /** ⌈inFeatures / numBlocks⌉. */
  readonly blockIn: number;
  /** ⌈outFeatures / numBlocks⌉. */
  readonly blockOut: number;
  private weight?: LayerVariable;
  private bias?: LayerVariable;

  /**
   * @param args - See {@link BlockdiagLinearArgs}.
   * @throws ConfigError if a size is not a positive integer.
   */
  constructor(args: BlockdiagLinearArgs) {
    super(args);
    this.inFeatures = positiveInteger('BlockdiagLinear', 'inFeatures', args.inFeatures);
    this.outFeatures = positiveInteger('BlockdiagLinear', 'outFeatures', args.outFeatures);
    this.numBlocks = positiveInteger('BlockdiagLinear', 'numBlocks', args.numBlocks ?? 4);
    this.useBias = args.useBias ?? true;
    this.blockIn = Math.ceil(this.inFeatures / this.numBlocks);
    this.blockOut = Math.ceil(this.outFeatures / this.numBlocks);
  }

  override build(inputShape: LayerShape | LayerShape[]): void {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as LayerShape;
    this.checkLastDim(shape);
    const { numBlocks, blockIn, blockOut } = this;
    this.weight = this.addOriginalWeight('weight', [numBlocks, blockIn, blockOut], uniform([numBlocks, blockIn, blockOut], Math.sqrt(numBlocks) / Math.sqrt(numBlocks * blockIn)));
    this.markBlockLayout('weight');
    if (this.useBias) this.bias = this.addOriginalWeight('bias', [this.outFeatures], uniform([this.outFeatures], 1 / Math.sqrt(this.outFeatures)));
    this.built = true;
  }

  override call(inputs: Tensor | Tensor[], _kwargs: Kwargs): Tensor {
    const x = this.singleInput(inputs);
    this.checkLastDim(x.shape);
    return this.forward(x);
  }

  /** The layer's math on a checked input. Shapes: x [..., inFeatures] → [..., outFeatures]. */
  forward(x: Tensor): Tensor {
    if (tf.getBackend() === 'wasm') return this.forwardBlocks(x, 0, this.numBlocks, this.outFeatures); // cached per-block weights
    return tf.tidy(() =>
      blockdiagLinear(x, this.weight!.read() as Tensor3D, {
        outFeatures: this.outFeatures,
        bias: this.bias?.read() as Tensor1D | undefined,
      }),
    );
  }

  /**
   * The outputs of blocks [firstBlock, firstBlock + blockCount) only, truncated to `outFeatures` (with the matching
   * bias entries): what slicing the full output would give, without computing or copying the rest.
   *
   * Shapes: x [..., inFeatures] → [..., outFeatures ≤ blockCount·blockOut]
   * @param x - Input [..., inFeatures] (unchecked).
   * @param firstBlock - First block.
   * @param blockCount - Number of blocks.
   * @param outFeatures - Outputs to keep. Default blockCount·blockOut.
   */
  forwardBlocks(x: Tensor, firstBlock: number, blockCount: number, outFeatures = blockCount * this.blockOut): Tensor {
    const { blockIn, blockOut, numBlocks } = this;
    return tf.tidy(() => {
      const last = x.rank - 1;
      const padding = x.shape.map((): [number, number] => [0, 0]);
      padding[last] = [0, numBlocks * blockIn - this.inFeatures];
      const padded = this.inFeatures < numBlocks * blockIn ? tf.pad(x, padding) : x; // [..., nb·bi]
      const begin = x.shape.map(() => 0);
      begin[last] = firstBlock * blockIn;
      const size = x.shape.map(() => -1);
      size[last] = blockCount * blockIn;
      const xs = blockCount === numBlocks ? padded : tf.slice(padded, begin, size); // [..., count·bi]
      let y = this.blockProduct(xs, firstBlock, blockCount); // [..., count·bo]
      if (outFeatures < blockCount * blockOut) {
        const keep = y.shape.map(() => -1);
        keep[last] = outFeatures;
        y = tf.slice(y, y.shape.map(() => 0), keep);
      }
      if (!this.bias) return y;
      const bias = this.bias.read();
      // The bias entries of these blocks, sliced once and cached between inference calls.
      const [part] = outFeatures === bias.size ? [bias] : derivedTensors(this, `bias_${firstBlock}_${outFeatures}`, [bias], '', () => [tf.slice(bias, [firstBlock * blockOut], [outFeatures])]);
      return tf.add(y, part!);
    });
  }

  /**
   * x · blockdiag(W[firstBlock], …, W[firstBlock + count − 1]). On wasm: one plain 2-D matMul per block on weight
   * blocks split once and cached between inference calls (its batched matMul misses the fast path, and a fresh B
   * operand is re-packed on every call); elsewhere one batched matMul. Shapes: xs [..., count·bi] → [..., count·bo].
   */
  private blockProduct(xs: Tensor, firstBlock: number, blockCount: number): Tensor {
    const { blockIn, blockOut } = this;
    const w = this.weight!.read();
    if (tf.getBackend() !== 'wasm') {
      // The weight blocks used, sliced once and cached between inference calls (all of them: no slice).
      const [blocks] = blockCount === this.numBlocks ? [w] : derivedTensors(this, `blocks_${firstBlock}_${blockCount}`, [w], '', () => [tf.slice(w, [firstBlock, 0, 0], [blockCount, blockIn, blockOut])]);
      return blockDiagMatmul(xs, blocks as Tensor3D);
    }
    const blocks = derivedTensors(this, 'blocks', [w], '', () => tf.unstack(w)); // numBlocks × [bi, bo]
    const lead = xs.shape.slice(0, -1);
    const x2 = tf.reshape(xs, [-1, blockCount * blockIn]); // [N, count·bi]
    const parts = blockCount === 1 ? [x2] : tf.split(x2, blockCount, 1); // count × [N, bi]
    const ys = parts.map((part, k) => tf.matMul(part as tf.Tensor2D, blocks[firstBlock + k] as tf.Tensor2D)); // count × [N, bo]
    return tf.reshape(ys.length === 1 ? ys[0]! : tf.concat(ys, 1), [...lead, blockCount * blockOut]);
  }

  override computeOutputShape(inputShape: LayerShape | LayerShape[]): LayerShape {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as LayerShape;
    this.checkLastDim(shape);
    return [...shape.slice(0, -1), this.outFeatures];
  }

  override getConfig(): Record<string, any> {
    return {
      ...super.getConfig(),
      inFeatures: this.inFeatures,
      outFeatures: this.outFeatures,
      numBlocks: this.numBlocks,
      useBias: this.useBias,
    };
  }

  /** The dense [inFeatures, outFeatures] matrix this layer multiplies by (test hook). */
  toDense(): Tensor {
    this.assertBuilt('toDense');
    return tf.tidy(() => {
      const blocks = tf.unstack(this.weight!.read()); // numBlocks × [blockIn, blockOut]
      const rows = blocks.map((block, i) =>
        tf.pad(block, [[0, 0], [i * this.blockOut, (this.numBlocks - 1 - i) * this.blockOut]]),
      ); // numBlocks × [blockIn, nb·blockOut]
      const dense = tf.concat(rows, 0); // [nb·blockIn, nb·blockOut]
      return tf.slice(dense, [0, 0], [this.inFeatures, this.outFeatures]);
    });
  }

  private checkLastDim(shape: readonly (number | null)[]): void {
    const dim = shape[shape.length - 1];
    if (shape.length < 1 || (dim !== null && dim !== this.inFeatures)) {
      throw new ShapeError(
        `BlockdiagLinear '${this.name}': input last dim must be inFeatures ${this.inFeatures}, got ${dim ?? 'a scalar'} (shape [${shape.join(', ')}]).`,
        { parameter: 'input', value: shape },
      );
    }
  }
}

/** Checks that `value` is a positive integer; returns it. */
export function positiveInteger(who: string, parameter: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw new ConfigError(`${who}: ${parameter} must be a positive integer, got ${JSON.stringify(value)}.`, { parameter, value });
  }
  return value;
}
