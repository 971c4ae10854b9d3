// Monarch matrices (m2-architecture.md §1.1–1.4): order-2 products with the original permutation semantics,
// order-p products, their dense matrices, and the closed-form projection of a dense matrix onto order 2.
import * as tf from '@tensorflow/tfjs-core';
import type { Tensor, Tensor2D, Tensor3D } from '@tensorflow/tfjs-core';
import { blockDiagMatmulUnchecked, clearBlockSplitCache, recordingGradients } from './blockdiag.js';
import { clearWasmGemmCache, monarchGemm, wasmGemmEnabled } from './backends/wasm-gemm-kernel.js';
import { ShapeError } from './errors.js';
import { svd } from './svd.js';
import { checkDim, checkRank, checkTensor, shapeText } from './validate.js';

/**
 * Order-2 Monarch multiply with the original code's semantics (`blockdiag_butterfly_multiply`), PyTorch layouts:
 * out1[b, k, q] = Σ_p w1[k, q, p]·x[b, k·P + p]; the flat index i = k·Q + q is re-read as i = r·Lb + l;
 * y[b, s·Lb + l] = Σ_r w2[l, s, r]·out1[b, r·Lb + l]. Square (n = m) and rectangular shapes both work.
 * On wasm in inference (Lb a multiple of 4) both factors run as one SIMD kernel that reads and writes the permuted
 * layouts in place, on factors packed once and cached (backends/wasm-gemm-kernel.ts; `M2_WASM_MONARCH_KERNEL=0`
 * switches back to per-block matMuls); under `tf.grad` the product is recorded as block-diagonal products.
 *
 * Shapes: x [..., K·P] × w1 (K, Q, P) × w2 (Lb, S, R) with Lb·R = K·Q → [..., Lb·S]
 * @param x - Input [..., n], n = K·P.
 * @param w1 - First block-diagonal factor, (block, out, in).
 * @param w2 - Second block-diagonal factor, (block, out, in).
 * @returns y [..., m], m = Lb·S.
 * @throws ShapeError if the factors are not 3-D, Lb·R ≠ K·Q, or x's last dim is not K·P.
 * @see arXiv:2310.12109 (Monarch Mixer) §3; Dao et al. 2022 (Monarch).
 * @example
 * monarchMatmul(tf.ones([2, 64]), tf.ones([8, 8, 8]), tf.ones([8, 8, 8])).shape; // → [2, 64]
 */
export function monarchMatmul(x: Tensor, w1: Tensor3D, w2: Tensor3D): Tensor {
  const op = 'monarchMatmul';
  checkTensor(op, 'x', x);
  checkTensor(op, 'w1', w1);
  checkTensor(op, 'w2', w2);
  checkRank(op, 'w1', w1, 3, '(K, Q, P)');
  checkRank(op, 'w2', w2, 3, '(Lb, S, R)');
  checkRank(op, 'x', x, { min: 1 });
  const [K, Q, P] = w1.shape;
  const [Lb, S, R] = w2.shape;
  if (Lb * R !== K * Q) {
    throw new ShapeError(`${op}: w2 (Lb, S, R) must have Lb·R = K·Q = ${K * Q} (w1 ${shapeText(w1.shape)}), got ${shapeText(w2.shape)}`, {
      parameter: 'w2',
      value: w2.shape,
    });
  }
  checkDim(op, 'x', x, -1, K * P, `w1 numBlocks ${K} × blockIn ${P}`);
  const lead = x.shape.slice(0, -1);
  if (Lb % 4 === 0 && !recordingGradients() && wasmGemmEnabled()) {
    // One SIMD kernel: both factors read and write the permuted layouts in place (backends/wasm-gemm-kernel.ts).
    return tf.tidy(() => tf.reshape(monarchGemm(tf.reshape(x, [-1, K * P]) as Tensor2D, w1, w2), [...lead, S * Lb]));
  }
  if (tf.getBackend() === 'wasm' && !recordingGradients()) {
    const [b1, b2] = [transposedBlocks(w1), transposedBlocks(w2)]; // cached outside the tidy
    return tf.tidy(() => tf.reshape(monarchWasm(tf.reshape(x, [-1, K * P]) as Tensor2D, w1.shape, w2.shape, b1, b2), [...lead, S * Lb]));
  }
  return tf.tidy(() => {
    const out1 = blockDiagMatmulUnchecked(tf.reshape(x, [-1, K * P]), tf.transpose(w1, [0, 2, 1])); // [B, K·Q]
    const t = tf.reshape(tf.transpose(tf.reshape(out1, [-1, R, Lb]), [0, 2, 1]), [-1, Lb * R]); // [B, (l, r)]
    const out2 = blockDiagMatmulUnchecked(t, tf.transpose(w2, [0, 2, 1])); // [B, (l, s)]
    const y = tf.transpose(tf.reshape(out2, [-1, Lb, S]), [0, 2, 1]); // [B, S, Lb] = y[b, s·Lb + l]
    return tf.reshape(y, [...lead, S * Lb]);
  });
}


