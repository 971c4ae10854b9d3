// Block-diagonal and order-2 Monarch products as wasm kernels of their own (tfjs custom ops registered for the
// 'wasm' backend), running wasm-gemm-source.ts's SIMD loops on the tfjs heap, split by row chunks over the helper
// threads of wasm-parallel.ts. They read each block's operand straight from the row layout and write the permuted
// layout directly, so the split / concat / digit-transpose copies of the per-block XNNPACK path disappear. Weights
// are packed once (panels of 8 output columns; Monarch's second factor as [S, R, Lb]) and cached while the weight
// keeps its data. `M2_WASM_MONARCH_KERNEL=0` switches back to the per-block XNNPACK path (paired timings).
import * as tf from '@tensorflow/tfjs-core';
import type { GradSaveFunc, KernelFunc, NamedAttrMap, Tensor, Tensor1D, Tensor2D, Tensor3D, TensorInfo } from '@tensorflow/tfjs-core';
import { envSetting } from '../env.js';
import { GEMM_PANEL, MONARCH_SCRATCH_PAD } from './wasm-gemm-source.js';
import { PARALLEL_KERNELS, runParallel, wasmGemmReady, wasmHelperThreads, withWorkBlock } from './wasm-parallel.js';
import type { WasmOutputBackend } from './wasm-parallel.js';

/** Kernel name of the block-diagonal product: inputs { x [N, nb·bi], packed }, attrs { numBlocks, blockIn, blockOut }. */
export const BLOCK_GEMM_KERNEL = 'M2BlockDiagGemm';
/** Kernel name of the order-2 Monarch product: inputs { x [N, K·P], packed1, packed2 }, attrs { K, P, Q, Lb, R, S }. */
export const MONARCH_GEMM_KERNEL = 'M2MonarchGemm';

/**
 * Rows per work unit: ≥ 4 units per thread so that the shares even out, a multiple of 4 (the tile), at most `most`
 * (64 for block products; 16 for Monarch, whose chunk of out1 should stay in L2 between its two factors).
 */
function rowChunk(rows: number, most: number): number {
  return Math.max(4, Math.min(most, Math.ceil(rows / (4 * wasmHelperThreads()) / 4) * 4));
}

/** Float offset of a tensor's data in the heap. */
function heapOffset(view: { byteOffset: number }): number {
  return view.byteOffset / 4;
}

const blockGemmKernel: KernelFunc = ({ inputs, backend, attrs }) => {
  const { x, packed } = inputs as { x: TensorInfo; packed: TensorInfo };
  const { numBlocks, blockIn, blockOut } = attrs as unknown as { numBlocks: number; blockIn: number; blockOut: number };
  const wasm = backend as unknown as WasmOutputBackend;
  const rows = x.shape[0]!;
  const out = wasm.makeOutput([rows, numBlocks * blockOut], 'float32');
  if (rows === 0) return out;
  const chunk = rowChunk(rows, 64);
  const units = Math.ceil(rows / chunk);
  withWorkBlock(wasm, 0, ({ counter, heap }) => {
    // Heap offsets (the data does not move; views are taken after the allocation: growing an unshared heap detaches).
    const [xo, po, yo] = [x, packed, out].map((t) => heapOffset(wasm.typedArrayFromHeap(t)));
    const args = [xo!, po!, yo!, rows, numBlocks, blockIn, blockOut, chunk, counter / 4, units];
    runParallel(PARALLEL_KERNELS.blockGemm, args, units, heap, rows * numBlocks * blockIn * blockOut);
  });
  return out;
};

