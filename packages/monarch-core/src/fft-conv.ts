// Long convolutions from real matMuls (m2-architecture.md §1.6): y = irfft(rfft(u, 2L) · rfft(k, 2L))[:L] + D⊙u,
// with the DFT written as a Monarch product (dft-plan.ts, monarch-dft.ts). Savings over a plain FFT convolution:
// the zero-padded half of u is never multiplied (first stage), only the first L outputs and only their real part
// are produced (last stage), and the frequency-domain product happens in the Monarch's digit-reversed order, so no
// permutation is ever materialised. The whole convolution is one tf.customGrad op whose gradient uses the same
// transforms, so it trains on every backend (tf.spectral has no gradients and no wasm kernels).
import * as tf from '@tensorflow/tfjs-core';
import type { Tensor, Tensor1D, Tensor2D, Tensor3D } from '@tensorflow/tfjs-core';
import { convPlan, layoutPhase } from './dft-plan.js';
import type { DftPlan } from './dft-plan.js';
import { BackendError, ShapeError } from './errors.js';
import { longConvInputs, unpackLongConvArgs } from './long-conv-inputs.js';
import { complexMul, forwardDft, inverseDft } from './monarch-dft.js';
import type { Complex } from './monarch-dft.js';
import { checkRank, checkTensor, shapeText } from './validate.js';
import { isWasmSpectrum, useWasmFft, wasmKernelGrads, wasmKernelSpectrum, wasmSpectrumConv } from './backends/wasm-fft-conv.js';
import { webGpuConvKernelSpectrum, webGpuConvPairWithSpectra, webGpuConvWithSpectrum, webGpuLongConv } from './backends/webgpu-long-conv.js';

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

/** Complex a ⊙ conj(b) (shapes broadcast). */
function mulConj(a: Complex, b: Complex): Complex {
  return complexMul(a, b.re, b.im, true);
}

/** ω_N^{−k} ⊙ conj(a) in the digit-reversed layout (a reversed real kernel's spectrum from its plain one). */
function phaseConj(a: Complex, plan: DftPlan): Complex {
  const { cos, sin } = layoutPhase(plan);
  return { re: tf.add(tf.mul(a.re, cos), tf.mul(a.im, sin)), im: tf.sub(tf.mul(a.re, sin), tf.mul(a.im, cos)) };
}

/**
 * The convolution itself (inputs already checked), as ONE differentiable op whose gradient is written with the same
 * Monarch DFTs (the adjoint of a DFT is a DFT), so nothing inside is taped and memory stays small. With
 * `reverseKernel` (kr [C, L]) the circular kernel is [kernel, reverse(kr)]: its spectrum is
 * DFT(kernel) + ω_N^{−k}·conj(DFT(kr)), so kr is transformed with the cheap half-input path and never reversed.
 *
 * Forward: y = S(T(u) ⊙ K̂) + D⊙u, T = forward Monarch DFT (real input), S = real part of its scaled adjoint.
 * Backward with G = T(dy): du = S(G ⊙ conj K̂) + D⊙dy; dK̂ = Σ_b G ⊙ conj(T(u)) / N → dkernel = N·S(dK̂) (and the same
 * for kr after conj-phasing); dD = Σ_{b,n} dy⊙u.
 */
