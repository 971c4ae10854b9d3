// The DFT engine: runs a {@link DftPlan} forward (natural order → digit-reversed frequencies) and backward (the
// exact adjoint, scaled by 1/N) with real 2-D matMuls, elementwise twiddles and transposes only, so tf.grad works
// on every backend. See dft-plan.ts for the index conventions.
import * as tf from '@tensorflow/tfjs-core';
import type { Tensor, Tensor2D } from '@tensorflow/tfjs-core';
import { dftFactor, twiddles } from './dft-plan.js';
import type { DftPlan, FactorKind } from './dft-plan.js';

/** A complex tensor as two real tensors of the same shape. */
export interface Complex {
  re: Tensor;
  im: Tensor;
}

/**
 * x · W for a constant W, with a backward pass that multiplies by the cached constant Wᵀ (no transposeB: the wasm
 * backend's fast matMul path needs plain 2-D operands).
 */
function constMatMul(x: Tensor2D, w: Tensor2D, wT: Tensor2D): Tensor2D {
  const f = tf.customGrad(((a: Tensor) => ({
    value: tf.matMul(a as Tensor2D, w),
    gradFunc: (dy: Tensor) => tf.matMul(dy as Tensor2D, wT),
  })) as unknown as Parameters<typeof tf.customGrad>[0]);
  return f(x) as Tensor2D;
}

/** Applies a cached DFT factor to x [rows, in] → re (and im) [rows, out]. */
function applyFactor(x: Tensor2D, kind: FactorKind, r: number, rows: number, scale: number): Complex | Tensor2D {
  const w = dftFactor(kind, r, rows, scale);
  const wT = dftFactor(kind, r, rows, scale, true);
  const re = constMatMul(x, w.re, wT.re);
  if (w.im === undefined) return re;
  return { re, im: constMatMul(x, w.im, wT.im as Tensor2D) };
}

/** (re + i·im)·(tr + i·ti), or ·conj when `conjugate`. Shapes broadcast. */
export function complexMul(a: Complex, tr: Tensor, ti: Tensor, conjugate = false): Complex {
  if (conjugate) {
    return { re: tf.add(tf.mul(a.re, tr), tf.mul(a.im, ti)), im: tf.sub(tf.mul(a.im, tr), tf.mul(a.re, ti)) };
  }
  return { re: tf.sub(tf.mul(a.re, tr), tf.mul(a.im, ti)), im: tf.add(tf.mul(a.re, ti), tf.mul(a.im, tr)) };
}

function mapComplex(a: Complex, f: (t: Tensor) => Tensor): Complex {
  return { re: f(a.re), im: f(a.im) };
}

/** Options for {@link forwardDft}. */
export interface ForwardOptions {
  /** The input is real (`im` ignored). */
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
  const input = options.realInput ? { re: x as Tensor, im: undefined } : (x as Complex);
  const rows = input.re.shape[0];
  // Stage 1: contract d_1 (most significant). [rows, D, M_1] → [rows, M_1, D]
  const toLast = (t: Tensor) => (rest === 1 ? tf.reshape(t, [-1, digits]) : tf.reshape(tf.transpose(tf.reshape(t, [rows, digits, rest]), [0, 2, 1]), [-1, digits]));
  let cur: Complex;
  if (options.realInput) {
    cur = applyFactor(toLast(input.re) as Tensor2D, 'real-in', radices[0], digits, 1) as Complex;
  } else {
    const padTo = (t: Tensor) => (digits < radices[0] ? tf.pad(t, [[0, 0], [0, radices[0] - digits]]) : t);
    const xin = tf.concat([padTo(toLast(input.re)), padTo(toLast((input as Complex).im))], 1) as Tensor2D; // [rows·M_1, 2r_1]
    cur = applyFactor(xin, 'complex', radices[0], radices[0], 1) as Complex;
  }
  let outer = rows; // rows · r_1 · … · r_{i−1}
  for (let i = 0; i < p; i++) {
    const r = radices[i];
    if (i > 0) {
      const xin = tf.concat([cur.re, cur.im], 1) as Tensor2D; // [outer·rest, 2r]
      cur = applyFactor(xin, 'complex', r, r, 1) as Complex;
    }
    if (i === p - 1) break;
    // Twiddle ω_{rest·r}^{b·k}: data [outer, rest, r] × [rest, r].
    const tw = twiddles(rest, r);
    cur = complexMul(mapComplex(cur, (t) => tf.reshape(t, [outer, rest, r])), tw.re, tw.im);
    // [outer, d_next, rest', k] → [outer, k, rest', d_next]
    const next = radices[i + 1];
    const restNext = rest / next;
    cur = mapComplex(cur, (t) => tf.reshape(tf.transpose(tf.reshape(t, [outer, next, restNext, r]), [0, 3, 2, 1]), [-1, next]));
    outer *= r;
    rest = restNext;
  }
  return mapComplex(cur, (t) => tf.reshape(t, [rows, n]));
}

/** Options for {@link inverseDft}. */
export interface InverseOptions {
  /** Return only the real part. */
  realOutput: boolean;
  /** Digit values of d_1 to produce: the output has width digits·M_1 (natural order prefix). */
  digits: number;
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
  // rest after stage i (M_i) and outer before stage i.
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
  let cur: Complex = mapComplex(x, (t) => tf.reshape(t, [-1, radices[p - 1]]));
  for (let i = p - 1; i >= 0; i--) {
    const r = radices[i];
    if (i < p - 1) {
      // Undo the transpose: [outer, k, rest', d_next] → [outer, d_next, rest', k]
      const next = radices[i + 1];
      const restNext = rests[i] / next;
      cur = mapComplex(cur, (t) => tf.transpose(tf.reshape(t, [outers[i], r, restNext, next]), [0, 3, 2, 1]));
      const tw = twiddles(rests[i], r);
      cur = complexMul(mapComplex(cur, (t) => tf.reshape(t, [outers[i], rests[i], r])), tw.re, tw.im, true);
      cur = mapComplex(cur, (t) => tf.reshape(t, [-1, r]));
    }
    const xin = tf.concat([cur.re, cur.im], 1) as Tensor2D; // [·, 2r]
    const scale = i === 0 ? 1 / n : 1;
    if (i === 0 && options.realOutput) {
      const y = applyFactor(xin, 'real-out', r, digits, scale) as Tensor2D; // [rows·M_1, D]
      return rests[0] === 1 ? tf.reshape(y, [rows, digits]) : tf.reshape(tf.transpose(tf.reshape(y, [rows, rests[0], digits]), [0, 2, 1]), [rows, -1]);
    }
    cur = applyFactor(xin, 'complex-inv', r, r, scale) as Complex;
  }
  // [rows, M_1, r_1] → natural [rows, r_1, M_1], keep d_1 < digits.
  const back = (t: Tensor) => {
    let y = rests[0] === 1 ? tf.reshape(t, [rows, radices[0]]) : tf.transpose(tf.reshape(t, [rows, rests[0], radices[0]]), [0, 2, 1]);
    if (digits < radices[0]) y = tf.slice(y, [0, 0], [rows, digits]);
    return tf.reshape(y, [rows, -1]);
  };
  return mapComplex(cur, back);
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