const monarchGemmKernel: KernelFunc = ({ inputs, backend, attrs }) => {
  const { x, packed1, packed2 } = inputs as { x: TensorInfo; packed1: TensorInfo; packed2: TensorInfo };
  const { K, P, Q, Lb, R, S } = attrs as unknown as Record<'K' | 'P' | 'Q' | 'Lb' | 'R' | 'S', number>;
  const wasm = backend as unknown as WasmOutputBackend;
  const rows = x.shape[0]!;
  const out = wasm.makeOutput([rows, Lb * S], 'float32');
  if (rows === 0) return out;
  const chunk = rowChunk(rows, 16);
  const units = Math.ceil(rows / chunk);
  // out1 = x·blockdiag(w1ᵀ) of one row chunk [chunk, rowFloats], one slot per thread (reused chunk after chunk: it
  // stays in cache); the threads number their slots from the counters' second word.
  const rowFloats = K * Q + MONARCH_SCRATCH_PAD;
  withWorkBlock(wasm, chunk * rowFloats * 4, ({ counter, scratch, heap }) => {
    const [xo, p1, p2, yo] = [x, packed1, packed2, out].map((t) => heapOffset(wasm.typedArrayFromHeap(t)));
    const args = [xo!, p1!, p2!, scratch / 4, yo!, rows, K, P, Q, Lb, R, S, chunk, rowFloats * 4, counter / 4, units];
    runParallel(PARALLEL_KERNELS.monarchGemm, args, units, heap, rows * K * P * Q);
  });
  return out;
};

/**
 * Registers the block-diagonal and Monarch kernels for the `wasm` backend (setupBackend('wasm') calls it, beside
 * monarch-core's other wasm kernels), skipping any that exist already.
 */
export function registerWasmGemmKernels(): void {
  for (const [kernelName, kernelFunc] of [
    [BLOCK_GEMM_KERNEL, blockGemmKernel],
    [MONARCH_GEMM_KERNEL, monarchGemmKernel],
  ] as const) {
    if (tf.getKernel(kernelName, 'wasm') === undefined) tf.registerKernel({ kernelName, backendName: 'wasm', kernelFunc });
  }
}

/**
 * Whether the block-diagonal / Monarch kernels run now: the wasm backend is active, its SIMD gemm module is bound to
 * the heap (setupBackend('wasm') did that), and `M2_WASM_MONARCH_KERNEL` is not `0`.
 *
 * @returns True when {@link blockDiagGemm} and {@link monarchGemm} may be called.
 * @example
 * wasmGemmEnabled(); // → true after setupBackend('wasm') in Node
 */
export function wasmGemmEnabled(): boolean {
  return tf.getBackend() === 'wasm' && envSetting('M2_WASM_MONARCH_KERNEL') !== '0' && wasmGemmReady();
}

/**
 * Largest block (blockIn·blockOut entries) that {@link blockDiagGemm} takes: from 256 × 256 up, XNNPACK's per-block
 * matMuls run 10–40 % faster than this kernel's 4 × 8 micro-kernel and outweigh their split/concat copies (2048 rows,
 * one thread: 4 × [256, 256] 46.8 vs 53.9 ms, 4 × [192, 768] 118 vs 132 ms, 2 × [512, 512] 87 vs 124 ms); up to 128 ×
 * 128 the copies dominate and this kernel wins (16 × [64, 64] 14.2 vs 22.8 ms, 8 × [128, 128] 26.5 vs 28.8 ms).
 */
export const WASM_GEMM_MAX_BLOCK = 128 * 128;

/**
 * Whether blockDiagMatmul should run {@link blockDiagGemm} for these blocks: {@link wasmGemmEnabled}, more than one
 * block, and blocks of at most {@link WASM_GEMM_MAX_BLOCK} entries (larger ones run faster as XNNPACK matMuls).
 *
 * @param numBlocks - Number of blocks.
 * @param blockIn - Rows of a block.
 * @param blockOut - Columns of a block.
 * @returns True when the kernel is the faster path.
 * @example
 * useWasmBlockGemm(32, 32, 32); // → true on wasm
 */
