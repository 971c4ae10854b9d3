/**
 * Test helpers and float64 reference implementations for `@monarch-mixer/monarch-core`.
 *
 * Every reference is slow, plain TypeScript over `Float64Array`s, and written straight from the definition
 * (explicit sums), so tests in this and other packages can compare the fast tfjs ops against it.
 *
 * @packageDocumentation
 */
import type { Tensor } from '@tensorflow/tfjs-core';

// Seeded fuzzing helpers (byte and config.json mutators) shared by every package's fuzz suite.
export { FuzzRng, INTERESTING_U32, INTERESTING_U64, mutateBytes, ODD_JSON_VALUES, randomJsonValue, mutateJson, catchOneLineM2Error } from './fuzzing.js';
export type { Mutant } from './fuzzing.js';

/** A float64 array with a shape: what the references take and return. */
export interface Float64Tensor {
  /** Row-major shape. */
  shape: number[];
  /** Values, row-major. */
  data: Float64Array;
}

/** Anything the helpers accept as a tensor: a tfjs tensor, a {@link Float64Tensor}, or `{ shape, data }`. */
export type TensorLike = Tensor | Float64Tensor | { shape: readonly number[]; data: ArrayLike<number> };

function isTfTensor(t: TensorLike): t is Tensor {
  return typeof (t as Tensor).dataSync === 'function';
}

/**
 * Seeded uniform values in [−1, 1) from a 32-bit linear congruential generator: the same numbers on every platform,
 * cheap enough for the large random inputs of backend-vs-backend checks.
 * @param n - How many values.
 * @param seed - Seed (any integer).
 * @returns A new Float32Array of length n.
 * @example
 * seededUniform(3, 7).length; // → 3
 */