function longConv(u: Tensor3D, kernel: Tensor2D, skip: Tensor1D | undefined, order: number | undefined, reverseKernel?: Tensor2D): Tensor3D {
  const fused = webGpuLongConv(u, kernel, skip, reverseKernel); // webgpu: fused WGSL kernels (backends/webgpu-long-conv.ts)
  if (fused !== undefined) return fused;
  const [batch, channels, length] = u.shape;
  const kernelLength = kernel.shape[1];
  const plan = convPlan(length, order);
  const { n, radices } = plan;
  const rest = n / radices[0]; // M_1
  const digits = Math.ceil(length / rest); // d_1 values that hold data
  const width = digits * rest;
  const kernelDigits = kernelLength <= length ? digits : radices[0];
  const padRows = (t: Tensor, to: number) => ((t.shape[1] as number) < to ? tf.pad(t, [[0, 0], [0, to - (t.shape[1] as number)]]) : t);
  const cutRows = (t: Tensor, to: number) => ((t.shape[1] as number) > to ? tf.slice(t, [0, 0], [-1, to]) : t);
  /** The kernel on the N-point circle: lags 0..L−1 first, lags −(L−1)..−1 at the end. */
  const placeKernel = (k: Tensor): Tensor => {
    if (kernelLength <= length) return padRows(k, width);
    const k2 = padRows(k, 2 * length); // [C, 2L]
    if (n === 2 * length) return k2;
    const [head, tail] = tf.split(k2, [length, length], 1);
    return tf.concat([head, tf.zeros([channels, n - 2 * length]), tail], 1); // [C, N]
  };
  /** Adjoint of placeKernel. */
  const unplaceKernel = (dk: Tensor): Tensor => {
    if (kernelLength <= length) return cutRows(dk, kernelLength);
    let d2 = dk;
    if (n > 2 * length) d2 = tf.concat([tf.slice(dk, [0, 0], [-1, length]), tf.slice(dk, [0, n - length], [-1, length])], 1);
    return cutRows(d2, kernelLength);
  };
  // Two batch rows travel as one complex row (u_b + i·u_{b+B/2}): the kernel is real, so the real and imaginary parts
  // of the result are the two rows' convolutions. This halves every transform of u and of dy.
  const pack = batch >= 2;
  const half = Math.ceil(batch / 2);
  const packedBatch = pack ? half : batch;
  /** [B, C, L] → packed rows: complex [⌈B/2⌉·C, width], or real [B·C, width] when B = 1. */
  const packRows = (t: Tensor): Complex | Tensor => {
    if (!pack) return padRows(tf.reshape(t, [batch * channels, length]), width);
    const even = batch % 2 === 1 ? tf.concat([t, tf.zeros([1, channels, length])], 0) : t; // [2·half, C, L]
    const [a, b] = tf.split(even, 2, 0);
    return { re: padRows(tf.reshape(a, [half * channels, length]), width), im: padRows(tf.reshape(b, [half * channels, length]), width) };
  };
  /** Inverse of packRows for the inverse transform's output rows. */
  const unpackRows = (y: Complex | Tensor): Tensor => {
    if (!pack) return tf.reshape(cutRows(y as Tensor, length), [batch, channels, length]);
    const c = y as Complex;
    const both = tf.concat([tf.reshape(cutRows(c.re, length), [half, channels, length]), tf.reshape(cutRows(c.im, length), [half, channels, length])], 0);
    return batch % 2 === 1 ? tf.slice(both, [0, 0, 0], [batch, -1, -1]) : both;
  };
  const transformRows = (rows: Complex | Tensor) => forwardDft(rows, plan, { realInput: !pack, digits });
  const perBatch = (t: Tensor) => tf.reshape(t, [packedBatch, channels * n]); // [B (or ⌈B/2⌉ packed), C·N]
  const flatC = (t: Tensor) => tf.reshape(t, [channels * n]); // [C·N]
  const hasReverse = reverseKernel !== undefined;
  const hasSkip = skip !== undefined;

  if (useWasmFft()) {
    // wasm: the forward and every gradient through the WebAssembly FFT kernels (backends/wasm-fft-conv.ts): du is the
    // adjoint convolution (conj K̂), the kernels' gradients the batch-summed correlation of dy with u.
    const wasmOp = tf.customGrad(((...args: unknown[]) => {
      const { u: uIn, kernel: kIn, reverseKernel: krIn, skip: dIn, save } = unpackLongConvArgs(args, hasReverse, hasSkip);
      const spectrum = wasmKernelSpectrum(length, kIn as Tensor2D, krIn as Tensor2D | undefined);
      const value = wasmSpectrumConv(uIn as Tensor3D, spectrum, dIn as Tensor1D | undefined);
      save([spectrum, uIn, ...(dIn === undefined ? [] : [dIn])]);
      tf.dispose(spectrum); // kept by save for the gradient
      return {
        value,
        gradFunc: (dy: Tensor, saved: Tensor[]) => {
          const [spectrumSaved, uSaved, dSaved] = saved;
          let du: Tensor = wasmSpectrumConv(dy as Tensor3D, spectrumSaved!, undefined, true);
          if (hasSkip) du = tf.add(du, tf.mul(dy, tf.reshape(dSaved!, [channels, 1])));
          const grads: Tensor[] = [du, ...wasmKernelGrads(uSaved as Tensor3D, dy as Tensor3D, kernelLength, hasReverse)];
          if (hasSkip) grads.push(tf.sum(tf.mul(dy, uSaved!), [0, 2]));
          return grads;
        },
      };
    }) as unknown as Parameters<typeof tf.customGrad>[0]);
    return wasmOp(...longConvInputs(u, kernel, reverseKernel, skip)) as Tensor3D;
  }

  const op = tf.customGrad(((...args: unknown[]) => {
    const { u: uIn, kernel: kIn, reverseKernel: krIn, skip: dIn, save } = unpackLongConvArgs(args, hasReverse, hasSkip);
    const [spectrumU, spectrumK] = tf.tidy(() => {
      const su = transformRows(packRows(uIn)); // [B·C, N] digit-reversed (packed: [⌈B/2⌉·C, N])
      let sk = forwardDft(placeKernel(kIn), plan, { realInput: true, digits: kernelDigits }); // [C, N]
      if (krIn !== undefined) {
        const sr = phaseConj(forwardDft(padRows(krIn, width), plan, { realInput: true, digits }), plan);
        sk = { re: tf.add(sk.re, sr.re), im: tf.add(sk.im, sr.im) };
      }
      return [
        { re: perBatch(su.re), im: perBatch(su.im) },
        { re: flatC(sk.re), im: flatC(sk.im) },
      ];
    });
    const value = tf.tidy(() => {
      const product = complexMul(spectrumU, spectrumK.re, spectrumK.im); // [B, C·N]
      const flat = { re: tf.reshape(product.re, [-1, n]), im: tf.reshape(product.im, [-1, n]) };
      const out = unpackRows(inverseDft(flat, plan, { realOutput: !pack, digits })); // [B, C, L]
      return dIn === undefined ? out : tf.add(out, tf.mul(uIn, tf.reshape(dIn, [channels, 1])));
    });
    // The inputs are saved too: the gradient reads u and D, and a forward under tidy (tf.variableGrads) disposes
    // intermediates that are not saved.
    save([spectrumU.re, spectrumU.im, spectrumK.re, spectrumK.im, uIn, ...(dIn === undefined ? [] : [dIn])]);
    tf.dispose([spectrumU.re, spectrumU.im, spectrumK.re, spectrumK.im]);
    return {
      value,
      gradFunc: (dy: Tensor, saved: Tensor[]) => {
        const [uRe, uIm, kRe, kIm, uSaved, dSaved] = saved;
        const g0 = transformRows(packRows(dy));
        const g = { re: perBatch(g0.re), im: perBatch(g0.im) }; // [B, C·N]
        const rowsN = (t: Tensor) => tf.reshape(t, [-1, n]);
        const dSpectrumU = mulConj(g, { re: kRe, im: kIm });
        let du = unpackRows(inverseDft({ re: rowsN(dSpectrumU.re), im: rowsN(dSpectrumU.im) }, plan, { realOutput: !pack, digits }));
        if (hasSkip) du = tf.add(du, tf.mul(dy, tf.reshape(dSaved, [channels, 1])));
        // Σ_b G_b·conj(U_b). Packed, G·conj(Z) adds i·(G₂·conj U₁ − G₁·conj U₂), whose inverse DFT is imaginary (real
        // signals): the real-output inverse below drops it.
        const dK0 = mulConj(g, { re: uRe, im: uIm }); // [B, C·N]
        const dK = { re: rowsN(tf.sum(dK0.re, 0)), im: rowsN(tf.sum(dK0.im, 0)) }; // [C, N], still ×N
        const dkernel = unplaceKernel(inverseDft(dK, plan, { realOutput: true, digits: kernelDigits }) as Tensor);
        const grads: Tensor[] = [du, dkernel];
        if (hasReverse) grads.push(cutRows(inverseDft(phaseConj(dK, plan), plan, { realOutput: true, digits }) as Tensor, length));
        if (hasSkip) grads.push(tf.sum(tf.mul(dy, uSaved), [0, 2]));
        return grads;
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return op(...longConvInputs(u, kernel, reverseKernel, skip)) as Tensor3D;
}

/** A wasm-layout spectrum used where its kernels cannot run. */
function checkWasmSpectrumBackend(op: string): void {
  if (tf.getBackend() !== 'wasm') {
    throw new BackendError(`${op}: the spectrum was made by the wasm FFT kernels, but the backend is now ${tf.getBackend()}; make the spectrum again on this backend (convKernelSpectrum)`, { parameter: 'spectrum' });
  }
}

/**
 * u ⊛ K + D⊙u with a wasm-layout spectrum, differentiable with respect to u and D: du = u's adjoint convolution
 * (conj K̂) + D⊙dy, dD = Σ_{b,n} dy⊙u.
 */
function wasmConvWithSpectrum(u: Tensor3D, spectrum: Tensor, skip: Tensor1D | undefined): Tensor3D {
  const channels = u.shape[1];
  const op = tf.customGrad(((...args: unknown[]) => {
    const [uIn, dIn] = args as Tensor[];
    const save = args[args.length - 1] as (t: Tensor[]) => void;
    const hasSkip = skip !== undefined;
    save(hasSkip ? [uIn!, dIn!] : []);
    return {
      value: wasmSpectrumConv(uIn as Tensor3D, spectrum, hasSkip ? (dIn as Tensor1D) : undefined),
      gradFunc: (dy: Tensor, saved: Tensor[]) => {
        const du = wasmSpectrumConv(dy as Tensor3D, spectrum, undefined, true);
        if (!hasSkip) return [du];
        const [uSaved, dSaved] = saved;
        return [tf.add(du, tf.mul(dy, tf.reshape(dSaved!, [channels, 1]))), tf.sum(tf.mul(dy, uSaved!), [0, 2])];
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return (skip === undefined ? op(u) : op(u, skip)) as Tensor3D;
}

/**
 * The spectrum of a causal or bidirectional long-convolution kernel, computed once and reused by
 * {@link convWithSpectrum} (inference: the implicit filters' kernels depend only on the weights and L, so their DFTs
 * can be cached between forwards). Dispose with {@link disposeConvSpectrum}.
 */
export interface ConvKernelSpectrum {
  /** Sequence length L the spectrum is for. */
  readonly length: number;
  /** Channels C. */
  readonly channels: number;
  /** The Monarch plan (FFT size N ≥ 2L). */
  readonly plan: DftPlan;
  /**
   * Real part [C·N] in the plan's digit-reversed layout. On webgpu and wasm (fused kernels) `re` and `im` are one
   * tensor in those kernels' own layout (wasm: [⌈C/4⌉, N'/2 + 1, re ×4 | im ×4] with N' the power of two ≥ 2L).
   */
  readonly re: Tensor;
  /** Imaginary part [C·N] (see `re`). */
  readonly im: Tensor;
}

/**
 * Transforms a long-convolution kernel once: kf [C, L] alone (causal, as {@link causalConv}) or with kr [C, L]
 * (bidirectional, as {@link bidirectionalConv}). Not differentiable with respect to the kernels (use the plain
 * functions when training the filters).
 *
 * Shapes: kf [C, L] (+ kr [C, L]) → spectrum of [C·N]
 * @param kf - Forward kernel [C, L].
 * @param kr - Optional reverse kernel [C, L].
 * @param options - Optional Monarch order.
 * @returns The spectrum (its tensors are kept: free them with {@link disposeConvSpectrum}).
 * @throws ShapeError if kf is not 2-D or kr's shape differs.
 * @example
 * const s = convKernelSpectrum(tf.ones([2, 8]), tf.ones([2, 8]));
 * convWithSpectrum(tf.ones([1, 2, 8]), s).shape; // → [1, 2, 8]
 */
export function convKernelSpectrum(kf: Tensor2D, kr?: Tensor2D, options: FftConvOptions = {}): ConvKernelSpectrum {
  const op = 'convKernelSpectrum';
  checkTensor(op, 'kf', kf);
  checkRank(op, 'kf', kf, 2, '[C, L]');
  const [channels, length] = kf.shape;
  if (kr !== undefined) {
    checkTensor(op, 'kr', kr);
    if (kr.rank !== 2 || kr.shape[0] !== channels || kr.shape[1] !== length) {
      throw new ShapeError(`${op}: kr must have shape [${channels}, ${length}] (the shape of kf), got ${shapeText(kr.shape)}`, { parameter: 'kr', value: kr.shape });
    }
  }
  const plan = convPlan(length, options.order);
  const fused = webGpuConvKernelSpectrum(kf, kr, plan); // webgpu: one WGSL dispatch, the fused kernels' layout
  if (fused !== undefined) return fused;
  if (useWasmFft()) {
    const spectrum = tf.keep(wasmKernelSpectrum(length, kf, kr)); // wasm: the FFT kernels' layout (backends/wasm-fft-conv.ts)
    return { length, channels, plan, re: spectrum, im: spectrum };
  }
  const digits = Math.ceil(length / (plan.n / plan.radices[0]));
  const width = digits * (plan.n / plan.radices[0]);
  const chunkSpectrumOf = (c0: number, cs: number) =>
    tf.tidy(() => {
      const rows = (t: Tensor) => {
        const part = cs === channels ? t : tf.slice(t, [c0, 0], [cs, length]); // [Cc, L]
        return width > length ? tf.pad(part, [[0, 0], [0, width - length]]) : part; // [Cc, width]
      };
      let sk = forwardDft(rows(kf), plan, { realInput: true, digits }); // [Cc, N]
      if (kr !== undefined) {
        const sr = phaseConj(forwardDft(rows(kr), plan, { realInput: true, digits }), plan);
        const sum = { re: tf.add(sk.re, sr.re), im: tf.add(sk.im, sr.im) };
        tf.dispose([sk.re, sk.im, sr.re, sr.im]);
        sk = sum;
      }
      return [tf.reshape(sk.re, [cs * plan.n]), tf.reshape(sk.im, [cs * plan.n])];
    });
  // Channel chunks as in byChannelChunks: the transforms' working set stays a few times one chunk's spectrum.
  const count = Math.min(channels, Math.ceil((4 * channels * plan.n) / spectrumChunkBytes));
  const size = Math.ceil(channels / count);
  const parts: Tensor[][] = [];
  for (let c0 = 0; c0 < channels; c0 += size) parts.push(chunkSpectrumOf(c0, Math.min(size, channels - c0)));
  const join = (i: number) => {
    if (parts.length === 1) return parts[0][i];
    const joined = tf.concat(parts.map((p) => p[i]));
    tf.dispose(parts.map((p) => p[i]));
    return joined;
  };
  const re = tf.keep(join(0));
  const im = tf.keep(join(1));
  return { length, channels, plan, re, im };
}

/**
 * Frees a spectrum from {@link convKernelSpectrum}.
 * @param spectrum - The spectrum.
 */
export function disposeConvSpectrum(spectrum: ConvKernelSpectrum): void {
  tf.dispose([spectrum.re, spectrum.im]);
}

/**
 * Two long convolutions with pre-transformed kernels at once, as M2's sequence mixer needs them (the gated main
 * convolution and the residual one): ya = conv(a, sa) + da⊙a and yb = conv(b, sb) + db⊙b. Both outputs are real,
 * so one complex inverse DFT of A·Ŝa + i·B·Ŝb returns ya as its real part and yb as its imaginary part: one inverse
 * transform instead of two. Equals two {@link convWithSpectrum} calls; differentiable with respect to a and b.
 *
 * Shapes: a [B, C, L], b [B, C, L] × spectra of [C, L] kernels (+ skips [C]) → [ya [B, C, L], yb [B, C, L]]
 * @param a - First input, channel-first.
 * @param sa - Its kernel spectrum ({@link convKernelSpectrum}).
 * @param b - Second input, same shape.
 * @param sb - Its kernel spectrum (same C, L and plan as sa).
 * @param da - Optional skip D [C] of the first convolution.
 * @param db - Optional skip D [C] of the second.
 * @returns [ya, yb].
 * @throws ShapeError if a and b differ in shape, or either does not match its spectrum.
 * @example
 * const [ya, yb] = convPairWithSpectra(u, convKernelSpectrum(kf, kr), v, convKernelSpectrum(kf2, kr2)); // = two convWithSpectrum
 */
export function convPairWithSpectra(a: Tensor3D, sa: ConvKernelSpectrum, b: Tensor3D, sb: ConvKernelSpectrum, da?: Tensor1D, db?: Tensor1D): [Tensor3D, Tensor3D] {
  const op = 'convPairWithSpectra';
  checkTensor(op, 'a', a);
  checkRank(op, 'a', a, 3, '[B, C, L]');
  checkTensor(op, 'b', b);
  const [batch, channels, length] = a.shape;
  if (b.rank !== 3 || b.shape.some((d, i) => d !== a.shape[i])) {
    throw new ShapeError(`${op}: b must have a's shape ${shapeText(a.shape)}, got ${shapeText(b.shape)}`, { parameter: 'b', value: b.shape });
  }
  for (const [name, s] of [['sa', sa], ['sb', sb]] as const) {
    if (s.channels !== channels || s.length !== length || s.plan.n !== sa.plan.n || s.plan.radices.join() !== sa.plan.radices.join()) {
      throw new ShapeError(`${op}: ${name} must be a spectrum for C = ${channels}, L = ${length} (the inputs'), got C = ${s.channels}, L = ${s.length}`, { parameter: name });
    }
  }
  checkSkip(op, da, channels);
  checkSkip(op, db, channels);
  const fused = webGpuConvPairWithSpectra(a, sa, b, sb, da, db); // spectra made on webgpu
  if (fused !== undefined) return fused;
  if (isWasmSpectrum(sa.re) || isWasmSpectrum(sb.re)) return [convWithSpectrum(a, sa, da), convWithSpectrum(b, sb, db)]; // wasm FFT kernels
  return tf.tidy(() =>
    byChannelChunks(batch, channels, sa.plan.n, [a, b], (c0, cs, [ac, bc]) => {
      const { plan } = sa;
      const { n } = plan;
      const { digits } = rowLayout(plan, length);
      // Each step in its own tidy, each input freed once used: the live set stays at two spectra.
      const pa = tf.tidy(() => spectrumProduct(ac as Tensor3D, plan, chunkSpectrum(sa, c0, cs)));
      const pb = tf.tidy(() => spectrumProduct(bc as Tensor3D, plan, chunkSpectrum(sb, c0, cs)));
      // A·Ŝa + i·B·Ŝb: its inverse is ya + i·yb (both real).
      const both = tf.tidy(() => ({ re: tf.reshape(tf.sub(pa.re, pb.im), [-1, n]), im: tf.reshape(tf.add(pa.im, pb.re), [-1, n]) }));
      tf.dispose([pa.re, pa.im, pb.re, pb.im]);
      const y = inverseDft(both, plan, { realOutput: false, digits, consume: true }) as Complex; // [B·Cc, width]
      return [finishRows(y.re, ac, length, chunkSkip(da, c0, cs)), finishRows(y.im, bc, length, chunkSkip(db, c0, cs))];
    }),
  ) as [Tensor3D, Tensor3D];
}

/** Bytes of one real [B·C, N] spectrum part above which the inference convolutions run in channel chunks. */
let spectrumChunkBytes = 32 * 2 ** 20;

/**
 * Sets the channel-chunk size of the inference convolutions (test hook: small values force the chunked path).
 * @param bytes - Bytes of one real [B·Cc, N] spectrum part per chunk.
 * @returns The previous value.
 */
export function setSpectrumChunkBytes(bytes: number): number {
  const previous = spectrumChunkBytes;
  spectrumChunkBytes = bytes;
  return previous;
}

/**
 * Runs `f` on channel chunks of [B, C, L] inputs (each chunk's outputs [B, Cc, L]) and concatenates the outputs
 * along C, so that one chunk's [B·Cc, N] spectra stay under the chunk size (32 MiB): the transforms' working
 * set is then a few times that, not a few times the whole [B·C, N] spectrum (L = 32768 fits the wasm heap).
 */
function byChannelChunks(batch: number, channels: number, n: number, inputs: Tensor[], f: (c0: number, cs: number, chunk: Tensor[]) => Tensor[]): Tensor[] {
  const count = Math.min(channels, Math.ceil((4 * batch * channels * n) / spectrumChunkBytes));
  if (count <= 1) return f(0, channels, inputs);
  const outs: Tensor[][] = [];
  const size = Math.ceil(channels / count);
  for (let c0 = 0; c0 < channels; c0 += size) {
    const cs = Math.min(size, channels - c0);
    outs.push(
      tf.tidy(() => {
        const [b, , l] = inputs[0].shape;
        return f(c0, cs, inputs.map((t) => tf.slice(t, [0, c0, 0], [b, cs, l]))); // [B, Cc, L] each
      }),
    );
  }
  return outs[0].map((_, i) => {
    const parts = outs.map((o) => o[i]);
    const joined = tf.concat(parts, 1); // [B, C, L]
    tf.dispose(parts);
    return joined;
  });
}

/** Channels [c0, c0 + cs) of a kernel spectrum ([C·N] flat, so a contiguous range). */
function chunkSpectrum(s: ConvKernelSpectrum, c0: number, cs: number): Complex {
  if (c0 === 0 && cs === s.channels) return { re: s.re, im: s.im };
  const n = s.plan.n;
  return { re: tf.slice(s.re, [c0 * n], [cs * n]), im: tf.slice(s.im, [c0 * n], [cs * n]) };
}

function chunkSkip(d: Tensor1D | undefined, c0: number, cs: number): Tensor1D | undefined {
  return d === undefined || (c0 === 0 && cs === d.shape[0]) ? d : tf.slice(d, [c0], [cs]);
}

/** Inverse-transform rows [B·C, width] → [B, C, L] (first L of each row) + D⊙x. */
function finishRows(rows: Tensor, x: Tensor, length: number, d: Tensor1D | undefined): Tensor3D {
  const [batch, channels] = x.shape;
  const width = rows.shape[1] as number;
  const out = tf.reshape(width > length ? tf.slice(rows, [0, 0], [-1, length]) : rows, [batch, channels, length]);
  return (d === undefined ? out : tf.add(out, tf.mul(x, tf.reshape(d, [channels, 1])))) as Tensor3D;
}

/** The rows a Monarch DFT of length L reads: d_1 values that hold data (`digits`) and the padded row `width`. */
function rowLayout(plan: DftPlan, length: number): { digits: number; width: number } {
  const rest = plan.n / plan.radices[0]; // M_1
  const digits = Math.ceil(length / rest);
  return { digits, width: digits * rest };
}

/**
 * T(x) ⊙ K̂: the forward Monarch DFT of x's rows (real input, zero half skipped) times a pre-transformed kernel
 * (complex [C·N]), in the digit-reversed layout. Shapes: x [B, C, L] → complex [B, C·N].
 */
function spectrumProduct(x: Tensor3D, plan: DftPlan, kernel: Complex): Complex {
  const [batch, channels, length] = x.shape;
  const { digits, width } = rowLayout(plan, length);
  let rows: Tensor = tf.reshape(x, [batch * channels, length]);
  if (width > length) rows = tf.pad(rows, [[0, 0], [0, width - length]]); // [B·C, width]
  const sx = forwardDft(rows, plan, { realInput: true, digits }); // [B·C, N] digit-reversed
  const cn = channels * plan.n;
  return complexMulFreeing({ re: tf.reshape(sx.re, [batch, cn]), im: tf.reshape(sx.im, [batch, cn]) }, kernel.re, kernel.im);
}

/** complexMul that frees `a` as soon as it is used and keeps only the two results alive (a spectrum-sized temporary at a time). */
function complexMulFreeing(a: Complex, tr: Tensor, ti: Tensor): Complex {
  const re = tf.tidy(() => tf.sub(tf.mul(a.re, tr), tf.mul(a.im, ti)));
  const im = tf.tidy(() => tf.add(tf.mul(a.re, ti), tf.mul(a.im, tr)));
  tf.dispose([a.re, a.im]);
  return { re, im };
}

/**
 * The long convolution with a pre-transformed kernel: equals {@link causalConv} / {@link bidirectionalConv} with the
 * kernels the spectrum came from, but transforms only u. Differentiable with respect to u (and skip) only.
 *
 * Shapes: u [B, C, L] × spectrum of [C, L] kernels (+ skip [C]) → [B, C, L]
 * @param u - Input, channel-first.
 * @param spectrum - From {@link convKernelSpectrum} for the same C and L.
 * @param skip - Optional D [C].
 * @returns y [B, C, L].
 * @throws ShapeError if u's C or L differ from the spectrum's, or skip is not [C].
 * @example
 * convWithSpectrum(u, convKernelSpectrum(kf, kr), d); // same as bidirectionalConv(u, kf, kr, d)
 */
export function convWithSpectrum(u: Tensor3D, spectrum: ConvKernelSpectrum, skip?: Tensor1D): Tensor3D {
  const op = 'convWithSpectrum';
  checkTensor(op, 'u', u);
  checkRank(op, 'u', u, 3, '[B, C, L]');
  const [batch, channels, length] = u.shape;
  if (channels !== spectrum.channels || length !== spectrum.length) {
    throw new ShapeError(`${op}: u must have C = ${spectrum.channels} and L = ${spectrum.length} (the spectrum's), got ${shapeText(u.shape)}`, { parameter: 'u', value: u.shape });
  }
  checkSkip(op, skip, channels);
  const fused = webGpuConvWithSpectrum(u, spectrum, skip); // spectra made on webgpu
  if (fused !== undefined) return fused;
  if (isWasmSpectrum(spectrum.re)) {
    checkWasmSpectrumBackend(op);
    return wasmConvWithSpectrum(u, spectrum.re, skip); // wasm FFT kernels (backends/wasm-fft-conv.ts)
  }
  return tf.tidy(
    () =>
      byChannelChunks(batch, channels, spectrum.plan.n, [u], (c0, cs, [uc]) => {
        const { plan } = spectrum;
        const { n } = plan;
        const { digits } = rowLayout(plan, length);
        const product = tf.tidy(() => spectrumProduct(uc as Tensor3D, plan, chunkSpectrum(spectrum, c0, cs)));
        const flat = { re: tf.reshape(product.re, [-1, n]), im: tf.reshape(product.im, [-1, n]) };
        tf.dispose([product.re, product.im]);
        const y = inverseDft(flat, plan, { realOutput: true, digits, consume: true }) as Tensor; // [B·Cc, width]
        return [finishRows(y, uc, length, chunkSkip(skip, c0, cs))];
      })[0] as Tensor3D,
  );
}