export function useWasmBlockGemm(numBlocks: number, blockIn: number, blockOut: number): boolean {
  return numBlocks > 1 && blockIn * blockOut <= WASM_GEMM_MAX_BLOCK && wasmGemmEnabled();
}

/**
 * Blocks [nb, bi, bo] packed for the gemm loops: per block, ⌈bo/8⌉ panels [bi, 8] (zero-padded columns), flat.
 *
 * Shapes: [nb, bi, bo] → [nb·⌈bo/8⌉·bi·8]
 */
function packBlocks(blocks: Tensor3D): Tensor1D {
  return tf.tidy(() => {
    const [nb, bi, bo] = blocks.shape;
    const panels = Math.ceil(bo / GEMM_PANEL);
    const padded = panels * GEMM_PANEL === bo ? blocks : tf.pad(blocks, [[0, 0], [0, 0], [0, panels * GEMM_PANEL - bo]]); // [nb, bi, panels·8]
    const panelled = tf.transpose(tf.reshape(padded, [nb, bi, panels, GEMM_PANEL]), [0, 2, 1, 3]); // [nb, panels, bi, 8]
    return tf.reshape(panelled, [-1]) as Tensor1D;
  });
}

interface PackedEntry {
  sources: Tensor[];
  dataIds: object[];
  packed: Tensor1D;
}

/** Packed weights by their first source tensor and kind. */
const packCache = new Map<Tensor, Map<string, PackedEntry>>();

const dataIdOf = (t: Tensor) => (t as unknown as { dataId: object }).dataId;

/**
 * `make()` of these sources, computed once and kept while every source keeps its data (a Variable's assign swaps the
 * data id). Entries of disposed sources are freed on the next miss.
 */
function cachedPack(kind: string, sources: Tensor[], make: () => Tensor1D): Tensor1D {
  const key = sources[0]!;
  const hit = packCache.get(key)?.get(kind);
  if (hit !== undefined && !hit.packed.isDisposed && hit.sources.length === sources.length && hit.sources.every((s, i) => s === sources[i] && hit.dataIds[i] === dataIdOf(s))) {
    return hit.packed;
  }
  for (const [source, entries] of packCache) {
    for (const [k, entry] of entries) {
      if (entry.sources.some((s) => s.isDisposed) || (source === key && k === kind)) {
        entry.packed.dispose();
        entries.delete(k);
      }
    }
    if (entries.size === 0) packCache.delete(source);
  }
  const packed = tf.keep(make());
  if (!packCache.has(key)) packCache.set(key, new Map());
  packCache.get(key)!.set(kind, { sources, dataIds: sources.map(dataIdOf), packed });
  return packed;
}

/**
 * Frees the packed weights kept by {@link blockDiagGemm} and {@link monarchGemm} (rebuilt on the next call).
 *
 * @example
 * clearWasmGemmCache();
 */
export function clearWasmGemmCache(): void {
  for (const entries of packCache.values()) for (const entry of entries.values()) entry.packed.dispose();
  packCache.clear();
}

/** The block kernel on packed blocks. Shapes: x [N, nb·bi] → [N, nb·bo]. */
function runBlockGemm(x: Tensor, packed: Tensor1D, numBlocks: number, blockIn: number, blockOut: number): Tensor2D {
  const attrs = { numBlocks, blockIn, blockOut } as unknown as NamedAttrMap;
  return tf.engine().runKernel(BLOCK_GEMM_KERNEL, { x, packed }, attrs) as Tensor2D;
}

/**
 * Block-diagonal product with the wasm gemm kernel (call only when {@link wasmGemmEnabled}), with its gradient:
 * dx = dy·blockdiag(W_kᵀ) (the same kernel on transposed blocks), dW_k = x_kᵀ·dy_k (one 2-D matMul per block).
 * The packed blocks are cached while the weights keep their data.
 *
 * Shapes: x [N, nb·bi] × blocks [nb, bi, bo] (or nb × [bi, bo]) → [N, nb·bo]
 * @param x - Input rows.
 * @param blocks - The blocks in tfjs layout, as one tensor or pre-split.
 * @returns The product.
 * @example
 * blockDiagGemm(tf.ones([2, 8]), tf.ones([4, 2, 3])).shape; // → [2, 12]
 */