interface CachedBlocks {
  source: Tensor;
  dataId: object;
  blocks: Tensor2D[];
}

const blockCache = new Map<Tensor, CachedBlocks>();

/**
 * A PyTorch-layout factor (block, out, in) as per-block [in, out] 2-D tensors, transposed and split once and kept
 * while the factor keeps its data (a Variable's assign swaps the data id), so every call is plain 2-D matMuls on
 * the same B operands (XNNPACK packs them once). Entries of disposed factors are freed on the next miss.
 */
function transposedBlocks(w: Tensor3D): Tensor2D[] {
  const dataId = (w as unknown as { dataId: object }).dataId;
  const hit = blockCache.get(w);
  if (hit !== undefined && hit.dataId === dataId && hit.blocks.every((b) => !b.isDisposed)) return hit.blocks;
  for (const [source, entry] of blockCache) {
    if (source.isDisposed || source === w) {
      tf.dispose(entry.blocks);
      blockCache.delete(source);
    }
  }
  const blocks = tf.tidy(() => tf.unstack(tf.transpose(w, [0, 2, 1])) as Tensor2D[]); // numBlocks × [in, out]
  blocks.forEach((b) => tf.keep(b));
  blockCache.set(w, { source: w, dataId, blocks });
  return blocks;
}

/**
 * Frees the per-block factors and packed weights {@link monarchMatmul} and {@link blockDiagMatmul} keep on wasm
 * (rebuilt on the next call).
 *
 * @example
 * clearMonarchCache();
 */
export function clearMonarchCache(): void {
  for (const entry of blockCache.values()) tf.dispose(entry.blocks);
  blockCache.clear();
  clearWasmGemmCache();
  clearBlockSplitCache();
}

/**
 * {@link monarchMatmul} on wasm in inference when the SIMD kernel does not run (`M2_WASM_MONARCH_KERNEL=0`, Lb not
 * a multiple of 4, no SIMD): blocks as leading axes (3-D transposes) so that every block is a
 * contiguous slab, one plain 2-D matMul per block on cached factors (wasm's batched matMul is ~10× slower and a
 * transposed or fresh B operand misses XNNPACK's fast path, toolchain.md §6).
 *
 * Shapes: x [B, K·P] × w1 (K, Q, P) × w2 (Lb, S, R) → [B, Lb·S]; b1 = K × [P, Q], b2 = Lb × [R, S] (from
 * transposedBlocks).
 */
function monarchWasm(x: Tensor2D, w1Shape: number[], w2Shape: number[], b1: Tensor2D[], b2: Tensor2D[]): Tensor {
  const [K, Q, P] = w1Shape as [number, number, number];
  const [Lb, S, R] = w2Shape as [number, number, number];
  return tf.tidy(() => {
    const batch = x.shape[0];
    const xs = tf.unstack(tf.transpose(tf.reshape(x, [batch, K, P]), [1, 0, 2])); // K × [B, P]
    const y1 = tf.stack(xs.map((xk, k) => tf.matMul(xk as Tensor2D, b1[k]!))); // [K, B, Q]: out1[b, k·Q + q]
    // Block l of the second factor reads out1[b, r·Lb + l] for r < R: gather it as the slab t[l] = [B, R].
    const t =
      Q === Lb
        ? tf.transpose(y1, [2, 1, 0]) // square digits (R = K): [Lb, B, R]
        : tf.transpose(tf.reshape(tf.transpose(y1, [1, 0, 2]), [batch, R, Lb]), [2, 0, 1]); // [Lb, B, R]
    const ts = tf.unstack(t); // Lb × [B, R]
    const y2 = tf.stack(ts.map((tl, l) => tf.matMul(tl as Tensor2D, b2[l]!))); // [Lb, B, S]
    return tf.reshape(tf.transpose(y2, [1, 2, 0]), [batch, S * Lb]); // y[b, s·Lb + l]
  });
}

