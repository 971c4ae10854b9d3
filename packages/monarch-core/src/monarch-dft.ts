// The DFT engine: runs a {@link DftPlan} forward (natural order → digit-reversed frequencies) and backward (the
// exact adjoint, scaled by 1/N) with real 2-D matMuls (constant on the B side), elementwise twiddles and
// transposes only. See dft-plan.ts for the index conventions.
//
// The engine is meant to run inside a tf.customGrad op (fft-conv.ts, dft.ts) whose gradient is another engine call
// (the adjoint of a DFT is a DFT), so nothing here is recorded on the gradient tape and every stage's temporaries
// are freed as soon as the next stage exists: memory stays at a few transform-sized tensors even at L = 16384.
//
// Complex values are kept as separate re / im tensors: a complex product is four real matMuls and two adds, because
// concatenating [re | im] along the last axis is ~100× slower than an add on the wasm backend.
import * as tf from '@tensorflow/tfjs-core';
import type { Tensor, Tensor2D } from '@tensorflow/tfjs-core';
import { dftMatrix, twiddles } from './dft-plan.js';
import type { DftPlan, FactorPart } from './dft-plan.js';
import { TWIDDLE_TRANSPOSE } from './backends/wasm-math-kernels.js';

/** A complex tensor as two real tensors of the same shape. */
export type Complex = {
  re: Tensor;
  im: Tensor;
};

/** x · W for a cached constant DFT matrix W (2-D, constant on the B side: wasm's fast matMul path). */
function constMatMul(x: Tensor, part: FactorPart, r: number, rows: number, cols: number, scale: number): Tensor {
  return tf.matMul(x as Tensor2D, dftMatrix(part, r, rows, cols, scale));
}

/** Runs one stage in its own tidy and frees the previous stage's tensors (unless they are the caller's input). */
function stage<T extends Complex | Tensor>(previous: Complex | Tensor, owned: boolean, f: () => T): T {
  const next = tf.tidy(f as unknown as () => tf.TensorContainer) as unknown as T;
  if (owned) tf.dispose(previous as Complex);
  return next;
}

/** Forward DFT factor on real input digits d < D: [·, D] → complex [·, r]. */
function forwardReal(x: Tensor, r: number, digits: number): Complex {
  return { re: constMatMul(x, 'cos', r, digits, r, 1), im: constMatMul(x, 'negsin', r, digits, r, 1) };
}

/** Forward DFT factor (c − i·s) on complex input digits d < D: [·, D] → [·, r]. Each part in its own tidy (one temporary pair at a time). */
function forwardComplex(x: Complex, r: number, digits: number): Complex {
  return {
    re: tf.tidy(() => tf.add(constMatMul(x.re, 'cos', r, digits, r, 1), constMatMul(x.im, 'sin', r, digits, r, 1))),
    im: tf.tidy(() => tf.add(constMatMul(x.re, 'negsin', r, digits, r, 1), constMatMul(x.im, 'cos', r, digits, r, 1))),
  };
}

/** Inverse DFT factor (c + i·s)·scale: complex [·, r] → complex [·, r]. */
function inverseComplex(x: Complex, r: number, scale: number, digits = r): Complex {
  return {
    re: tf.tidy(() => tf.add(constMatMul(x.re, 'cos', r, r, digits, scale), constMatMul(x.im, 'negsin', r, r, digits, scale))),
    im: tf.tidy(() => tf.add(constMatMul(x.re, 'sin', r, r, digits, scale), constMatMul(x.im, 'cos', r, r, digits, scale))),
  };
}

/** Real part of the inverse DFT factor for output digits d < D: complex [·, r] → real [·, D]. */
function inverseReal(x: Complex, r: number, digits: number, scale: number): Tensor {
  return tf.add(constMatMul(x.re, 'cos', r, r, digits, scale), constMatMul(x.im, 'negsin', r, r, digits, scale));
}

/** (re + i·im)·(tr + i·ti), or ·conj(t) when `conjugate`. Shapes broadcast. */
export function complexMul(a: Complex, tr: Tensor, ti: Tensor, conjugate = false): Complex {
  if (conjugate) {
    return { re: tf.add(tf.mul(a.re, tr), tf.mul(a.im, ti)), im: tf.sub(tf.mul(a.im, tr), tf.mul(a.re, ti)) };
  }
  return { re: tf.sub(tf.mul(a.re, tr), tf.mul(a.im, ti)), im: tf.add(tf.mul(a.re, ti), tf.mul(a.im, tr)) };
}

function mapComplex(a: Complex, f: (t: Tensor) => Tensor): Complex {
  return { re: f(a.re), im: f(a.im) };
}