export function blockDiagGemm(x: Tensor2D, blocks: Tensor3D | Tensor2D[]): Tensor2D {
  const split = Array.isArray(blocks);
  const [numBlocks, blockIn, blockOut] = split ? [blocks.length, blocks[0]!.shape[0], blocks[0]!.shape[1]] : blocks.shape;
  const sources = split ? blocks : [blocks];
  const stacked = () => (split ? tf.stack(blocks) : blocks) as Tensor3D; // [nb, bi, bo]
  const packed = cachedPack('blocks', sources, () => tf.tidy(() => packBlocks(stacked())));
  const product = tf.customGrad((...args: unknown[]) => {
    const save = args.pop() as GradSaveFunc;
    const inputs = args as Tensor[];
    save(inputs);
    return {
      value: runBlockGemm(inputs[0]!, packed, numBlocks, blockIn, blockOut),
      gradFunc: (dy: Tensor, saved: Tensor[]) => {
        const [xs, ...ws] = saved;
        const w = (split ? tf.stack(ws) : ws[0]) as Tensor3D; // [nb, bi, bo]
        const dx = runBlockGemm(dy, packBlocks(tf.transpose(w, [0, 2, 1])), numBlocks, blockOut, blockIn); // [N, nb·bi]
        const xk = numBlocks === 1 ? [xs!] : tf.split(xs!, numBlocks, 1); // nb × [N, bi]
        const dyk = numBlocks === 1 ? [dy] : tf.split(dy, numBlocks, 1); // nb × [N, bo]
        const dw = xk.map((a, k) => tf.matMul(a as Tensor2D, dyk[k] as Tensor2D, true, false)); // nb × [bi, bo]
        return [dx, ...(split ? dw : [tf.stack(dw)])];
      },
    };
  });
  return product(x, ...sources) as Tensor2D;
}

/**
 * Order-2 Monarch product (monarchMatmul's semantics, PyTorch layouts) with the wasm gemm kernel, for inference
 * (no gradient: monarchMatmul records its tfjs path on the tape). Call only when {@link wasmGemmEnabled} and
 * Lb % 4 = 0 (the second factor's vectors run over 4 adjacent blocks).
 *
 * Shapes: x [N, K·P] × w1 (K, Q, P) × w2 (Lb, S, R), Lb·R = K·Q → [N, Lb·S]
 * @param x - Input rows.
 * @param w1 - First factor (block, out, in).
 * @param w2 - Second factor (block, out, in).
 * @returns y [N, Lb·S], y[b, s·Lb + l] = Σ_r w2[l, s, r]·out1[b, r·Lb + l].
 * @example
 * monarchGemm(tf.ones([2, 64]), tf.ones([8, 8, 8]), tf.ones([8, 8, 8])).shape; // → [2, 64]
 */
export function monarchGemm(x: Tensor2D, w1: Tensor3D, w2: Tensor3D): Tensor2D {
  const [K, Q, P] = w1.shape;
  const [Lb, S, R] = w2.shape;
  const packed1 = cachedPack('monarch1', [w1], () => tf.tidy(() => packBlocks(tf.transpose(w1, [0, 2, 1])))); // K × [P, Q]
  const packed2 = cachedPack('monarch2', [w2], () => tf.tidy(() => tf.reshape(tf.transpose(w2, [1, 2, 0]), [-1]) as Tensor1D)); // [S, R, Lb]
  const attrs = { K, P, Q, Lb, R, S } as unknown as NamedAttrMap;
  return tf.engine().runKernel(MONARCH_GEMM_KERNEL, { x, packed1, packed2 }, attrs) as Tensor2D;
}