export function seededUniform(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

/**
 * Reads any {@link TensorLike} into a float64 copy.
 *
 * Shapes: any → same
 * @param t - The tensor.
 * @returns `{ shape, data }` with float64 data.
 * @example
 * toFloat64(tf.ones([2])).data; // → Float64Array [1, 1]
 */
export function toFloat64(t: TensorLike): Float64Tensor {
  if (isTfTensor(t)) return { shape: [...t.shape], data: Float64Array.from(t.dataSync() as ArrayLike<number>) };
  return { shape: [...t.shape], data: Float64Array.from(t.data) };
}

function size(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/**
 * Relative L2 error ‖actual − expected‖₂ / ‖expected‖₂ (the plain norm of the difference when expected is zero).
 *
 * Shapes: a [...], b [...] with the same number of elements → scalar
 * @param actual - Computed values.
 * @param expected - Reference values.
 * @returns The relative error.
 * @throws Error if the element counts differ.
 * @example
 * relativeL2(tf.tensor([1, 2]), tf.tensor([1, 2])); // → 0
 */
export function relativeL2(actual: TensorLike, expected: TensorLike): number {
  const a = toFloat64(actual).data;
  const e = toFloat64(expected).data;
  if (a.length !== e.length) throw new Error(`relativeL2: ${a.length} values vs ${e.length} expected`);
  let diff = 0;
  let norm = 0;
  for (let i = 0; i < a.length; i++) {
    diff += (a[i] - e[i]) ** 2;
    norm += e[i] ** 2;
  }
  return norm === 0 ? Math.sqrt(diff) : Math.sqrt(diff / norm);
}

/**
 * Throws unless `actual` has `expected`'s shape and a relative L2 error ≤ `tolerance`. Works with any test runner.
 *
 * Shapes: a [...] vs b [...] (same shape)
 * @param actual - Computed values.
 * @param expected - Reference values.
 * @param tolerance - Largest allowed relative L2 error. Default 1e-5.
 * @param label - Names the comparison in the error message.
 * @throws Error naming the label, the shapes or the error found.
 * @example
 * expectTensorsClose(tf.tensor([1, 2]), { shape: [2], data: [1, 2] }); // passes
 */
export function expectTensorsClose(actual: TensorLike, expected: TensorLike, tolerance = 1e-5, label = 'tensor'): void {
  const shapeA = [...actual.shape];
  const shapeE = [...expected.shape];
  if (shapeA.length !== shapeE.length || shapeA.some((d, i) => d !== shapeE[i])) {
    throw new Error(`${label}: shape [${shapeA.join(', ')}] differs from expected [${shapeE.join(', ')}]`);
  }
  const a = toFloat64(actual).data;
  if (a.some((v) => !Number.isFinite(v))) throw new Error(`${label}: contains non-finite values`);
  const err = relativeL2(actual, expected);
  if (!(err <= tolerance)) throw new Error(`${label}: relative L2 error ${err.toExponential(3)} > tolerance ${tolerance}`);
}

/**
 * Central finite-difference gradient of a scalar float64 function.
 *
 * Shapes: x [n] → [n]
 * @param f - The function.
 * @param x - The point (not modified).
 * @param step - The difference step. Default 1e-6.
 * @returns ∂f/∂x at x.
 * @example
 * numericalGradient((v) => v[0] * v[0], Float64Array.of(3)); // → ≈ [6]
 */
export function numericalGradient(f: (x: Float64Array) => number, x: Float64Array, step = 1e-6): Float64Array {
  const g = new Float64Array(x.length);
  const probe = Float64Array.from(x);
  for (let i = 0; i < x.length; i++) {
    probe[i] = x[i] + step;
    const up = f(probe);
    probe[i] = x[i] - step;
    const down = f(probe);
    probe[i] = x[i];
    g[i] = (up - down) / (2 * step);
  }
  return g;
}

/**
 * Float64 reference of `blockDiagMatmul`: y[..., k·bo + j] = Σ_i x[..., k·bi + i]·blocks[k, i, j].
 *
 * Shapes: x [..., nb·bi] × blocks [nb, bi, bo] (tfjs layout) → [..., nb·bo]
 * @param x - Input.
 * @param blocks - Blocks, tfjs layout.
 * @returns The product in float64.
 * @example
 * blockDiagMatmulReference(tf.ones([1, 4]), tf.ones([2, 2, 1])).data; // → [2, 2]
 */
export function blockDiagMatmulReference(x: TensorLike, blocks: TensorLike): Float64Tensor {
  const xs = toFloat64(x);
  const w = toFloat64(blocks);
  const [nb, bi, bo] = w.shape;
  const rows = size(xs.shape) / (nb * bi);
  const out = new Float64Array(rows * nb * bo);
  for (let r = 0; r < rows; r++) {
    for (let k = 0; k < nb; k++) {
      for (let j = 0; j < bo; j++) {
        let acc = 0;
        for (let i = 0; i < bi; i++) acc += xs.data[r * nb * bi + k * bi + i] * w.data[(k * bi + i) * bo + j];
        out[r * nb * bo + k * bo + j] = acc;
      }
    }
  }
  return { shape: [...xs.shape.slice(0, -1), nb * bo], data: out };
}

/**
 * Float64 reference of `blockdiagLinear`: zero-pad, block-diagonal product, truncate, add bias.
 *
 * Shapes: x [..., in] × weight [nb, bi, bo] → [..., outFeatures]
 * @param x - Input.
 * @param weight - Blocks, tfjs layout.
 * @param outFeatures - Output width.
 * @param bias - Optional bias [outFeatures].
 * @returns The output in float64.
 * @example
 * blockdiagLinearReference(tf.ones([1, 3]), tf.ones([2, 2, 1]), 2).data; // → [2, 1]
 */
export function blockdiagLinearReference(x: TensorLike, weight: TensorLike, outFeatures: number, bias?: TensorLike): Float64Tensor {
  const xs = toFloat64(x);
  const w = toFloat64(weight);
  const [nb, bi, bo] = w.shape;
  const inFeatures = xs.shape[xs.shape.length - 1];
  const rows = size(xs.shape) / inFeatures;
  const padded = new Float64Array(rows * nb * bi);
  for (let r = 0; r < rows; r++) padded.set(xs.data.subarray(r * inFeatures, (r + 1) * inFeatures), r * nb * bi);
  const full = blockDiagMatmulReference({ shape: [rows, nb * bi], data: padded }, w);
  const b = bias === undefined ? undefined : toFloat64(bias).data;
  const out = new Float64Array(rows * outFeatures);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < outFeatures; j++) out[r * outFeatures + j] = full.data[r * nb * bo + j] + (b ? b[j] : 0);
  }
  return { shape: [...xs.shape.slice(0, -1), outFeatures], data: out };
}