/**
 * Order-p Monarch multiply (M2 paper §3): p block-diagonal factors, each followed by the digit permutation.
 * View x's last dim N as digits of shape [b_{p−1}, …, b_1, b_0] (row-major), where b_i is factor i's block
 * size. Factor i, (N/b_i, b_i, b_i) in PyTorch layout, multiplies the last digit (block index = the other digits
 * in order), then the mixed digit moves to the front. After all p factors the digits are back in their original
 * order, so every digit has been mixed once. Order 2 with equal square blocks is exactly {@link monarchMatmul};
 * different b_i give mixed-radix Monarch matrices such as the Cooley–Tukey FFT.
 *
 * Shapes: x [..., N] × factors[i] (N/b_i, b_i, b_i), N = ∏ b_i → [..., N]
 * @param x - Input [..., N].
 * @param factors - Square-block factors, applied in order.
 * @returns y [..., N].
 * @throws ShapeError if a factor is not (N/b, b, b) or the block sizes don't multiply to N.
 * @see arXiv:2310.12109 (Monarch Mixer) §3, order-p Monarch matrices.
 * @example
 * monarchMatmulOrderP(tf.ones([2, 64]), [tf.ones([16, 4, 4]), tf.ones([16, 4, 4]), tf.ones([16, 4, 4])]).shape; // → [2, 64]
 */
export function monarchMatmulOrderP(x: Tensor, factors: Tensor3D[]): Tensor {
  const op = 'monarchMatmulOrderP';
  checkTensor(op, 'x', x);
  checkRank(op, 'x', x, { min: 1 });
  const n = x.shape[x.rank - 1];
  if (!Array.isArray(factors) || factors.length === 0) {
    throw new ShapeError(`${op}: factors must be a non-empty array of (N/b, b, b) tensors, got ${Array.isArray(factors) ? 'an empty array' : typeof factors}`, {
      parameter: 'factors',
    });
  }
  let product = 1;
  factors.forEach((f, i) => {
    checkTensor(op, `factors[${i}]`, f);
    checkRank(op, `factors[${i}]`, f, 3, '(N/b, b, b)');
    const [nb, bo, bi] = f.shape;
    if (bo !== bi || nb * bi !== n) {
      throw new ShapeError(`${op}: factors[${i}] must have shape (N/b, b, b) with N = ${n} (x last dim), got ${shapeText(f.shape)}`, {
        parameter: `factors[${i}]`,
        value: f.shape,
      });
    }
    product *= bi;
  });
  if (product !== n) {
    const sizes = factors.map((f) => f.shape[2]).join('·');
    throw new ShapeError(`${op}: factor block sizes must multiply to x last dim ${n}, got ${sizes} = ${product}`, { parameter: 'factors' });
  }
  const lead = x.shape.slice(0, -1);
  return tf.tidy(() => {
    let cur = tf.reshape(x, [-1, n]); // [B, N]
    for (const f of factors) {
      const [nb, b] = f.shape;
      const mixed = blockDiagMatmulUnchecked(cur, tf.transpose(f, [0, 2, 1])); // [B, (blk, o)]
      cur = tf.reshape(tf.transpose(tf.reshape(mixed, [-1, nb, b]), [0, 2, 1]), [-1, n]); // [B, (o, blk)]
    }
    return tf.reshape(cur, [...lead, n]);
  });
}

/**
 * The dense matrix of a Monarch operator, as in the original code: row = output, so y = x · denseᵀ.
 * Pass (w1, w2) for order 2 (see {@link monarchMatmul}) or an array of factors for order p
 * (see {@link monarchMatmulOrderP}).
 *
 * Shapes: w1 (K, Q, P), w2 (Lb, S, R) → [Lb·S, K·P]; factors[i] (N/b_i, b_i, b_i) → [N, N]
 * @param w1 - First factor, or the list of order-p factors.
 * @param w2 - Second factor (order 2 only).
 * @returns The dense matrix [outputs, inputs].
 * @throws ShapeError for inconsistent factor shapes.
 * @example
 * monarchToDense(tf.ones([8, 8, 8]), tf.ones([8, 8, 8])).shape; // → [64, 64]
 */
