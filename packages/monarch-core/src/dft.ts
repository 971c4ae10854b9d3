// The DFT as a Monarch product (m2-architecture.md §1.5), public API. Complex values travel as [re, im] pairs of
// real tensors; everything is real matMuls. Each transform is one tf.customGrad op whose gradient is the adjoint
// transform (also a Monarch DFT), so gradients work on every backend (tf.spectral has none).
import * as tf from '@tensorflow/tfjs-core';
import type { Tensor } from '@tensorflow/tfjs-core';
import { dftPlan } from './dft-plan.js';
import { ShapeError } from './errors.js';
import type { DftPlan } from './dft-plan.js';
import { digitReverse, forwardDft, inverseDft } from './monarch-dft.js';
import type { Complex } from './monarch-dft.js';
import { checkPositiveInt, checkRank, checkTensor, shapeText } from './validate.js';


/** Natural-order forward DFT of complex rows [rows, N] (not taped). */
function naturalForward(x: Complex, plan: DftPlan): Complex {
  return digitReverse(forwardDft(x, plan, { realInput: false, digits: plan.radices[0] }), plan);
}

/** Natural-order inverse DFT of complex rows [rows, N] times `scale`·N (scale 1/N = ifft; 1 = adjoint of fft). */
function naturalInverse(x: Complex, plan: DftPlan, scale: number): Complex {
  return inverseDft(digitReverse(x, plan, true), plan, { realOutput: false, digits: plan.radices[0], scale }) as Complex;
}

/** Splits a customGrad op's stacked [2, ...] output into [re, im] (taped, differentiable). */
function unstackPair(stacked: Tensor, shape: number[]): [Tensor, Tensor] {
  const [re, im] = tf.unstack(stacked);
  return [tf.reshape(re, shape), tf.reshape(im, shape)];
}

type CustomOp = Parameters<typeof tf.customGrad>[0];

/** A complex DFT (forward or inverse) on rows as one differentiable op; output stacked [2, rows, N]. */
function complexTransform(re: Tensor, im: Tensor, plan: DftPlan, inverse: boolean): Tensor {
  const n = plan.n;
  const op = tf.customGrad(((a: Tensor, b: Tensor) => {
    const value = tf.tidy(() => {
      const out = inverse ? naturalInverse({ re: a, im: b }, plan, 1 / n) : naturalForward({ re: a, im: b }, plan);
      return tf.stack([out.re, out.im]);
    });
    return {
      value,
      gradFunc: (dy: Tensor) => {
        const [dr, di] = tf.unstack(dy);
        // Adjoint of F is N·F⁻¹; adjoint of F⁻¹ = F/N.
        const g = inverse ? naturalForward({ re: dr, im: di }, plan) : naturalInverse({ re: dr, im: di }, plan, 1);
        return inverse ? [tf.div(g.re, n), tf.div(g.im, n)] : [g.re, g.im];
      },
    };
  }) as unknown as CustomOp);
  return op(re, im) as Tensor;
}

function checkPair(op: string, re: Tensor, im: Tensor): void {
  checkTensor(op, 're', re);
  checkTensor(op, 'im', im);
  checkRank(op, 're', re, { min: 1 });
  if (re.shape.length !== im.shape.length || re.shape.some((d, i) => d !== im.shape[i])) {
    throw new ShapeError(`${op}: im must have re's shape ${shapeText(re.shape)}, got ${shapeText(im.shape)}`, { parameter: 'im', value: im.shape });
  }
  if (re.shape[re.rank - 1] === 0) throw new ShapeError(`${op}: re last dim must be ≥ 1, got 0`, { parameter: 're', value: re.shape });
}

/**
 * Complex DFT along the last axis, X[k] = Σ_n x[n]·e^{−2πikn/N} (no scaling, like numpy), computed as a mixed-radix
 * Monarch product of small dense DFT factors and twiddles (any N whose prime factors are ≤ 2048).
 *
 * Shapes: re [..., N], im [..., N] → [re [..., N], im [..., N]]
 * @param re - Real part.
 * @param im - Imaginary part.
 * @returns [re, im] of the transform.
 * @throws ShapeError if re and im differ in shape; InvalidArgumentError if N has a prime factor > 2048.
 * @see arXiv:2310.12109 (Monarch Mixer) §3; m2-architecture.md §1.5.
 * @example
 * const [re, im] = fft(tf.tensor2d([[1, 0, 0, 0]]), tf.zeros([1, 4])); // re → [[1, 1, 1, 1]]
 */
export function fft(re: Tensor, im: Tensor): [Tensor, Tensor] {
  checkPair('fft', re, im);
  const n = re.shape[re.rank - 1];
  const plan = dftPlan('fft', n);
  return tf.tidy(() => unstackPair(complexTransform(tf.reshape(re, [-1, n]), tf.reshape(im, [-1, n]), plan, false), re.shape));
}

/**
 * Inverse complex DFT along the last axis, x[n] = (1/N)·Σ_k X[k]·e^{+2πikn/N} (numpy's scaling).
 *
 * Shapes: re [..., N], im [..., N] → [re [..., N], im [..., N]]
 * @param re - Real part of the spectrum.
 * @param im - Imaginary part of the spectrum.
 * @returns [re, im] of the signal.
 * @throws ShapeError if re and im differ in shape; InvalidArgumentError if N has a prime factor > 2048.
 * @example
 * const [re] = ifft(tf.ones([1, 4]), tf.zeros([1, 4])); // re → [[1, 0, 0, 0]]
 */
export function ifft(re: Tensor, im: Tensor): [Tensor, Tensor] {
  checkPair('ifft', re, im);
  const n = re.shape[re.rank - 1];
  const plan = dftPlan('ifft', n);
  return tf.tidy(() => unstackPair(complexTransform(tf.reshape(re, [-1, n]), tf.reshape(im, [-1, n]), plan, true), re.shape));
}

