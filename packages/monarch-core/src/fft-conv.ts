// Long convolutions from real matMuls (m2-architecture.md §1.6): y = irfft(rfft(u, 2L) · rfft(k, 2L))[:L] + D⊙u,
// with the DFT written as a Monarch product (dft-plan.ts, monarch-dft.ts). Savings over a plain FFT convolution:
// the zero-padded half of u is never multiplied (first stage), only the first L outputs and only their real part
// are produced (last stage), and the frequency-domain product happens in the Monarch's digit-reversed order, so no
// permutation is ever materialised. Gradients come from tf.grad (matMul, mul, add, reshape, transpose, concat).
import * as tf from '@tensorflow/tfjs-core';
import type { Tensor, Tensor1D, Tensor2D, Tensor3D } from '@tensorflow/tfjs-core';
import { convPlan, layoutPhase } from './dft-plan.js';
import type { DftPlan } from './dft-plan.js';
import { ShapeError } from './errors.js';
import { complexMul, forwardDft, inverseDft } from './monarch-dft.js';
import { checkRank, checkTensor, shapeText } from './validate.js';

/** Options of {@link fftConv}. */
export interface FftConvOptions {
  /**
   * Monarch order of the DFT (number of factors: 2 or 3 for typical lengths). Default: chosen per length by a cost
   * model (order 2 for short sequences, order 3 for long ones).
   */
  order?: number;
}

/**
 * Describes the Monarch plan a long convolution of length L uses: FFT size N ≥ 2L and its radices.
 *
 * @param sequenceLength - L.
 * @param options - Optional forced order.
 * @returns `{ n, radices }`.
 * @example
 * longConvPlan(4096); // → { n: 8192, radices: [32, 16, 16] } (for example)
 */
export function longConvPlan(sequenceLength: number, options: FftConvOptions = {}): DftPlan {
  return convPlan(sequenceLength, options.order);
}

function checkSkip(op: string, skip: Tensor1D | undefined, channels: number): void {
  if (skip === undefined) return;
  checkTensor(op, 'skip', skip);
  if (skip.rank !== 1 || skip.shape[0] !== channels) {
    throw new ShapeError(`${op}: skip (D) must have shape [${channels}] (channels of u), got ${shapeText(skip.shape)}`, { parameter: 'skip', value: skip.shape });
  }
}

/**
 * Linear convolution along the last axis with FFT size 2L, first L outputs, plus the D skip term:
 * y[b,c,n] = Σ_{m<L} K[c, (n − m) mod 2L]·u[b,c,m] + D[c]·u[b,c,n], where the kernel is zero beyond its length.
 * So K[:, 0..L) are causal lags and K[:, L+1..2L) act as lags −(L−1)..−1. Matches the original `fftconv_ref`.
 *
 * Shapes: u [B, C, L] × kernel [C, Lk ≤ 2L] (+ skip [C]) → [B, C, L]
 * @param u - Input, channel-first.
 * @param kernel - Per-channel kernel of length ≤ 2L.
 * @param skip - Optional D [C]: adds D⊙u.
 * @param options - Optional Monarch order.
 * @returns y [B, C, L].
 * @throws ShapeError if u is not 3-D, the kernel is not [C, ≤ 2L], or skip is not [C].
 * @see arXiv:2310.12109 (Monarch Mixer) §3–4; m2-architecture.md §1.6.
 * @example
 * fftConv(tf.ones([2, 4, 16]), tf.ones([4, 16]), tf.zeros([4])).shape; // → [2, 4, 16]
 */