/**
 * Float64 reference of the original order-2 Monarch multiply (`blockdiag_butterfly_multiply_reference`), torch layouts:
 * out1[b, k, q] = Σ_p w1[k, q, p]·x[b, k·P + p]; i = k·Q + q is re-read as i = r·Lb + l;
 * y[b, s·Lb + l] = Σ_r w2[l, s, r]·out1[b, r·Lb + l].
 *
 * Shapes: x [..., K·P] × w1 (K, Q, P) × w2 (Lb, S, R), Lb·R = K·Q → [..., Lb·S]
 * @param x - Input.
 * @param w1 - First factor (block, out, in).
 * @param w2 - Second factor (block, out, in).
 * @returns y in float64.
 * @example
 * monarchMatmulReference(tf.ones([1, 4]), tf.ones([2, 2, 2]), tf.ones([2, 2, 2])).data; // → [8, 8, 8, 8]
 */
export function monarchMatmulReference(x: TensorLike, w1: TensorLike, w2: TensorLike): Float64Tensor {
  const xs = toFloat64(x);
  const a = toFloat64(w1);
  const c = toFloat64(w2);
  const [K, Q, P] = a.shape;
  const [Lb, S, R] = c.shape;
  const rows = size(xs.shape) / (K * P);
  const out = new Float64Array(rows * Lb * S);
  const mid = new Float64Array(K * Q);
  for (let b = 0; b < rows; b++) {
    for (let k = 0; k < K; k++) {
      for (let q = 0; q < Q; q++) {
        let acc = 0;
        for (let p = 0; p < P; p++) acc += a.data[(k * Q + q) * P + p] * xs.data[b * K * P + k * P + p];
        mid[k * Q + q] = acc;
      }
    }
    for (let l = 0; l < Lb; l++) {
      for (let s = 0; s < S; s++) {
        let acc = 0;
        for (let r = 0; r < R; r++) acc += c.data[(l * S + s) * R + r] * mid[r * Lb + l];
        out[b * Lb * S + s * Lb + l] = acc;
      }
    }
  }
  return { shape: [...xs.shape.slice(0, -1), Lb * S], data: out };
}

/**
 * Float64 reference of `monarchMatmulOrderP`. View x's last dim as digits of shape [b_{p−1}, …, b_1, b_0]
 * (row-major, b_i = the block size of factor i). Factor i (torch layout (N/b_i, out b_i, in b_i)) mixes the
 * digit of size b_i: it is applied to the last axis, block index = the other digits in order, and the mixed
 * digit is then moved to the front. After all p factors the digits are back in their original order.
 *
 * Shapes: x [..., N] × factors[i] (N/b_i, b_i, b_i), N = ∏ b_i → [..., N]
 * @param x - Input.
 * @param factors - The block-diagonal factors, applied first to last.
 * @returns y in float64.
 * @example
 * monarchMatmulOrderPReference(tf.ones([1, 4]), [eye2x2x2, eye2x2x2]).data; // → [1, 1, 1, 1]
 */
export function monarchMatmulOrderPReference(x: TensorLike, factors: TensorLike[]): Float64Tensor {
  const xs = toFloat64(x);
  const n = xs.shape[xs.shape.length - 1];
  const rows = size(xs.shape) / n;
  let cur = Float64Array.from(xs.data);
  for (const factor of factors) {
    const f = toFloat64(factor);
    const [nb, b] = f.shape;
    const next = new Float64Array(cur.length);
    for (let row = 0; row < rows; row++) {
      for (let blk = 0; blk < nb; blk++) {
        for (let o = 0; o < b; o++) {
          let acc = 0;
          for (let i = 0; i < b; i++) acc += f.data[(blk * b + o) * b + i] * cur[row * n + blk * b + i];
          // Mixed digit o moves to the front: flat index o·nb + blk.
          next[row * n + o * nb + blk] = acc;
        }
      }
    }
    cur = next;
  }
  return { shape: [...xs.shape], data: cur };
}