/**
 * A twiddle stage's data movement with a small live set: a ⊙ t (or ⊙ conj t) part by part, then `after` on each
 * part, each step in its own tidy; `a` is disposed once multiplied when `owned` (tensors the caller handed over).
 */
function twiddleThen(a: Complex, tr: Tensor, ti: Tensor, conjugate: boolean, owned: boolean, after: (t: Tensor) => Tensor): Complex {
  const re = tf.tidy(() => (conjugate ? tf.add(tf.mul(a.re, tr), tf.mul(a.im, ti)) : tf.sub(tf.mul(a.re, tr), tf.mul(a.im, ti))));
  const im = tf.tidy(() => (conjugate ? tf.sub(tf.mul(a.im, tr), tf.mul(a.re, ti)) : tf.add(tf.mul(a.re, ti), tf.mul(a.im, tr))));
  if (owned) tf.dispose([a.re, a.im]);
  const outRe = tf.tidy(() => after(re));
  re.dispose();
  const outIm = tf.tidy(() => after(im));
  im.dispose();
  return { re: outRe, im: outIm };
}

/** Whether the wasm backend's fused twiddle-and-transpose kernel runs the stages (backends/wasm-math-kernels.ts). */
function fusedTwiddles(): boolean {
  return tf.getBackend() === 'wasm' && tf.getKernel(TWIDDLE_TRANSPOSE, 'wasm') !== undefined;
}

/**
 * A stage's twiddle product and digit transpose as one kernel pass: forward x [O, A, B, R] → [O, R, B, A] times
 * t[a, b, k]; inverse x [O, R, B, A] → [O, A, B, R] times conj t[a, b, k]. Output reshaped to `shape`.
 */
function fusedTwiddleTranspose(x: Complex, t: { re: Tensor; im: Tensor }, a: number, b: number, r: number, inverse: boolean, shape: number[]): Complex {
  const [re, im] = tf.engine().runKernel(TWIDDLE_TRANSPOSE, { xRe: x.re, xIm: x.im, tRe: t.re, tIm: t.im }, { a, b, r, inverse } as unknown as tf.NamedAttrMap) as Tensor[];
  return { re: tf.reshape(re!, shape), im: tf.reshape(im!, shape) };
}

/** Options for {@link forwardDft}. */
export interface ForwardOptions {
  /** The input is real (a single tensor). */
  realInput: boolean;
  /** Digit values of d_1 present in the input (the rest are zero): the input has width digits·M_1. */
  digits: number;
}

/**
 * Forward DFT of rows: x [rows, digits·M_1] (natural order, zero beyond) → X [rows, N] digit-reversed.
 */
export function forwardDft(x: Complex | Tensor, plan: DftPlan, options: ForwardOptions): Complex {
  const { radices, n } = plan;
  const p = radices.length;
  const { digits } = options;
  let rest = n / radices[0]; // M_1
  const first = options.realInput ? (x as Tensor) : (x as Complex).re;
  const rows = first.shape[0];
  // Stage 1 contracts d_1, the most significant digit: [rows, D, M_1] → [rows·M_1, D]
  const toLast = (t: Tensor) => (rest === 1 ? tf.reshape(t, [-1, digits]) : tf.reshape(tf.transpose(tf.reshape(t, [rows, digits, rest]), [0, 2, 1]), [-1, digits]));
  let cur: Complex = tf.tidy(() =>
    options.realInput ? forwardReal(toLast(x as Tensor), radices[0], digits) : forwardComplex(mapComplex(x as Complex, toLast), radices[0], digits),
  );
  let outer = rows; // rows · r_1 · … · r_{i−1}
  for (let i = 0; i < p; i++) {
    const r = radices[i];
    if (i > 0) cur = stage(cur, true, () => forwardComplex(cur, r, r)); // [outer·rest, r]
    if (i === p - 1) break;
    const next = radices[i + 1];
    const restNext = rest / next;
    const [o, m] = [outer, rest];
    cur = stage(cur, true, () => {
      // Twiddle ω_{rest·r}^{b·k}: data [outer, rest·r] × [rest·r], then [outer, d_next, rest', k] → [outer, k, rest', d_next].
      const tw = twiddles(m, r);
      if (fusedTwiddles()) return fusedTwiddleTranspose(cur, tw, next, restNext, r, false, [-1, next]);
      const flat = mapComplex(cur, (t) => tf.reshape(t, [o, m * r]));
      tf.dispose([cur.re, cur.im]); // the reshaped views keep the data until twiddleThen frees them
      return twiddleThen(flat, tw.re, tw.im, false, true, (t) => tf.reshape(tf.transpose(tf.reshape(t, [o, next, restNext, r]), [0, 3, 2, 1]), [-1, next]));
    });
    outer *= r;
    rest = restNext;
  }
  return stage(cur, true, () => mapComplex(cur, (t) => tf.reshape(t, [rows, n])));
}

