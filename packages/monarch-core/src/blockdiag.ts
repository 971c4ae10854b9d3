// Block-diagonal matrix products: the dimension mixer of M2-BERT (BlockdiagLinear, m2-architecture.md §1.2–1.3).
import * as tf from '@tensorflow/tfjs-core';
import type { Tensor, Tensor1D, Tensor2D, Tensor3D } from '@tensorflow/tfjs-core';
import { ShapeError } from './errors.js';
import { blockDiagGemm, useWasmBlockGemm } from './backends/wasm-gemm-kernel.js';
import { blockDiagMatmulKernel } from './backends/webgpu-blockdiag.js';
import { checkDim, checkPositiveInt, checkRank, checkTensor, shapeText } from './validate.js';

/**
 * Multiplies by a block-diagonal matrix given as its blocks.
 *
 * y[..., k·blockOut + j] = Σ_i x[..., k·blockIn + i] · blocks[k, i, j]. On the wasm backend, blocks of up to 128 × 128
 * run as one SIMD kernel that reads every block in place (`blockDiagGemm`, packed blocks cached), larger ones as one
 * XNNPACK 2-D matMul per block (faster there despite the split/concat; `M2_WASM_MONARCH_KERNEL=0` always); on webgpu as one WGSL kernel (`blockDiagMatmulKernel`); elsewhere as one
 * batched matMul.
 *
 * Shapes: x [..., numBlocks·blockIn] × blocks [numBlocks, blockIn, blockOut] → [..., numBlocks·blockOut]
 * @param x - Input. Its last dim must equal numBlocks × blockIn.
 * @param blocks - The diagonal blocks in tfjs layout [numBlocks, blockIn, blockOut]. PyTorch checkpoints store
 *   (block, out, in): convert them with {@link torchBlocksToTfjs}. Or an array of numBlocks pre-split [blockIn,
 *   blockOut] blocks: on wasm this skips the per-call split of the weight (keep them as separate variables).
 * @returns The product, with x's leading dims.
 * @throws ShapeError if blocks is not 3-D or x's last dim doesn't match the blocks.
 * @see arXiv:2310.12109 (Monarch Mixer), §3 Monarch matrices.
 * @example
 * blockDiagMatmul(tf.ones([2, 8]), tf.ones([4, 2, 3])).shape; // → [2, 12]
 */
export function blockDiagMatmul(x: Tensor, blocks: Tensor3D | Tensor2D[]): Tensor {
  if (Array.isArray(blocks)) return blockDiagMatmulSplit(x, blocks);
  checkTensor('blockDiagMatmul', 'x', x);
  checkTensor('blockDiagMatmul', 'blocks', blocks);
  checkRank('blockDiagMatmul', 'blocks', blocks, 3, '[numBlocks, blockIn, blockOut]');
  checkRank('blockDiagMatmul', 'x', x, { min: 1 });
  const [numBlocks, blockIn, blockOut] = blocks.shape;
  checkDim('blockDiagMatmul', 'x', x, -1, numBlocks * blockIn, `numBlocks ${numBlocks} × blockIn ${blockIn}`);
  return blockDiagMatmulUnchecked(x, blocks);
}

/** {@link blockDiagMatmul} with pre-split blocks: one 2-D matMul per block. */
function blockDiagMatmulSplit(x: Tensor, blocks: Tensor2D[]): Tensor {
  const op = 'blockDiagMatmul';
  checkTensor(op, 'x', x);
  checkRank(op, 'x', x, { min: 1 });
  if (blocks.length === 0) throw new ShapeError(`${op}: blocks must not be an empty array`, { parameter: 'blocks' });
  blocks.forEach((b, k) => {
    checkTensor(op, `blocks[${k}]`, b);
    const first = blocks[0].shape;
    if (b.rank !== 2 || b.shape[0] !== first[0] || b.shape[1] !== first[1]) {
      throw new ShapeError(`${op}: blocks[${k}] must have shape ${shapeText(first)} (like blocks[0]), got ${shapeText(b.shape)}`, {
        parameter: `blocks[${k}]`,
        value: b.shape,
      });
    }
  });
  const numBlocks = blocks.length;
  const [blockIn, blockOut] = blocks[0].shape;
  checkDim(op, 'x', x, -1, numBlocks * blockIn, `numBlocks ${numBlocks} × blockIn ${blockIn}`);
  const lead = x.shape.slice(0, -1);
  if (useWasmBlockGemm(numBlocks, blockIn, blockOut)) {
    return tf.tidy(() => tf.reshape(blockDiagGemm(tf.reshape(x, [-1, numBlocks * blockIn]) as Tensor2D, blocks), [...lead, numBlocks * blockOut]));
  }
  return tf.tidy(() => {
    const x2 = tf.reshape(x, [-1, numBlocks * blockIn]) as Tensor2D; // [N, nb·bi]
    const xs = numBlocks === 1 ? [x2] : tf.split(x2, numBlocks, 1); // numBlocks × [N, bi]
    const ys = xs.map((xk, k) => tf.matMul(xk as Tensor2D, blocks[k]));
    return tf.reshape(numBlocks === 1 ? ys[0] : tf.concat(ys, 1), [...lead, numBlocks * blockOut]);
  });
}