export function monarchToDense(w1: Tensor3D | Tensor3D[], w2?: Tensor3D): Tensor2D {
  return tf.tidy(() => {
    if (Array.isArray(w1)) {
      checkTensor('monarchToDense', 'factors[0]', w1[0]);
      const n = w1[0].shape[0] * w1[0].shape[2];
      return tf.transpose(monarchMatmulOrderP(tf.eye(n), w1)) as Tensor2D;
    }
    checkTensor('monarchToDense', 'w1', w1);
    checkTensor('monarchToDense', 'w2', w2);
    checkRank('monarchToDense', 'w1', w1, 3, '(K, Q, P)');
    const n = w1.shape[0] * w1.shape[2];
    return tf.transpose(monarchMatmul(tf.eye(n), w1, w2 as Tensor3D)) as Tensor2D;
  });
}

/** Result of {@link monarchProject}: order-2 factors in PyTorch layout for {@link monarchMatmul}. */
export interface MonarchFactors {
  /** First factor (K, Q, P) = (s0, s1, n/s0). */
  w1: Tensor3D;
  /** Second factor (Lb, S, R) = (s1, n/s1, s0). */
  w2: Tensor3D;
}

/**
 * The nearest order-2 Monarch matrix to a square dense matrix in Frobenius norm (closed form: a Monarch matrix is a
 * permuted block-rank-1 matrix, so each block is replaced by its best rank-1 approximation from an SVD, with √σ on
 * each side). Sizes as fly's `blockdiag_butterfly_project`: n = s0·s1 with the factor pair closest to √n, larger
 * first. Computed in float64 on the CPU (own one-sided Jacobi SVD).
 *
 * Shapes: dense [n, n] (row = output, as {@link monarchToDense}) → w1 (s0, s1, n/s0), w2 (s1, n/s1, s0)
 * @param dense - The matrix to project.
 * @returns `{ w1, w2 }` such that `monarchToDense(w1, w2)` is the projection.
 * @throws ShapeError if dense is not square 2-D.
 * @see Dao et al. 2022, "Monarch: Expressive Structured Matrices", projection theorem.
 * @example
 * const { w1, w2 } = monarchProject(tf.eye(64)); w1.shape; // → [8, 8, 8]
 */
export function monarchProject(dense: Tensor2D): MonarchFactors {
  const op = 'monarchProject';
  checkTensor(op, 'dense', dense);
  checkRank(op, 'dense', dense, 2, '[n, n]');
  const [n, cols] = dense.shape;
  if (n !== cols) throw new ShapeError(`${op}: dense must be square [n, n], got ${shapeText(dense.shape)}`, { parameter: 'dense', value: dense.shape });
  let s1 = Math.floor(Math.sqrt(n));
  while (n % s1 !== 0) s1--;
  const s0 = n / s1; // larger factor first
  // w1 (K=s0, Q=s1, P=n/s0), w2 (Lb=s1, S=n/s1, R=s0): dense[s·Lb + l, k·P + p] = w2[l, s, k]·w1[k, l, p].
  const K = s0;
  const Q = s1;
  const P = n / s0;
  const Lb = s1;
  const S = n / s1;
  const m = Float64Array.from(dense.dataSync());
  const w1 = new Float32Array(K * Q * P);
  const w2 = new Float32Array(Lb * S * K);
  const block = new Float64Array(S * P);
  for (let k = 0; k < K; k++) {
    for (let l = 0; l < Lb; l++) {
      for (let s = 0; s < S; s++) for (let p = 0; p < P; p++) block[s * P + p] = m[(s * Lb + l) * n + k * P + p];
      const { u, s: sigma, v } = svd(block, S, P);
      const rank = Math.min(S, P);
      const root = Math.sqrt(sigma[0]);
      for (let s = 0; s < S; s++) w2[(l * S + s) * K + k] = root * u[s * rank];
      for (let p = 0; p < P; p++) w1[(k * Q + l) * P + p] = root * v[p * rank];
    }
  }
  return { w1: tf.tensor3d(w1, [K, Q, P]), w2: tf.tensor3d(w2, [Lb, S, K]) };
}