export function fftConv(u: Tensor3D, kernel: Tensor2D, skip?: Tensor1D, options: FftConvOptions = {}): Tensor3D {
  const op = 'fftConv';
  checkTensor(op, 'u', u);
  checkRank(op, 'u', u, 3, '[B, C, L]');
  checkTensor(op, 'kernel', kernel);
  checkRank(op, 'kernel', kernel, 2, '[C, Lk]');
  const [, channels, length] = u.shape;
  if (length < 1) throw new ShapeError(`${op}: u must have L ≥ 1, got shape ${shapeText(u.shape)}`, { parameter: 'u', value: u.shape });
  if (kernel.shape[0] !== channels || kernel.shape[1] > 2 * length || kernel.shape[1] < 1) {
    throw new ShapeError(`${op}: kernel must have shape [${channels}, 1..${2 * length}] (C of u, length ≤ 2L), got ${shapeText(kernel.shape)}`, {
      parameter: 'kernel',
      value: kernel.shape,
    });
  }
  checkSkip(op, skip, channels);
  return longConv(u, kernel, skip, options.order);
}

/**
 * Causal long convolution (Hyena / M2-GPT, and M2-BERT with bidirectional = false): zero-pad to 2L, so output n
 * sees inputs m ≤ n only: y[b,c,n] = Σ_{m≤n} kf[c, n−m]·u[b,c,m] + D[c]·u[b,c,n].
 *
 * Shapes: u [B, C, L] × kf [C, L] (+ skip [C]) → [B, C, L]
 * @param u - Input, channel-first.
 * @param kf - Causal kernel [C, L].
 * @param skip - Optional D [C].
 * @param options - Optional Monarch order.
 * @returns y [B, C, L].
 * @throws ShapeError for mismatched shapes.
 * @see m2-architecture.md §1.6 (causal).
 * @example
 * causalConv(tf.ones([1, 2, 8]), tf.ones([2, 8])).shape; // → [1, 2, 8]
 */
export function causalConv(u: Tensor3D, kf: Tensor2D, skip?: Tensor1D, options: FftConvOptions = {}): Tensor3D {
  const op = 'causalConv';
  checkTensor(op, 'u', u);
  checkRank(op, 'u', u, 3, '[B, C, L]');
  checkTensor(op, 'kf', kf);
  const [, channels, length] = u.shape;
  if (kf.rank !== 2 || kf.shape[0] !== channels || kf.shape[1] !== length) {
    throw new ShapeError(`${op}: kf must have shape [${channels}, ${length}] ([C, L] of u), got ${shapeText(kf.shape)}`, { parameter: 'kf', value: kf.shape });
  }
  checkSkip(op, skip, channels);
  return longConv(u, kf, skip, options.order);
}

/**
 * M2-BERT's bidirectional long convolution: the 2L kernel [kf, reverse(kr)], so
 * y[b,c,n] = Σ_{m≤n} kf[c, n−m]·u[b,c,m] + Σ_{m>n} kr[c, m−n−1]·u[b,c,m] + D[c]·u[b,c,n]
 * (kr[0] multiplies the next token).
 *
 * Shapes: u [B, C, L] × kf [C, L] × kr [C, L] (+ skip [C]) → [B, C, L]
 * @param u - Input, channel-first.
 * @param kf - Forward kernel [C, L].
 * @param kr - Reverse kernel [C, L].
 * @param skip - Optional D [C].
 * @param options - Optional Monarch order.
 * @returns y [B, C, L].
 * @throws ShapeError for mismatched shapes.
 * @see m2-architecture.md §1.6 (bidirectional).
 * @example
 * bidirectionalConv(tf.ones([1, 2, 8]), tf.ones([2, 8]), tf.ones([2, 8])).shape; // → [1, 2, 8]
 */
export function bidirectionalConv(u: Tensor3D, kf: Tensor2D, kr: Tensor2D, skip?: Tensor1D, options: FftConvOptions = {}): Tensor3D {
  const op = 'bidirectionalConv';
  checkTensor(op, 'u', u);
  checkRank(op, 'u', u, 3, '[B, C, L]');
  const [, channels, length] = u.shape;
  for (const [name, k] of [
    ['kf', kf],
    ['kr', kr],
  ] as const) {
    checkTensor(op, name, k);
    if (k.rank !== 2 || k.shape[0] !== channels || k.shape[1] !== length) {
      throw new ShapeError(`${op}: ${name} must have shape [${channels}, ${length}] ([C, L] of u), got ${shapeText(k.shape)}`, { parameter: name, value: k.shape });
    }
  }
  checkSkip(op, skip, channels);
  return longConv(u, kf, skip, options.order, kr);
}