/** Options for {@link inverseDft}. */
export interface InverseOptions {
  /** Return only the real part. */
  realOutput: boolean;
  /** Digit values of d_1 to produce: the output has width digits·M_1 (natural order prefix). */
  digits: number;
  /** Overall scale. Default 1/N (the inverse DFT); 1 gives the plain adjoint of {@link forwardDft}. */
  scale?: number;
  /** Dispose the input as soon as the first stage has used it (the caller no longer needs it). Default false. */
  consume?: boolean;
}

/**
 * Inverse DFT (1/N) of digit-reversed rows X [rows, N] → x [rows, digits·M_1] in natural order (real part only
 * when `realOutput`). It is the adjoint of {@link forwardDft} scaled by 1/N.
 */
export function inverseDft(x: Complex, plan: DftPlan, options: InverseOptions): Complex | Tensor {
  const { radices, n } = plan;
  const p = radices.length;
  const rows = x.re.shape[0];
  const { digits } = options;
  // rests[i] = M_{i+1} (digits after stage i), outers[i] = rows·r_1·…·r_i (rows before stage i).
  const rests: number[] = [];
  const outers: number[] = [];
  let rest = n;
  let outer = rows;
  for (let i = 0; i < p; i++) {
    rest /= radices[i];
    rests.push(rest);
    outers.push(outer);
    outer *= radices[i];
  }
  const total = options.scale ?? 1 / n;
  let cur: Complex = mapComplex(x, (t) => tf.reshape(t, [-1, radices[p - 1]]));
  let owned = options.consume === true;
  if (owned) tf.dispose([x.re, x.im]); // the reshaped views keep the data until the first stage frees them
  for (let i = p - 1; i >= 0; i--) {
    const r = radices[i];
    if (i < p - 1) {
      const next = radices[i + 1];
      const restNext = rests[i] / next;
      cur = stage(cur, owned, () => {
        // Undo the transpose: [outer, k, rest', d_next] → [outer, d_next, rest', k], then the conjugate twiddle.
        if (fusedTwiddles()) return fusedTwiddleTranspose(cur, twiddles(rests[i], r), next, restNext, r, true, [-1, r]);
        const back = (t: Tensor) => tf.reshape(tf.transpose(tf.reshape(t, [outers[i], r, restNext, next]), [0, 3, 2, 1]), [outers[i], rests[i] * r]);
        const re = tf.tidy(() => back(cur.re));
        if (owned) cur.re.dispose();
        const im = tf.tidy(() => back(cur.im));
        if (owned) cur.im.dispose();
        const tw = twiddles(rests[i], r);
        return twiddleThen({ re, im }, tw.re, tw.im, true, true, (t) => tf.reshape(t, [-1, r]));
      });
      owned = true;
    }
    const scale = i === 0 ? total : 1;
    if (i === 0 && options.realOutput) {
      return stage(cur, owned, () => {
        const y = inverseReal(cur, r, digits, scale); // [rows·M_1, D]
        return rests[0] === 1 ? tf.reshape(y, [rows, digits]) : tf.reshape(tf.transpose(tf.reshape(y, [rows, rests[0], digits]), [0, 2, 1]), [rows, -1]);
      });
    }
    cur = stage(cur, owned, () => inverseComplex(cur, r, scale, i === 0 ? digits : r));
    owned = true;
  }
  // [rows, M_1, D] → natural [rows, D, M_1] (only d_1 < D was produced).
  const back = (t: Tensor) => {
    const y = rests[0] === 1 ? tf.reshape(t, [rows, digits]) : tf.transpose(tf.reshape(t, [rows, rests[0], digits]), [0, 2, 1]);
    return tf.reshape(y, [rows, -1]);
  };
  return stage(cur, owned, () => mapComplex(cur, back));
}

/** Permutes digit-reversed frequencies [rows, N] (layout k_1, …, k_p) to natural order, or back (`inverse`). */
export function digitReverse(x: Complex, plan: DftPlan, inverse = false): Complex {
  const { radices, n } = plan;
  const p = radices.length;
  if (p === 1) return x;
  const rows = x.re.shape[0];
  const reversed = [...radices].reverse();
  const perm = [0, ...Array.from({ length: p }, (_, i) => p - i)];
  const shape = inverse ? [rows, ...reversed] : [rows, ...radices];
  return mapComplex(x, (t) => tf.reshape(tf.transpose(tf.reshape(t, shape), perm), [rows, n]));
}