/** True inside tf.grad / tf.variableGrads: derived weights must then be recomputed on the tape, not cached. */
export function recordingGradients(): boolean {
  return (tf.engine().state as unknown as { gradientDepth: number }).gradientDepth > 0;
}

const splitCache = new Map<Tensor, { dataId: object; blocks: Tensor2D[] }>();

/**
 * 3-D blocks as numBlocks 2-D tensors for wasm's per-block matMuls: in inference split once and kept while the weight
 * keeps its data (a Variable's assign swaps the data id), so XNNPACK sees the same B operands call after call and
 * the weight is not copied again; under tf.grad split on the tape. Entries of disposed weights are freed on a miss.
 */
function splitBlocks(w: Tensor3D): Tensor2D[] {
  if (recordingGradients()) return tf.unstack(w) as Tensor2D[];
  const dataId = (w as unknown as { dataId: object }).dataId;
  const hit = splitCache.get(w);
  if (hit !== undefined && hit.dataId === dataId && hit.blocks.every((b) => !b.isDisposed)) return hit.blocks;
  for (const [source, entry] of splitCache) {
    if (source.isDisposed || source === w) {
      tf.dispose(entry.blocks);
      splitCache.delete(source);
    }
  }
  const blocks = (tf.unstack(w) as Tensor2D[]).map((b) => tf.keep(b));
  splitCache.set(w, { dataId, blocks });
  return blocks;
}

/** Frees the per-block weights {@link blockDiagMatmul} keeps on wasm (rebuilt on the next call). */
export function clearBlockSplitCache(): void {
  for (const entry of splitCache.values()) tf.dispose(entry.blocks);
  splitCache.clear();
}

/** {@link blockDiagMatmul} without input checks (internal hot path). */
export function blockDiagMatmulUnchecked(x: Tensor, blocks: Tensor3D): Tensor {
  const [numBlocks, blockIn, blockOut] = blocks.shape;
  const lead = x.shape.slice(0, -1);
  return tf.tidy(() => {
    const x2 = tf.reshape(x, [-1, numBlocks * blockIn]); // [N, nb·bi]
    let y2: Tensor;
    if (numBlocks === 1) {
      y2 = tf.matMul(x2 as tf.Tensor2D, tf.reshape(blocks, [blockIn, blockOut]) as tf.Tensor2D);
    } else if (tf.getBackend() === 'webgpu') {
      // webgpu: one tiled WGSL dispatch in the natural layouts, with WGSL gradients (backends/webgpu-blockdiag.ts).
      y2 = blockDiagMatmulKernel(x2 as Tensor2D, blocks);
    } else if (useWasmBlockGemm(numBlocks, blockIn, blockOut)) {
      // wasm, blocks up to 128 × 128: one SIMD kernel reading every block in place (backends/wasm-gemm-kernel.ts).
      y2 = blockDiagGemm(x2 as Tensor2D, blocks);
    } else if (tf.getBackend() === 'wasm') {
      // One 2-D matMul per block: wasm's BatchMatMul with batch > 1 is ~10× slower (toolchain.md §6).
      const xs = tf.split(x2, numBlocks, 1); // numBlocks × [N, bi]
      const ws = splitBlocks(blocks); // numBlocks × [bi, bo]
      y2 = tf.concat(xs.map((xk, k) => tf.matMul(xk as tf.Tensor2D, ws[k] as tf.Tensor2D)), 1);
    } else {
      const xb = tf.transpose(tf.reshape(x2, [-1, numBlocks, blockIn]), [1, 0, 2]); // [nb, N, bi]
      const yb = tf.matMul(xb as Tensor3D, blocks); // [nb, N, bo]
      y2 = tf.reshape(tf.transpose(yb, [1, 0, 2]), [-1, numBlocks * blockOut]); // [N, nb·bo]
    }
    return tf.reshape(y2, [...lead, numBlocks * blockOut]);
  });
}

/** Options of {@link blockdiagLinear}. */
export interface BlockdiagLinearOptions {
  /** Output features: the product's numBlocks·blockOut outputs are truncated to this many. */
  outFeatures: number;
  /** Optional bias [outFeatures], added after truncation. */
  bias?: Tensor1D;
}