/**
 * The convolution itself (inputs already checked). With `reverseKernel` (kr [C, L]), the kernel is
 * [kernel, reverse(kr)] on the N-point circle; its spectrum is DFT(kernel) + ω_N^{−k}·conj(DFT(kr)), so kr is
 * transformed with the cheap half-input path and never reversed (reverse is slow on wasm).
 */
function longConv(u: Tensor3D, kernel: Tensor2D, skip: Tensor1D | undefined, order: number | undefined, reverseKernel?: Tensor2D): Tensor3D {
  const [batch, channels, length] = u.shape;
  const kernelLength = kernel.shape[1];
  const plan = convPlan(length, order);
  const { n, radices } = plan;
  const rest = n / radices[0]; // M_1
  const digits = Math.ceil(length / rest); // d_1 values that hold data
  const width = digits * rest;
  return tf.tidy(() => {
    // u rows [B·C, width]: zero-padded only when L is not a multiple of M_1.
    let rows = tf.reshape(u, [batch * channels, length]);
    if (width > length) rows = tf.pad(rows, [[0, 0], [0, width - length]]);
    // Kernel on the N-point circle: lags 0..L−1 first, lags −(L−1)..−1 at the end.
    let k: Tensor = kernel;
    let kernelDigits = digits;
    if (kernelLength <= length) {
      if (width > kernelLength) k = tf.pad(k, [[0, 0], [0, width - kernelLength]]);
    } else {
      k = tf.pad(k, [[0, 0], [0, 2 * length - kernelLength]]); // [C, 2L]
      if (n > 2 * length) {
        const [head, tail] = tf.split(k, [length, length], 1);
        k = tf.concat([head, tf.zeros([channels, n - 2 * length]), tail], 1); // [C, N]
      }
      kernelDigits = radices[0];
    }
    const spectrumU = forwardDft(rows, plan, { realInput: true, digits }); // [B·C, N] digit-reversed
    let spectrumK = forwardDft(k, plan, { realInput: true, digits: kernelDigits }); // [C, N]
    if (reverseKernel !== undefined) {
      let kr: Tensor = reverseKernel;
      if (width > length) kr = tf.pad(kr, [[0, 0], [0, width - length]]);
      const r = forwardDft(kr, plan, { realInput: true, digits }); // [C, N]
      const phase = layoutPhase(plan); // ω_N^{−k} = cos + i·sin, [N]
      spectrumK = {
        re: tf.add(spectrumK.re, tf.add(tf.mul(r.re, phase.cos), tf.mul(r.im, phase.sin))),
        im: tf.add(spectrumK.im, tf.sub(tf.mul(r.re, phase.sin), tf.mul(r.im, phase.cos))),
      };
    }
    const perBatch = (t: Tensor) => tf.reshape(t, [batch, channels, n]);
    const product = complexMul({ re: perBatch(spectrumU.re), im: perBatch(spectrumU.im) }, spectrumK.re, spectrumK.im);
    const flat = { re: tf.reshape(product.re, [-1, n]), im: tf.reshape(product.im, [-1, n]) };
    let y = inverseDft(flat, plan, { realOutput: true, digits }) as Tensor; // [B·C, width]
    if (width > length) y = tf.slice(y, [0, 0], [-1, length]);
    let out = tf.reshape(y, [batch, channels, length]);
    if (skip !== undefined) out = tf.add(out, tf.mul(u, tf.reshape(skip, [channels, 1])));
    return out as Tensor3D;
  });
}