/**
 * Float64 reference DFT by direct sums: forward X[k] = Σ_n x[n]·e^{−2πikn/N}; inverse (1/N)·Σ_k X[k]·e^{+2πikn/N}.
 *
 * Shapes: re [..., N], im [..., N] → { re [..., N], im [..., N] }
 * @param re - Real part.
 * @param im - Imaginary part (zeros when omitted).
 * @param inverse - Inverse transform (with 1/N). Default false.
 * @returns The transform.
 * @example
 * dftReference(tf.tensor([1, 0])).re.data; // → [1, 1]
 */
export function dftReference(re: TensorLike, im?: TensorLike, inverse = false): { re: Float64Tensor; im: Float64Tensor } {
  const r = toFloat64(re);
  const i = im === undefined ? { shape: r.shape, data: new Float64Array(r.data.length) } : toFloat64(im);
  const n = r.shape[r.shape.length - 1];
  const rows = r.data.length / n;
  const outRe = new Float64Array(r.data.length);
  const outIm = new Float64Array(r.data.length);
  const sign = inverse ? 1 : -1;
  const scale = inverse ? 1 / n : 1;
  const cos = new Float64Array(n);
  const sin = new Float64Array(n);
  for (let t = 0; t < n; t++) {
    cos[t] = Math.cos((2 * Math.PI * t) / n);
    sin[t] = Math.sin((2 * Math.PI * t) / n);
  }
  for (let row = 0; row < rows; row++) {
    for (let k = 0; k < n; k++) {
      let accRe = 0;
      let accIm = 0;
      for (let t = 0; t < n; t++) {
        const idx = (k * t) % n;
        const c = cos[idx];
        const s = sign * sin[idx];
        const xr = r.data[row * n + t];
        const xi = i.data[row * n + t];
        accRe += xr * c - xi * s;
        accIm += xr * s + xi * c;
      }
      outRe[row * n + k] = accRe * scale;
      outIm[row * n + k] = accIm * scale;
    }
  }
  return { re: { shape: [...r.shape], data: outRe }, im: { shape: [...r.shape], data: outIm } };
}

/**
 * Float64 reference of `fftConv` by direct sums: the 2L circular convolution of u with the kernel, first L
 * outputs, plus D⊙u: y[b,c,n] = Σ_{m<L} K[c, (n−m) mod 2L]·u[b,c,m] + D[c]·u[b,c,n] (K zero beyond its length).
 *
 * Shapes: u [B, C, L], kernel [C, Lk ≤ 2L], skip [C] → [B, C, L]
 * @param u - Input.
 * @param kernel - Kernel.
 * @param skip - Optional D.
 * @returns y in float64.
 * @example
 * longConvReference(tf.ones([1, 1, 2]), tf.tensor([[1, 1]])).data; // → [1, 2]
 */
export function longConvReference(u: TensorLike, kernel: TensorLike, skip?: TensorLike): Float64Tensor {
  const us = toFloat64(u);
  const k = toFloat64(kernel);
  const d = skip === undefined ? undefined : toFloat64(skip).data;
  const [B, C, L] = us.shape;
  const Lk = k.shape[1];
  const out = new Float64Array(B * C * L);
  for (let b = 0; b < B; b++) {
    for (let c = 0; c < C; c++) {
      const base = (b * C + c) * L;
      for (let n = 0; n < L; n++) {
        let acc = d ? d[c] * us.data[base + n] : 0;
        for (let m = 0; m < L; m++) {
          const lag = (n - m + 2 * L) % (2 * L);
          if (lag < Lk) acc += k.data[c * Lk + lag] * us.data[base + m];
        }
        out[base + n] = acc;
      }
    }
  }
  return { shape: [B, C, L], data: out };
}