/**
 * The forward pass of the original `BlockdiagLinear`: zero-pad x's last dim on the right to numBlocks·blockIn,
 * multiply by the block-diagonal weight, keep the first `outFeatures` outputs, add the bias.
 *
 * Shapes: x [..., inFeatures ≤ numBlocks·blockIn] × weight [numBlocks, blockIn, blockOut] → [..., outFeatures]
 * @param x - Input [..., inFeatures].
 * @param weight - Blocks in tfjs layout [numBlocks, blockIn, blockOut] (see {@link torchBlocksToTfjs}).
 * @param options - `outFeatures` (≤ numBlocks·blockOut) and an optional `bias` [outFeatures].
 * @returns [..., outFeatures].
 * @throws ShapeError if x is wider than numBlocks·blockIn, outFeatures exceeds numBlocks·blockOut, or the bias
 *   length differs from outFeatures.
 * @see arXiv:2310.12109 (Monarch Mixer) §3; m2 `bert/src/mm/blockdiag_linear.py`.
 * @example
 * blockdiagLinear(tf.ones([3, 90]), tf.ones([4, 23, 38]), { outFeatures: 150 }).shape; // → [3, 150]
 */
export function blockdiagLinear(x: Tensor, weight: Tensor3D, options: BlockdiagLinearOptions): Tensor {
  const op = 'blockdiagLinear';
  checkTensor(op, 'x', x);
  checkTensor(op, 'weight', weight);
  checkRank(op, 'weight', weight, 3, '[numBlocks, blockIn, blockOut]');
  checkRank(op, 'x', x, { min: 1 });
  const { outFeatures, bias } = options ?? ({} as BlockdiagLinearOptions);
  checkPositiveInt(op, 'options.outFeatures', outFeatures);
  const [numBlocks, blockIn, blockOut] = weight.shape;
  const inExt = numBlocks * blockIn;
  const inFeatures = x.shape[x.rank - 1];
  if (inFeatures > inExt) {
    throw new ShapeError(`${op}: x last dim must be ≤ ${inExt} (numBlocks ${numBlocks} × blockIn ${blockIn}), got ${inFeatures}`, {
      parameter: 'x',
      value: x.shape,
    });
  }
  if (outFeatures > numBlocks * blockOut) {
    throw new ShapeError(
      `${op}: options.outFeatures must be ≤ ${numBlocks * blockOut} (numBlocks ${numBlocks} × blockOut ${blockOut}), got ${outFeatures}`,
      { parameter: 'options.outFeatures', value: outFeatures },
    );
  }
  if (bias !== undefined) {
    checkTensor(op, 'options.bias', bias);
    if (bias.rank !== 1 || bias.shape[0] !== outFeatures) {
      throw new ShapeError(`${op}: options.bias must have shape [${outFeatures}] (outFeatures), got ${shapeText(bias.shape)}`, {
        parameter: 'options.bias',
        value: bias.shape,
      });
    }
  }
  return tf.tidy(() => {
    const padding = x.shape.map((): [number, number] => [0, 0]);
    padding[x.rank - 1] = [0, inExt - inFeatures];
    const xPadded = inFeatures < inExt ? tf.pad(x, padding) : x; // [..., nb·bi]
    let y = blockDiagMatmulUnchecked(xPadded, weight); // [..., nb·bo]
    if (outFeatures < numBlocks * blockOut) {
      const begin = y.shape.map(() => 0);
      const size = y.shape.map((d, i) => (i === y.rank - 1 ? outFeatures : d));
      y = tf.slice(y, begin, size); // [..., outFeatures]
    }
    return bias === undefined ? y : tf.add(y, bias);
  });
}

/**
 * Converts PyTorch block weights (block, out, in) to the tfjs layout [numBlocks, blockIn, blockOut].
 *
 * Shapes: [numBlocks, blockOut, blockIn] → [numBlocks, blockIn, blockOut]
 * @param w - PyTorch-layout blocks.
 * @returns The blocks with the last two axes swapped.
 * @throws ShapeError if w is not 3-D.
 * @example
 * torchBlocksToTfjs(tf.zeros([4, 40, 24])).shape; // → [4, 24, 40]
 */
export function torchBlocksToTfjs(w: Tensor3D): Tensor3D {
  checkTensor('torchBlocksToTfjs', 'w', w);
  checkRank('torchBlocksToTfjs', 'w', w, 3, '(block, out, in)');
  return tf.transpose(w, [0, 2, 1]);
}

/**
 * Converts tfjs block weights [numBlocks, blockIn, blockOut] back to the PyTorch layout (block, out, in).
 *
 * Shapes: [numBlocks, blockIn, blockOut] → [numBlocks, blockOut, blockIn]
 * @param w - tfjs-layout blocks.
 * @returns The blocks with the last two axes swapped.
 * @throws ShapeError if w is not 3-D.
 * @example
 * tfjsBlocksToTorch(tf.zeros([4, 24, 40])).shape; // → [4, 40, 24]
 */
export function tfjsBlocksToTorch(w: Tensor3D): Tensor3D {
  checkTensor('tfjsBlocksToTorch', 'w', w);
  checkRank('tfjsBlocksToTorch', 'w', w, 3, '[numBlocks, blockIn, blockOut]');
  return tf.transpose(w, [0, 2, 1]);
}