/**
 * Real-input DFT along the last axis, keeping the N/2 + 1 non-negative frequencies (numpy `rfft`). The input is
 * zero-padded or truncated to `n`.
 *
 * Shapes: x [..., L] → [re [..., n/2 + 1], im [..., n/2 + 1]]
 * @param x - Real signal.
 * @param n - Transform size. Default L.
 * @returns [re, im] of bins 0..⌊n/2⌋.
 * @throws InvalidArgumentError if n is not a positive integer or has a prime factor > 2048.
 * @example
 * const [re, im] = rfft(tf.tensor2d([[1, 2, 3, 4]])); // re → [[10, -2, -2]], im → [[0, 2, 0]]
 */
export function rfft(x: Tensor, n?: number): [Tensor, Tensor] {
  checkTensor('rfft', 'x', x);
  checkRank('rfft', 'x', x, { min: 1 });
  const length = x.shape[x.rank - 1];
  const size = n ?? length;
  checkPositiveInt('rfft', 'n', size);
  const plan = dftPlan('rfft', size);
  const lead = x.shape.slice(0, -1);
  const bins = Math.floor(size / 2) + 1;
  const kept = Math.min(length, size);
  const rest = size / plan.radices[0];
  const digits = Math.ceil(kept / rest); // only the leading digits of d_1 that hold data are multiplied
  const op = tf.customGrad(((rows: Tensor) => {
    const value = tf.tidy(() => {
      let r = length > size ? tf.slice(rows, [0, 0], [-1, size]) : rows;
      if (digits * rest > kept) r = tf.pad(r, [[0, 0], [0, digits * rest - kept]]);
      const out = digitReverse(forwardDft(r, plan, { realInput: true, digits }), plan);
      return tf.stack([tf.slice(out.re, [0, 0], [-1, bins]), tf.slice(out.im, [0, 0], [-1, bins])]);
    });
    return {
      value,
      gradFunc: (dy: Tensor) => {
        // Adjoint: zero-fill the dropped bins, real part of the unscaled inverse, undo the padding / truncation.
        const [dr, di] = tf.unstack(dy).map((t) => tf.pad(t, [[0, 0], [0, size - bins]]));
        let dx = inverseDft(digitReverse({ re: dr, im: di }, plan, true), plan, { realOutput: true, digits, scale: 1 }) as Tensor;
        if (digits * rest > kept) dx = tf.slice(dx, [0, 0], [-1, kept]);
        return length > kept ? tf.pad(dx, [[0, 0], [0, length - kept]]) : dx;
      },
    };
  }) as unknown as CustomOp);
  return tf.tidy(() => {
    const [re, im] = unstackPair(op(tf.reshape(x, [-1, length])) as Tensor, [...lead, bins]);
    return [re, im];
  });
}

/**
 * Inverse of {@link rfft}: the real signal of length n whose spectrum has the given non-negative frequencies
 * (Hermitian symmetry fills the rest; like numpy, the imaginary parts of bin 0 and of bin n/2 are ignored).
 *
 * Shapes: re [..., n/2 + 1], im [..., n/2 + 1] → [..., n]
 * @param re - Real part of bins 0..⌊n/2⌋.
 * @param im - Imaginary part.
 * @param n - Output length.
 * @returns The real signal.
 * @throws ShapeError if re/im do not have ⌊n/2⌋ + 1 bins; InvalidArgumentError for a bad n.
 * @example
 * irfft(tf.tensor2d([[10, -2, -2]]), tf.tensor2d([[0, 2, 0]]), 4); // → [[1, 2, 3, 4]]
 */
export function irfft(re: Tensor, im: Tensor, n: number): Tensor {
  checkPair('irfft', re, im);
  checkPositiveInt('irfft', 'n', n);
  const bins = Math.floor(n / 2) + 1;
  if (re.shape[re.rank - 1] !== bins) {
    throw new ShapeError(`irfft: re last dim must be ${bins} (n/2 + 1 for n = ${n}), got ${re.shape[re.rank - 1]}`, { parameter: 're', value: re.shape });
  }
  const plan = dftPlan('irfft', n);
  const lead = re.shape.slice(0, -1);
  return tf.tidy(() => {
    const r = tf.reshape(re, [-1, bins]);
    const i = tf.reshape(im, [-1, bins]);
    const mirrored = n - bins; // bins n/2+1 … n−1 = conj of bins ⌈n/2⌉−1 … 1
    let fullRe = r;
    let fullIm = i;
    if (mirrored > 0) {
      const tailRe = tf.reverse(tf.slice(r, [0, 1], [-1, mirrored]), 1);
      const tailIm = tf.neg(tf.reverse(tf.slice(i, [0, 1], [-1, mirrored]), 1));
      fullRe = tf.concat([r, tailRe], 1);
      fullIm = tf.concat([i, tailIm], 1);
    }
    const realInverse = tf.customGrad(((a: Tensor, b: Tensor) => ({
      value: tf.tidy(() => inverseDft(digitReverse({ re: a, im: b }, plan, true), plan, { realOutput: true, digits: plan.radices[0] }) as Tensor),
      gradFunc: (dy: Tensor) => {
        // Adjoint of Re(F⁻¹·z) is F·dy / N.
        const g = digitReverse(forwardDft(dy, plan, { realInput: true, digits: plan.radices[0] }), plan);
        return [tf.div(g.re, n), tf.div(g.im, n)];
      },
    })) as unknown as CustomOp);
    return tf.reshape(realInverse(fullRe, fullIm) as Tensor, [...lead, n]);
  });
}