/**
 * Float64 reference of `causalConv`: y[b,c,n] = Σ_{m≤n} kf[c, n−m]·u[b,c,m] + D[c]·u[b,c,n].
 *
 * Shapes: u [B, C, L], kf [C, L], skip [C] → [B, C, L]
 * @param u - Input.
 * @param kf - Causal kernel.
 * @param skip - Optional D.
 * @returns y in float64.
 * @example
 * causalConvReference(tf.ones([1, 1, 2]), tf.tensor([[1, 1]])).data; // → [1, 2]
 */
export function causalConvReference(u: TensorLike, kf: TensorLike, skip?: TensorLike): Float64Tensor {
  return longConvReference(u, kf, skip);
}

/**
 * Float64 reference of `bidirectionalConv` (M2-BERT, m2-architecture.md §1.6):
 * y[b,c,n] = Σ_{m≤n} kf[c, n−m]·u[b,c,m] + Σ_{m>n} kr[c, m−n−1]·u[b,c,m] + D[c]·u[b,c,n].
 *
 * Shapes: u [B, C, L], kf [C, L], kr [C, L], skip [C] → [B, C, L]
 * @param u - Input.
 * @param kf - Forward kernel.
 * @param kr - Reverse kernel (kr[0] multiplies the next token).
 * @param skip - Optional D.
 * @returns y in float64.
 * @example
 * bidirectionalConvReference(tf.ones([1, 1, 2]), tf.tensor([[1, 0]]), tf.tensor([[1, 0]])).data; // → [2, 1]
 */
export function bidirectionalConvReference(u: TensorLike, kf: TensorLike, kr: TensorLike, skip?: TensorLike): Float64Tensor {
  const us = toFloat64(u);
  const f = toFloat64(kf);
  const r = toFloat64(kr);
  const d = skip === undefined ? undefined : toFloat64(skip).data;
  const [B, C, L] = us.shape;
  const Lf = f.shape[1];
  const Lr = r.shape[1];
  const out = new Float64Array(B * C * L);
  for (let b = 0; b < B; b++) {
    for (let c = 0; c < C; c++) {
      const base = (b * C + c) * L;
      for (let n = 0; n < L; n++) {
        let acc = d ? d[c] * us.data[base + n] : 0;
        for (let m = 0; m <= n; m++) if (n - m < Lf) acc += f.data[c * Lf + n - m] * us.data[base + m];
        for (let m = n + 1; m < L; m++) if (m - n - 1 < Lr) acc += r.data[c * Lr + m - n - 1] * us.data[base + m];
        out[base + n] = acc;
      }
    }
  }
  return { shape: [B, C, L], data: out };
}

/**
 * The error function in float64 (|error| ≲ 1e-15), for references of GELU and Erf kernels: its Maclaurin series
 * below |x| = 2.5, the continued fraction of erfc above.
 *
 * @param x - Any number.
 * @returns erf(x).
 * @example
 * erf64(1); // → 0.8427007929497149
 */
export function erf64(x: number): number {
  const z = Math.abs(x);
  if (z < 2.5) {
    // erf z = 2/√π · Σ (−1)^n z^(2n+1) / (n! (2n+1)); the largest term is e^(z²) ≈ 500 at most here.
    let term = z;
    let sum = z;
    for (let n = 1; n < 200 && Math.abs(term) > 1e-17 * sum; n++) {
      term *= (-z * z) / n;
      sum += term / (2 * n + 1);
    }
    return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * sum;
  }
  // erfc z = e^(−z²)/√π · 1/(z + (1/2)/(z + 1/(z + (3/2)/(z + …)))), evaluated from the tail.
  let fraction = z;
  for (let n = 120; n >= 1; n--) fraction = z + n / 2 / fraction;
  return Math.sign(x) * (1 - Math.exp(-z * z) / (Math.sqrt(Math.PI) * fraction));
}
