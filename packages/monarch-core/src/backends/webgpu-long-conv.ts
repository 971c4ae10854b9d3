// The long convolution y = irfft(rfft(u, N) · K̂)[:L] + D⊙u as fused WGSL kernels for tfjs-backend-webgpu.
//
// Stock tfjs runs the Monarch-DFT convolution of fft-conv.ts as ~100 small kernels (matMuls, transposes, twiddle
// and complex products); on a GPU each costs ~0.3 ms of host time, which is what kept M2-BERT host-bound. Here one
// workgroup holds a whole row in workgroup memory and one dispatch does the rest:
//
//   1. the real row x (L samples, zero-padded to N = 2M ≥ 2L, M a power of two) is read as M complex values
//      z[m] = x[2m] + i·x[2m+1] (the interleaved row is exactly that layout: no shuffling);
//   2. a radix-2 decimation-in-frequency FFT of z leaves Z in bit-reversed order in place;
//   3. each thread takes the frequency pairs (k, M−k) and untangles the real signal's spectrum
//      X[k] = E[k] + ω_N^k·O[k], E = (Z[k] + Z̄[M−k])/2, O = (Z[k] − Z̄[M−k])/2i (k = 0…M, X[M] included),
//      multiplies by the kernel spectrum K̂[k] (conjugated for the gradient), and folds the product Y back into
//      the half-length form W[k] = (Y[k] + Ȳ[M−k]) + i·ω_N^{−k}·(Y[k] − Ȳ[M−k]) of a real inverse transform;
//   4. a radix-2 decimation-in-time inverse FFT (bit-reversed in, natural out) gives y[2m] + i·y[2m+1] = IFFT(W)[m],
//      and the first L samples are written with the skip term D⊙u added.
// No permutation is ever materialised: the bit-reversed order of step 2 is the input order of step 4.
//
// Three kernels:
//   M2FusedLongConv        u [B, C, L] × K̂ [C, M+1, 2] (+ D [C]) → y [B, C, L]; with `conjugate`, the input
//                          gradient du = corr(dy, k) + D⊙dy from the same spectrum.
//   M2FusedConvSpectrum    kernels → K̂ [C, M+1, 2]: the kernel row on the N-point circle (kf at lags 0…, kr or a
//                          kernel longer than L at negative lags) transformed the same way; only k = 0…M is kept.
//   M2FusedConvKernelGrad  Σ_b corr(dy_b, u_b) per channel (each workgroup loops over the batch, accumulating
//                          Ĝ·Ū in registers), inverse-transformed and scattered straight into the kernels' gradient
//                          rows, plus dD = Σ_{b,n} dy⊙u.
// A row must fit in workgroup memory: 8·M bytes (M = 4096, L ≤ 4096, needs 32 KiB, which SwiftShader and an H200
// grant). Longer rows take the same kernels as three "four-step" passes through a scratch tensor
// (webgpu-long-conv-four-step.ts); other backends, non-float32 inputs and M2_FUSED_LONG_CONV=0 take fft-conv.ts's
// Monarch path.
import * as tf from '@tensorflow/tfjs-core';
import type { KernelConfig, KernelFunc, Tensor, Tensor1D, Tensor2D, Tensor3D, TensorInfo } from '@tensorflow/tfjs-core';
import type { DftPlan } from '../dft-plan.js';
import { BackendError } from '../errors.js';
import { longConvInputs, unpackLongConvArgs } from '../long-conv-inputs.js';
import { FOUR_STEP_THREADS, fourStepPlan, fourStepShader, kernelGradRegisters } from './webgpu-long-conv-four-step.js';
import type { FourStepPass, FourStepPlan } from './webgpu-long-conv-four-step.js';
import { envSetting, fusedKernelsOff } from '../env.js';
import { kernelTapFunction, placedKernelFunction, spectrumProduct, WGSL_COMPLEX, WGSL_REAL_PAIRS } from './webgpu-wgsl-common.js';
import { registerWebGpuKernels } from './webgpu-kernels.js';
import { webGpuLimits, workgroupStorageBytes } from './webgpu-limits.js';

/** Names of the fused long-convolution kernels (registered for the webgpu backend). */
export const LONG_CONV_KERNELS = {
  conv: 'M2FusedLongConv',
  spectrum: 'M2FusedConvSpectrum',
  kernelGrad: 'M2FusedConvKernelGrad',
} as const;

/**
 * The spectrum of a long-convolution kernel as the fused kernels store it: the kernel's real N-point DFT at
 * k = 0…M (N = 2M), as [C, M+1, 2] (re, im interleaved). A `ConvKernelSpectrum` made on webgpu carries this one
 * tensor as both its `re` and its `im` (rank 3 tells it apart from the Monarch layout's rank-1 [C·N] tensors).
 */
export interface FusedSpectrumLayout {
  /** Half the transform size: N = 2M ≥ 2L, M a power of two. */
  m: number;
  /** The packed spectrum [C, M+1, 2]. */
  packed: Tensor3D;
}

/**
 * Sizes of the fused transform for sequence length L: M = the power of two ≥ L, N = 2M, and the workgroup memory
 * one row needs (8·M bytes).
 *
 * @param length - L ≥ 1.
 * @returns `{ m, n, bytes }`.
 * @example
 * fusedConvSize(4096); // → { m: 4096, n: 8192, bytes: 32768 }
 */
export function fusedConvSize(length: number): { m: number; n: number; bytes: number } {
  let m = 1;
  while (m < length) m *= 2;
  return { m, n: 2 * m, bytes: 8 * m };
}

/** Threads per workgroup of the one-workgroup-per-row kernels for half-length M. */
export function threadsFor(m: number): number {
  return Math.min(workgroupThreadLimit(), Math.max(32, m >> 1));
}

/**
 * Most threads per workgroup the row kernels use: the device's limit (1024 on an H200; WebGPU guarantees 256),
 * at most 1024, or `M2_FUSED_THREADS` when set (for comparisons). More threads per row keep an SM busy when only a
 * few 32 KiB rows fit in its shared memory at once.
 */
function workgroupThreadLimit(): number {
  const requested = Number(envSetting('M2_FUSED_THREADS') ?? NaN);
  const limits = tf.getBackend() === 'webgpu' ? webGpuLimits() : undefined;
  let limit = Math.min(1024, limits?.maxComputeInvocationsPerWorkgroup ?? 256, limits?.maxComputeWorkgroupSizeX ?? 256);
  if (Number.isInteger(requested) && requested >= 32) limit = Math.min(limit, requested);
  return 2 ** Math.floor(Math.log2(limit));
}

/** The kinds of shader this file generates. */
export type LongConvShaderKind = 'conv' | 'spectrum' | 'kernelGrad';

/** Compile-time switches of a shader. */
export interface LongConvShaderOptions {
  /** conv: multiply by conj(K̂) (the input gradient). */
  conjugate?: boolean;
  /** conv: add D⊙x; kernelGrad: also output dD. */
  skip?: boolean;
  /** spectrum: a reverse kernel kr is an input. */
  reverse?: boolean;
}

/** WGSL of the forward FFT's stages for M = 2^log: radix-2 stages s and s−1 fused per thread, a radix-2 stage left. */
function forwardStages(log: number, m: number, threads: number): string {
  const parts: string[] = [];
  let s = log;
  for (; s >= 2; s -= 2) {
    const span = 1 << (s - 1); // S: stage s pairs (x, x + S); stage s − 1 pairs (x, x + S/2)
    const half = span >> 1;
    parts.push(`
    for (var j = t; j < ${m >> 2}u; j = j + ${threads}u) { // stages ${s} and ${s - 1}
      let pos = j & ${half - 1}u;
      let base = ((j >> ${s - 2}u) << ${s}u) | pos;
      let a0 = m2buf[base];
      let a1 = m2buf[base + ${half}u];
      let a2 = m2buf[base + ${span}u];
      let a3 = m2buf[base + ${span + half}u];
      let w = m2Tw(pos << ${log + 1 - s}u);
      let b0 = a0 + a2;
      let b2 = m2Mul(a0 - a2, w);
      let b1 = a1 + a3;
      let e = m2Mul(a1 - a3, w);
      let b3 = vec2<f32>(e.y, -e.x); // ·ω_{2S}^{S/2} = −i
      let w2 = m2Tw(pos << ${log + 2 - s}u);
      m2buf[base] = b0 + b1;
      m2buf[base + ${half}u] = m2Mul(b0 - b1, w2);
      m2buf[base + ${span}u] = b2 + b3;
      m2buf[base + ${span + half}u] = m2Mul(b2 - b3, w2);
    }
    workgroupBarrier();`);
  }
  if (s === 1) {
    parts.push(`
    for (var j = t; j < ${m >> 1}u; j = j + ${threads}u) { // stage 1
      let a = m2buf[2u * j];
      let b = m2buf[2u * j + 1u];
      m2buf[2u * j] = a + b;
      m2buf[2u * j + 1u] = a - b;
    }
    workgroupBarrier();`);
  }
  return parts.join('');
}

/** WGSL of the inverse FFT's stages for M = 2^log: radix-2 stages s and s+1 fused per thread, a radix-2 stage left. */
function inverseStages(log: number, m: number, threads: number): string {
  const parts: string[] = [];
  let s = 1;
  for (; s + 1 <= log; s += 2) {
    const span = 1 << (s - 1); // S: stage s pairs (x, x + S); stage s + 1 pairs (x, x + 2S)
    parts.push(`
    for (var j = t; j < ${m >> 2}u; j = j + ${threads}u) { // stages ${s} and ${s + 1}
      let pos = j & ${span - 1}u;
      let base = ((j >> ${s - 1}u) << ${s + 1}u) | pos;
      let a0 = m2buf[base];
      let a1 = m2buf[base + ${span}u];
      let a2 = m2buf[base + ${2 * span}u];
      let a3 = m2buf[base + ${3 * span}u];
      let w1 = m2Conj(m2Tw(pos << ${log + 1 - s}u));
      let t1 = m2Mul(a1, w1);
      let b0 = a0 + t1;
      let b1 = a0 - t1;
      let t3 = m2Mul(a3, w1);
      let b2 = a2 + t3;
      let b3 = a2 - t3;
      let w2 = m2Conj(m2Tw(pos << ${log - s}u));
      let t2 = m2Mul(b2, w2);
      let e = m2Mul(b3, w2);
      let t4 = vec2<f32>(-e.y, e.x); // ·conj(ω_{4S}^{S}) = i
      m2buf[base] = b0 + t2;
      m2buf[base + ${2 * span}u] = b0 - t2;
      m2buf[base + ${span}u] = b1 + t4;
      m2buf[base + ${3 * span}u] = b1 - t4;
    }
    workgroupBarrier();`);
  }
  if (s === log) {
    const span = 1 << (s - 1);
    parts.push(`
    for (var j = t; j < ${m >> 1}u; j = j + ${threads}u) { // stage ${s}
      let a = m2buf[j];
      let b = m2Mul(m2buf[j + ${span}u], m2Conj(m2Tw(j << 1u)));
      m2buf[j] = a + b;
      m2buf[j + ${span}u] = a - b;
    }
    workgroupBarrier();`);
  }
  return parts.join('');
}

/**
 * The helpers every one-workgroup-per-row kernel shares (for half-length M): the row buffer `m2buf` (M complex
 * values as vec2: one 8-byte shared-memory access per complex read or write; real sample j is m2buf[j/2][j%2]),
 * complex helpers, the twiddle read `m2Tw` (from input `W`), bit reversal, the forward (DIF) and inverse (DIT)
 * FFTs over the whole row, and the real-signal untangling `m2RealSpectrum` / `m2StoreInverse`.
 *
 * @param m - Half the transform size (a power of two).
 * @returns WGSL declarations.
 */
export function singlePassCommon(m: number): string {
  const log = Math.round(Math.log2(m));
  const n = 2 * m;
  const threads = threadsFor(m);
  return `
  var<workgroup> m2buf : array<vec2<f32>, ${m}>;
  const m2Scale : f32 = ${1 / n};

  fn m2Get(i : u32) -> vec2<f32> { return m2buf[i]; }
  fn m2Set(i : u32, v : vec2<f32>) { m2buf[i] = v; }
  // Real sample j of the interleaved row (reads only: a thread writes whole vec2 values, never one component).
  fn m2Real(j : u32) -> f32 {
    let v = m2buf[j >> 1u];
    return select(v.x, v.y, (j & 1u) == 1u);
  }
  ${WGSL_COMPLEX}${WGSL_REAL_PAIRS}
  fn m2Rev(k : u32) -> u32 { return ${log === 0 ? '0u' : `reverseBits(k) >> ${32 - log}u`}; }

  // Decimation in frequency over the M complex values (natural order in, bit-reversed order out): radix-2 stages
  // taken two at a time (each thread does a 4-point group: half the barriers and shared-memory round trips).
  fn m2Forward(t : u32) {${forwardStages(log, m, threads)}
  }

  // Decimation in time with conjugate twiddles (bit-reversed order in, natural order out, unscaled), likewise.
  fn m2Inverse(t : u32) {${inverseStages(log, m, threads)}
  }

  // X[k] and X[M−k] of the real 2M-point signal whose half-length transform Z sits bit-reversed in m2buf.
  fn m2RealSpectrum(k : u32) -> M2Pair { return m2RealPair(m2Rev(k), m2Rev((${m}u - k) & ${m - 1}u), k); }

  // Stores the half-length inverse input W[k], W[M−k] (bit-reversed) of the hermitian spectrum Y[k], Y[M−k].
  fn m2StoreInverse(k : u32, yk : vec2<f32>, ym : vec2<f32>) { m2StorePair(m2Rev(k), m2Rev((${m}u - k) & ${m - 1}u), k, yk, ym); }
  `;
}

/**
 * WGSL loop that loads one real row of `len` samples into the workgroup buffer `m2buf` as M complex values,
 * z[q] = x[2q] + i·x[2q+1], zero past `len`. Expects `t` (the local index) and `len` in scope.
 *
 * @param source - The storage buffer the row is read from (e.g. `X`).
 * @param base - WGSL expression of the row's first sample index in `source`.
 * @param m - Half the transform size (the number of complex slots).
 * @param threads - Workgroup size.
 * @param also - Optional WGSL statement run after each loaded sample, given its value and index expressions.
 * @returns The WGSL snippet.
 */
function loadRealRow(source: string, base: string, m: number, threads: number,
  also?: (value: string, index: string) => string): string {
  const load = (lane: string, j: string): string =>
    `v.${lane} = ${source}[${base} + ${j}];${also ? ` ${also(`v.${lane}`, `${base} + ${j}`)}` : ''}`;
  return `for (var q = t; q < ${m}u; q = q + ${threads}u) {
      let j = 2u * q;
      var v = vec2<f32>(0.0);
      if (j < len) { ${load('x', 'j')} }
      if (j + 1u < len) { ${load('y', 'j + 1u')} }
      m2buf[q] = v;
    }`;
}

/**
 * WGSL (tfjs-webgpu program user code) of one fused kernel for half-length M = 2^log. Inputs by kind:
 * conv `X, K, W (, D)`; spectrum `KF (, KR), W`; kernelGrad `U, G, W`. `W` holds ω_N^j = (cos, −sin)(2πj/N) for
 * j < M. Uniforms: rows, channels, seqLen, kLen, rLen, batch.
 *
 * @param kind - Which kernel.
 * @param m - Half the transform size (a power of two).
 * @param options - Compile-time switches.
 * @returns The shader body.
 * @example
 * longConvShader('conv', 1024, { skip: true }).includes('fn main()'); // → true
 */
export function longConvShader(kind: LongConvShaderKind, m: number, options: LongConvShaderOptions = {}): string {
  const n = 2 * m;
  const threads = threadsFor(m);
  const halfM = m >> 1;
  const pairsPerThread = Math.ceil((halfM + 1) / threads);
  const common = singlePassCommon(m);
  // The workgroup's row (or channel): 2-D dispatch grids hold more than 65535 rows.
  const rowIndex = 'workgroupId.x + workgroupId.y * numWorkgroups.x';
  // One workgroup per channel (spectrum, kernelGrad): the thread, the channel and the lengths.
  const channelPrologue = `let t = localIndex;
    let channels = u32(uniforms.channels);
    let r = ${rowIndex};
    let c = min(r, channels - 1u);
    let len = u32(uniforms.seqLen);
    let kLen = u32(uniforms.kLen);
    let rLen = u32(uniforms.rLen);`;

  if (kind === 'conv') {
    const k = options.conjugate ? 'm2Conj(vec2<f32>(K[2u * i], K[2u * i + 1u]))' : 'vec2<f32>(K[2u * i], K[2u * i + 1u])';
    return `${common}
  fn m2K(i : u32) -> vec2<f32> { return ${k}; }

  fn main() {
    let t = localIndex;
    let rows = u32(uniforms.rows);
    let r = ${rowIndex};
    let row = min(r, rows - 1u);
    let c = row % u32(uniforms.channels);
    let len = u32(uniforms.seqLen);
    let base = row * len;
    ${loadRealRow('X', 'base', m, threads)}
    workgroupBarrier();
    m2Forward(t);
    let kBase = c * ${m + 1}u;
    ${spectrumProduct(m, threads, (i) => `m2K(${i})`)}
    workgroupBarrier();
    m2Inverse(t);
    ${options.skip ? 'let dc = D[c];' : ''}
    if (r < rows) {
      for (var j = t; j < len; j = j + ${threads}u) {
        result[base + j] = m2Real(j) * m2Scale${options.skip ? ' + dc * X[base + j]' : ''};
      }
    }
  }
  `;
  }

  if (kind === 'spectrum') {
    return `${common}${kernelTapFunction(n)}${placedKernelFunction(options.reverse === true)}

  fn main() {
    ${channelPrologue}
    for (var q = t; q < ${m}u; q = q + ${threads}u) { m2buf[q] = vec2<f32>(m2Placed(c, 2u * q, len, kLen, rLen), m2Placed(c, 2u * q + 1u, len, kLen, rLen)); }
    workgroupBarrier();
    m2Forward(t);
    if (r < channels) {
      for (var p = t; p <= ${halfM}u; p = p + ${threads}u) {
        let x = m2RealSpectrum(p);
        let o = (c * ${m + 1}u + p) * 2u;
        result[o] = x.a.x;
        result[o + 1u] = x.a.y;
        if (p != ${m}u - p) {
          let o2 = (c * ${m + 1}u + ${m}u - p) * 2u;
          result[o2] = x.b.x;
          result[o2 + 1u] = x.b.y;
        }
      }
    }
  }
  `;
  }

  // kernelGrad: Σ_b Ĝ_b·conj(Û_b) accumulated per thread for its frequency pairs p = t + i·threads.
  const skip = options.skip === true;
  // The frequency pairs this thread owns, x = (X[p], X[M − p]) of the row in the buffer, each given to `a` and `b`.
  const eachOwnPair = (a: string, b: string): string => `for (var i = 0u; i < ${pairsPerThread}u; i = i + 1u) {
        let p = t + i * ${threads}u;
        if (p <= ${halfM}u) {
          let x = m2RealSpectrum(p);
          ${a}
          ${b}
        }
      }`;
  return `${common}
  ${skip ? `var<workgroup> m2red : array<f32, ${threads}>;` : ''}

  fn main() {
    ${channelPrologue}
    let batch = u32(uniforms.batch);
    ${kernelGradRegisters(pairsPerThread)}
    var dsum = 0.0;
    for (var b = 0u; b < batch; b = b + 1u) {
      let base = (b * channels + c) * len;
      ${loadRealRow('U', 'base', m, threads)}
      workgroupBarrier();
      m2Forward(t);
      ${eachOwnPair('ua[i] = x.a;', 'ub[i] = x.b;')}
      workgroupBarrier();
      ${loadRealRow('G', 'base', m, threads, skip ? (v, at) => `dsum = dsum + ${v} * U[${at}];` : undefined)}
      workgroupBarrier();
      m2Forward(t);
      ${eachOwnPair('accA[i] = accA[i] + m2Mul(x.a, m2Conj(ua[i]));', 'accB[i] = accB[i] + m2Mul(x.b, m2Conj(ub[i]));')}
      workgroupBarrier();
    }
    for (var i = 0u; i < ${pairsPerThread}u; i = i + 1u) {
      let p = t + i * ${threads}u;
      if (p <= ${halfM}u) { m2StoreInverse(p, accA[i], accB[i]); }
    }
    workgroupBarrier();
    m2Inverse(t);
    let width = kLen + rLen + ${skip ? 1 : 0}u;
    if (r < channels) {
      for (var j = t; j < kLen; j = j + ${threads}u) {
        var pos = j;
        if (j >= len) { pos = j + ${n}u - 2u * len; }
        result[c * width + j] = m2Real(pos) * m2Scale;
      }
      for (var j = t; j < rLen; j = j + ${threads}u) { result[c * width + kLen + j] = m2Real(${n - 1}u - j) * m2Scale; }
    }
    ${skip ? `m2red[t] = dsum;
    workgroupBarrier();
    if (t == 0u && r < channels) {
      var total = 0.0;
      for (var i = 0u; i < ${threads}u; i = i + 1u) { total = total + m2red[i]; }
      result[c * width + width - 1u] = total;
    }` : ''}
  }
  `;
}

/** A tfjs-webgpu program (duck-typed WebGPUProgram) of one fused kernel (also used by webgpu-mixer.ts). */
export class LongConvProgram {
  readonly uniforms: string = 'rows : i32, channels : i32, seqLen : i32, kLen : i32, rLen : i32, batch : i32,';
  readonly workgroupSize: [number, number, number];
  readonly dispatchLayout: { x: number[]; y: number[] };
  readonly dispatch: [number, number, number];

  constructor(
    readonly variableNames: string[],
    readonly outputShape: number[],
    threads: number,
    workgroups: number,
    readonly shaderKey: string,
    private readonly code: () => string,
  ) {
    this.workgroupSize = [threads, 1, 1];
    // Not a flat layout (tfjs would then call main with a global index); the kernels index rows themselves.
    this.dispatchLayout = { x: [outputShape.length - 1], y: outputShape.slice(0, -1).map((_, i) => i) };
    const x = Math.min(workgroups, 65535);
    this.dispatch = [x, Math.ceil(workgroups / x), 1];
  }

  getUserCode(): string {
    // tfjs calls main with a global index when the layout has no y part (rank-1 outputs); the kernels ignore it.
    return this.outputShape.length > 1 ? this.code() : this.code().replace('fn main() {', 'fn main(_globalIndex : i32) {');
  }
}

/** A one-workgroup-per-row kernel. */
function singlePassProgram(kind: LongConvShaderKind, variableNames: string[], outputShape: number[], m: number,
  options: LongConvShaderOptions, workgroups: number): LongConvProgram {
  const flags = `${options.conjugate ? 'c' : ''}${options.skip ? 's' : ''}${options.reverse ? 'r' : ''}`;
  return new LongConvProgram(variableNames, outputShape, threadsFor(m), workgroups, `m2LongConv_${kind}_${m}_t${threadsFor(m)}_${flags}`,
    () => longConvShader(kind, m, options));
}

/** One pass of the four-step kernels. */
function fourStepProgram(which: FourStepPass, variableNames: string[], outputShape: number[], plan: FourStepPlan,
  workgroups: number): LongConvProgram {
  const key = `m2LongConv4_${plan.m}_${plan.m1}_${plan.m2}_${plan.columns}_${Object.values(which).join('_')}`;
  return new LongConvProgram(variableNames, outputShape, FOUR_STEP_THREADS, workgroups, key, () => fourStepShader(plan, which));
}

/** The parts of tfjs-backend-webgpu's backend used here. */
export interface WebGpuBackendLike {
  runWebGPUProgram(program: object, inputs: TensorInfo[], outputDtype: tf.DataType,
    uniforms?: Array<{ type: string; data: number[] }>): TensorInfo;
  device?: GPUDevice;
}

/** Runs a program with the uniforms rows, channels, seqLen, kLen, rLen, batch. */
export function runProgram(backend: object, program: LongConvProgram, inputs: TensorInfo[],
  sizes: { rows?: number; channels: number; seqLen: number; kLen?: number; rLen?: number; batch?: number }): TensorInfo {
  const values = [sizes.rows ?? 0, sizes.channels, sizes.seqLen, sizes.kLen ?? 0, sizes.rLen ?? 0, sizes.batch ?? 0];
  return (backend as WebGpuBackendLike).runWebGPUProgram(program, inputs, 'float32', values.map((v) => ({ type: 'int32', data: [v] })));
}

/** Attributes of the kernels. `m1` > 0 selects the four-step passes (m1, m2, columns: the {@link FourStepPlan}). */
interface LongConvAttrs {
  m: number;
  m1: number;
  m2: number;
  columns: number;
  conjugate?: boolean;
  skip?: boolean;
  length?: number;
  kernelLength?: number;
  reverseLength?: number;
}

function fourStepOf(attrs: LongConvAttrs): FourStepPlan | undefined {
  return attrs.m1 > 0 ? { m: attrs.m, m1: attrs.m1, m2: attrs.m2, columns: attrs.columns } : undefined;
}

/** Runs one four-step pass with the backend and frees nothing (the caller frees scratch tensors). */
function pass(backend: object, which: FourStepPass, plan: FourStepPlan, inputs: Array<[string, TensorInfo]>, outputShape: number[],
  workgroups: number, sizes: Parameters<typeof runProgram>[3]): TensorInfo {
  const program = fourStepProgram(which, inputs.map(([name]) => name), outputShape, plan, workgroups);
  return runProgram(backend, program, inputs.map(([, t]) => t), sizes);
}

function disposeInfo(backend: object, info: TensorInfo): void {
  (backend as { disposeData(dataId: object, force?: boolean): boolean }).disposeData(info.dataId, true);
}

const kernelFuncs: Record<keyof typeof LONG_CONV_KERNELS, KernelFunc> = {
  conv: ({ inputs, backend, attrs }) => {
    const { x, k, w, d } = inputs as { x: TensorInfo; k: TensorInfo; w: TensorInfo; d?: TensorInfo };
    const a = attrs as unknown as LongConvAttrs;
    const [batch, channels, seqLen] = x.shape;
    const rows = batch * channels;
    const skip = d !== undefined;
    const plan = fourStepOf(a);
    if (plan === undefined) {
      const program = singlePassProgram('conv', skip ? ['X', 'K', 'W', 'D'] : ['X', 'K', 'W'], [batch, channels, seqLen], a.m, { conjugate: a.conjugate, skip }, rows);
      return runProgram(backend, program, skip ? [x, k, w, d] : [x, k, w], { rows, channels, seqLen });
    }
    const scratch = [rows, plan.m1, plan.m2, 2];
    const sizes = { rows, channels, seqLen };
    const columns = pass(backend, { pass: 'columns', source: 'signal' }, plan, [['X', x], ['W', w]], scratch, rows * (plan.m2 / plan.columns), sizes);
    const product = pass(backend, { pass: 'rows', mode: 'conv', conjugate: a.conjugate === true }, plan, [['S', columns], ['K', k], ['W', w]], scratch, rows * (plan.m1 / 2 + 1), sizes);
    disposeInfo(backend, columns);
    const inverseInputs: Array<[string, TensorInfo]> = skip ? [['S', product], ['W', w], ['X', x], ['D', d]] : [['S', product], ['W', w]];
    const y = pass(backend, { pass: 'columnsInverse', mode: 'signal', skip }, plan, inverseInputs, [batch, channels, seqLen], rows * (plan.m2 / plan.columns), sizes);
    disposeInfo(backend, product);
    return y;
  },
  spectrum: ({ inputs, backend, attrs }) => {
    const { kf, kr, w } = inputs as { kf: TensorInfo; kr?: TensorInfo; w: TensorInfo };
    const a = attrs as unknown as LongConvAttrs;
    const [channels, kLen] = kf.shape;
    const reverse = kr !== undefined;
    const sizes = { rows: channels, channels, seqLen: a.length!, kLen, rLen: reverse ? kr.shape[1] : 0 };
    const plan = fourStepOf(a);
    if (plan === undefined) {
      const program = singlePassProgram('spectrum', reverse ? ['KF', 'KR', 'W'] : ['KF', 'W'], [channels, a.m + 1, 2], a.m, { reverse }, channels);
      return runProgram(backend, program, reverse ? [kf, kr, w] : [kf, w], sizes);
    }
    const kernels: Array<[string, TensorInfo]> = reverse ? [['KF', kf], ['KR', kr], ['W', w]] : [['KF', kf], ['W', w]];
    const columns = pass(backend, { pass: 'columns', source: 'kernel', reverse }, plan, kernels, [channels, plan.m1, plan.m2, 2], channels * (plan.m2 / plan.columns), sizes);
    const packed = pass(backend, { pass: 'rows', mode: 'spectrum' }, plan, [['S', columns], ['W', w]], [channels, a.m + 1, 2], channels * (plan.m1 / 2 + 1), sizes);
    disposeInfo(backend, columns);
    return packed;
  },
  kernelGrad: ({ inputs, backend, attrs }) => {
    const { u, g, w } = inputs as { u: TensorInfo; g: TensorInfo; w: TensorInfo };
    const a = attrs as unknown as LongConvAttrs;
    const { skip = false, kernelLength = 0, reverseLength = 0 } = a;
    const [batch, channels, seqLen] = u.shape;
    const plan = fourStepOf(a);
    if (plan === undefined) {
      const width = kernelLength + reverseLength + (skip ? 1 : 0);
      const program = singlePassProgram('kernelGrad', ['U', 'G', 'W'], [channels, width], a.m, { skip }, channels);
      return runProgram(backend, program, [u, g, w], { channels, seqLen, kLen: kernelLength, rLen: reverseLength, batch });
    }
    // Four-step: dD is left to the caller (the scratch passes never see u and dy side by side).
    const rows = batch * channels;
    const scratch = [rows, plan.m1, plan.m2, 2];
    const sizes = { rows, channels, seqLen, kLen: kernelLength, rLen: reverseLength, batch };
    const su = pass(backend, { pass: 'columns', source: 'signal' }, plan, [['X', u], ['W', w]], scratch, rows * (plan.m2 / plan.columns), sizes);
    const sg = pass(backend, { pass: 'columns', source: 'signal' }, plan, [['X', g], ['W', w]], scratch, rows * (plan.m2 / plan.columns), sizes);
    const correlation = pass(backend, { pass: 'rows', mode: 'kernelGrad' }, plan, [['SU', su], ['SG', sg], ['W', w]], [channels, plan.m1, plan.m2, 2], channels * (plan.m1 / 2 + 1), sizes);
    disposeInfo(backend, su);
    disposeInfo(backend, sg);
    const out = pass(backend, { pass: 'columnsInverse', mode: 'kernelGrad' }, plan, [['S', correlation], ['W', w]], [channels, kernelLength + reverseLength],
      channels * (plan.m2 / plan.columns), { ...sizes, rows: channels });
    disposeInfo(backend, correlation);
    return out;
  },
};

/** The fused long-convolution kernels, for the webgpu backend (registered by registerWebGpuKernels). */
export const longConvKernelConfigs: KernelConfig[] = (Object.keys(LONG_CONV_KERNELS) as Array<keyof typeof LONG_CONV_KERNELS>)
  .map((kind) => ({ kernelName: LONG_CONV_KERNELS[kind], backendName: 'webgpu', kernelFunc: kernelFuncs[kind] }));

/** ω_N^j = (cos, −sin)(2πj/N) for j < count, interleaved, one tensor per backend instance, N and count. */
const twiddleTables = new WeakMap<object, Map<string, Tensor1D>>();

/** The kept table of ω_N^j for j < count (input `W` of the kernels). */
export function twiddleTable(n: number, count: number): Tensor1D {
  const backend = tf.backend();
  let tables = twiddleTables.get(backend);
  if (tables === undefined) {
    tables = new Map();
    twiddleTables.set(backend, tables);
  }
  const key = `${n}:${count}`;
  let table = tables.get(key);
  if (table === undefined || table.isDisposed) {
    const values = new Float32Array(2 * count);
    for (let j = 0; j < count; j++) {
      const angle = (2 * Math.PI * j) / n;
      values[2 * j] = Math.cos(angle);
      values[2 * j + 1] = -Math.sin(angle);
    }
    table = tf.keep(tf.tensor1d(values, 'float32'));
    tables.set(key, table);
  }
  return table;
}

/** How a length-L convolution runs: one workgroup per row, or the four-step passes. */
interface FusedPlan {
  m: number;
  fourStep?: FourStepPlan;
  /** Most rows one dispatch may take: a four-step scratch tensor [rows, M1, M2, 2] fits one storage binding. */
  maxRows: number;
}

let rowBytesOverride: number | undefined;
let bindingBytesOverride: number | undefined;

/**
 * Test hook: pretends the device grants only `bytes` of workgroup memory per workgroup (so that short rows take the
 * four-step passes); undefined restores the device's limit.
 *
 * @param bytes - Workgroup memory to plan with, or undefined.
 * @example
 * setFusedConvWorkgroupBytes(1024); // rows with M > 128 now take the four-step passes
 */
export function setFusedConvWorkgroupBytes(bytes: number | undefined): void {
  rowBytesOverride = bytes;
}

/**
 * Test hook: pretends the device's storage bindings hold only `bytes` (so that small four-step convolutions are
 * split into row blocks); undefined restores the device's limit.
 *
 * @param bytes - Largest storage binding to plan with, or undefined.
 * @example
 * setFusedConvBindingBytes(1024); // four-step scratch tensors of more than 1 KiB are split
 */
export function setFusedConvBindingBytes(bytes: number | undefined): void {
  bindingBytesOverride = bytes;
}

/**
 * The plan of a length-L convolution on the active backend, or undefined when the fused kernels do not apply:
 * the backend is not webgpu, `M2_FUSED_LONG_CONV=0` (unless not `optional`), or an input is not float32.
 */
function fusedPlan(length: number, tensors: Array<Tensor | undefined>, optional = true): FusedPlan | undefined {
  if (tf.getBackend() !== 'webgpu') return undefined;
  if (optional && fusedKernelsOff()) return undefined;
  if (tensors.some((t) => t !== undefined && t.dtype !== 'float32')) return undefined;
  const rowBytes = rowBytesOverride ?? workgroupStorageBytes();
  const { m, bytes } = fusedConvSize(length);
  if (bytes <= rowBytes) return { m, maxRows: Infinity };
  const bindingBytes = bindingBytesOverride ?? webGpuLimits()?.maxStorageBufferBindingSize ?? 2 ** 27;
  return { m, fourStep: fourStepPlan(m, rowBytes), maxRows: Math.floor(bindingBytes / (8 * m)) };
}

/** Rows [b0, b0 + bn) × channels [c0, c0 + cn) of a [B, C, L] convolution: one dispatch of a {@link rowBlocks} plan. */
export interface RowBlock {
  b0: number;
  bn: number;
  c0: number;
  cn: number;
}

/**
 * Splits the B·C rows of a [B, C, L] convolution into blocks of at most `maxRows` rows: runs of whole batch
 * entries when one entry's C rows fit, else channel ranges of one batch entry at a time. Each inner list covers
 * the batch range of its blocks and concatenates along channels.
 *
 * @param batch - B.
 * @param channels - C.
 * @param maxRows - Most rows per block (≥ 1).
 * @returns The blocks, grouped by batch range, in order.
 * @example
 * rowBlocks(3, 2, 4); // → [[{ b0: 0, bn: 2, c0: 0, cn: 2 }], [{ b0: 2, bn: 1, c0: 0, cn: 2 }]]
 */
export function rowBlocks(batch: number, channels: number, maxRows: number): RowBlock[][] {
  const groups: RowBlock[][] = [];
  if (channels <= maxRows) {
    const bn = Math.floor(maxRows / channels);
    for (let b0 = 0; b0 < batch; b0 += bn) groups.push([{ b0, bn: Math.min(bn, batch - b0), c0: 0, cn: channels }]);
    return groups;
  }
  for (let b0 = 0; b0 < batch; b0++) {
    const group: RowBlock[] = [];
    for (let c0 = 0; c0 < channels; c0 += maxRows) group.push({ b0, bn: 1, c0, cn: Math.min(maxRows, channels - c0) });
    groups.push(group);
  }
  return groups;
}

function planAttrs(plan: FusedPlan): { m: number; m1: number; m2: number; columns: number } {
  const f = plan.fourStep;
  return { m: plan.m, m1: f?.m1 ?? 0, m2: f?.m2 ?? 0, columns: f?.columns ?? 0 };
}

function tableFor(plan: FusedPlan): Tensor1D {
  return twiddleTable(2 * plan.m, plan.fourStep === undefined ? plan.m : 2 * plan.m);
}

/** conv kernel: x [B, C, L] with the packed spectrum (+ D). */
function runConv(x: Tensor, packed: Tensor, plan: FusedPlan, skip: Tensor | undefined, conjugate: boolean): Tensor3D {
  const inputs: tf.NamedTensorMap = { x, k: packed, w: tableFor(plan) };
  if (skip !== undefined) inputs.d = skip;
  return tf.engine().runKernel(LONG_CONV_KERNELS.conv, inputs, { ...planAttrs(plan), conjugate } as unknown as tf.NamedAttrMap) as Tensor3D;
}

/** spectrum kernel: kf [C, Lk] (+ kr [C, L]) → packed [C, M+1, 2]. */
function runSpectrum(kf: Tensor, kr: Tensor | undefined, length: number, plan: FusedPlan): Tensor3D {
  const inputs: tf.NamedTensorMap = { kf, w: tableFor(plan) };
  if (kr !== undefined) inputs.kr = kr;
  return tf.engine().runKernel(LONG_CONV_KERNELS.spectrum, inputs, { ...planAttrs(plan), length } as unknown as tf.NamedAttrMap) as Tensor3D;
}

/**
 * The fused long convolution of fft-conv.ts's `fftConv` / `causalConv` / `bidirectionalConv` (inputs already
 * checked there), differentiable: forward = spectrum + conv (2 dispatches); backward = conv with conj(K̂) for du
 * and one kernel-gradient dispatch for dkernel, dkr and dD (plus the slices that split its rows).
 *
 * Shapes: u [B, C, L] × kernel [C, Lk ≤ 2L] (+ reverseKernel [C, L]) (+ skip [C]) → [B, C, L]
 * @param u - Input, channel-first.
 * @param kernel - Kernel on the 2L circle (lags 0… then negative lags), as in `fftConv`.
 * @param skip - Optional D [C].
 * @param reverseKernel - Optional kr [C, L] (bidirectional: kr[t] at lag −(t+1)).
 * @returns y, or undefined when the fused path does not apply (not webgpu, switched off, not float32, or the
 *   four-step scratch of B·C rows past the storage-binding limit): the caller then runs the Monarch path.
 * @example
 * const y = webGpuLongConv(u, kf, d, kr) ?? bidirectionalConv(u, kf, kr, d);
 */
export function webGpuLongConv(u: Tensor3D, kernel: Tensor2D, skip?: Tensor1D, reverseKernel?: Tensor2D): Tensor3D | undefined {
  const [batch, channels, length] = u.shape;
  const plan = batch * channels === 0 ? undefined : fusedPlan(length, [u, kernel, skip, reverseKernel]);
  // Past the storage-binding limit (four-step scratch of B·C rows) the Monarch path runs instead.
  if (plan === undefined || batch * channels > plan.maxRows) return undefined;
  registerWebGpuKernels();
  const kernelLength = kernel.shape[1];
  const reverseLength = reverseKernel === undefined ? 0 : reverseKernel.shape[1];
  const hasReverse = reverseKernel !== undefined;
  const hasSkip = skip !== undefined;
  const op = tf.customGrad(((...args: unknown[]) => {
    const { u: uIn, kernel: kIn, reverseKernel: krIn, skip: dIn, save } = unpackLongConvArgs(args, hasReverse, hasSkip);
    const packed = runSpectrum(kIn, krIn, length, plan); // [C, M+1, 2]
    const value = runConv(uIn, packed, plan, dIn, false);
    save([uIn, packed, ...(dIn === undefined ? [] : [dIn])]);
    return {
      value,
      gradFunc: (dy: Tensor, saved: Tensor[]) => {
        const [uSaved, packedSaved, dSaved] = saved;
        const du = runConv(dy, packedSaved, plan, dSaved, true);
        // The single-pass kernel also sums dD in its rows; the four-step passes leave it to two stock ops.
        const skipInRows = hasSkip && plan.fourStep === undefined;
        const attrs = { ...planAttrs(plan), skip: skipInRows, kernelLength, reverseLength } as unknown as tf.NamedAttrMap;
        const rows = tf.engine().runKernel(LONG_CONV_KERNELS.kernelGrad, { u: uSaved, g: dy, w: tableFor(plan) }, attrs) as Tensor2D; // [C, Lk + Lr (+ 1)]
        const sizes = [kernelLength, ...(hasReverse ? [reverseLength] : []), ...(skipInRows ? [1] : [])];
        const parts = sizes.length === 1 ? [rows] : tf.split(rows, sizes, 1);
        const grads: Tensor[] = [du, parts[0]];
        if (hasReverse) grads.push(parts[1]);
        if (skipInRows) grads.push(tf.reshape(parts[parts.length - 1], [channels]));
        else if (hasSkip) grads.push(tf.sum(tf.mul(dy, uSaved), [0, 2]));
        return grads;
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return op(...longConvInputs(u, kernel, reverseKernel, skip)) as Tensor3D;
}

/**
 * Whether a kernel spectrum is in the fused kernels' layout ({@link FusedSpectrumLayout}: made on webgpu).
 *
 * @param spectrum - `re` / `im` of a ConvKernelSpectrum.
 * @returns The layout, or undefined for the Monarch layout.
 */
export function fusedSpectrumOf(spectrum: { re: Tensor; im: Tensor }): FusedSpectrumLayout | undefined {
  if (spectrum.re.rank !== 3 || spectrum.re !== spectrum.im) return undefined;
  return { m: spectrum.re.shape[1]! - 1, packed: spectrum.re as Tensor3D };
}

/**
 * `convKernelSpectrum` on webgpu: one dispatch, the fused layout (both `re` and `im` are the packed [C, M+1, 2]
 * tensor). Undefined when the fused path does not apply.
 *
 * Shapes: kf [C, L] (+ kr [C, L]) → spectrum of [C, M+1, 2]
 * @param kf - Forward kernel [C, L].
 * @param kr - Optional reverse kernel [C, L].
 * @param plan - The Monarch plan of L (kept in the spectrum for its consumers' checks).
 * @returns The spectrum, or undefined.
 * @example
 * webGpuConvKernelSpectrum(kf, kr, longConvPlan(L));
 */
export function webGpuConvKernelSpectrum(kf: Tensor2D, kr: Tensor2D | undefined, plan: DftPlan):
  { length: number; channels: number; plan: DftPlan; re: Tensor; im: Tensor } | undefined {
  const [channels, length] = kf.shape;
  const fused = channels === 0 ? undefined : fusedPlan(length, [kf, kr]);
  if (fused === undefined || channels > fused.maxRows) return undefined;
  registerWebGpuKernels();
  const packed = runSpectrum(kf, kr, length, fused);
  return { length, channels, plan, re: packed, im: packed };
}

/**
 * conv kernel over x [B, C, L] in row blocks of at most plan.maxRows rows (each with its channels' spectrum rows and
 * D), concatenated back: one block (no slices) when all rows fit.
 */
function runConvInBlocks(x: Tensor, packed: Tensor, plan: FusedPlan, skip: Tensor | undefined, conjugate: boolean): Tensor3D {
  const [batch, channels] = x.shape as [number, number, number];
  if (batch * channels <= plan.maxRows) return runConv(x, packed, plan, skip, conjugate);
  if (plan.maxRows < 1) throw new BackendError(`long convolution: one row of length ${x.shape[2]} needs a ${8 * plan.m}-byte scratch binding, more than the device allows.`, { parameter: 'u' });
  return tf.tidy(() => {
    const groups = rowBlocks(batch, channels, plan.maxRows).map((group) => {
      const parts = group.map(({ b0, bn, c0, cn }) => {
        const whole = cn === channels;
        return runConv(tf.slice(x, [b0, c0, 0], [bn, cn, -1]), whole ? packed : tf.slice(packed, [c0, 0, 0], [cn, -1, -1]), plan,
          skip === undefined || whole ? skip : tf.slice(skip, [c0], [cn]), conjugate); // [bn, cn, L]
      });
      return parts.length === 1 ? parts[0]! : tf.concat(parts, 1); // [bn, C, L]
    });
    return (groups.length === 1 ? groups[0]! : tf.concat(groups, 0)) as Tensor3D; // [B, C, L]
  });
}

/** conv(x) + D⊙x with a fused-layout spectrum, differentiable with respect to x and D. */
function convWithPacked(op: string, x: Tensor3D, spectrum: FusedSpectrumLayout, skip: Tensor1D | undefined): Tensor3D {
  const { packed } = spectrum;
  const hasSkip = skip !== undefined;
  const plan = fusedPlan(x.shape[2], [x, skip], false);
  if (plan === undefined) throw new BackendError(`${op}: the fused webgpu kernels cannot run this convolution (u ${x.dtype} [${x.shape.join(', ')}]) and its spectrum exists only in their layout; make the spectrum with M2_FUSED_LONG_CONV unset and float32 inputs.`, { parameter: 'u' });
  const run = tf.customGrad(((...args: unknown[]) => {
    const save = args[args.length - 1] as (tensors: Tensor[]) => void;
    const xIn = args[0] as Tensor;
    const dIn = hasSkip ? (args[1] as Tensor) : undefined;
    save(hasSkip ? [xIn, dIn!] : []);
    return {
      value: runConvInBlocks(xIn, packed, plan, dIn, false),
      gradFunc: (dy: Tensor, saved: Tensor[]) => {
        const du = runConvInBlocks(dy, packed, plan, saved[1], true);
        return hasSkip ? [du, tf.sum(tf.mul(dy, saved[0]), [0, 2])] : [du];
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return run(...(hasSkip ? [x, skip] : [x])) as Tensor3D;
}

/** A one-line error for a fused-layout spectrum used off webgpu. */
function foreignSpectrum(op: string): BackendError {
  return new BackendError(`${op}: this kernel spectrum was made by the webgpu kernels (layout [C, M+1, 2]) but the backend is now ${tf.getBackend()}; make the spectrum again with convKernelSpectrum on this backend.`, { parameter: 'spectrum' });
}

/**
 * `convWithSpectrum` for a fused-layout spectrum (one dispatch; differentiable with respect to u and skip).
 *
 * Shapes: u [B, C, L] × spectrum (+ skip [C]) → [B, C, L]
 * @param u - Input, checked by the caller.
 * @param spectrum - From {@link webGpuConvKernelSpectrum} (any other layout: undefined is returned).
 * @param skip - Optional D [C].
 * @returns y, or undefined for a Monarch-layout spectrum.
 * @throws BackendError if the spectrum is in the fused layout but the backend is not webgpu.
 * @example
 * webGpuConvWithSpectrum(u, convKernelSpectrum(kf, kr), d);
 */
export function webGpuConvWithSpectrum(u: Tensor3D, spectrum: { re: Tensor; im: Tensor }, skip?: Tensor1D): Tensor3D | undefined {
  const fused = fusedSpectrumOf(spectrum);
  if (fused === undefined) return undefined;
  if (tf.getBackend() !== 'webgpu') throw foreignSpectrum('convWithSpectrum');
  registerWebGpuKernels();
  return convWithPacked('convWithSpectrum', u, fused, skip);
}

/**
 * `convPairWithSpectra` for fused-layout spectra: two dispatches (each convolution is one).
 *
 * Shapes: a, b [B, C, L] × two spectra (+ skips [C]) → [ya, yb]
 * @param a - First input.
 * @param sa - Its spectrum.
 * @param b - Second input.
 * @param sb - Its spectrum.
 * @param da - Optional skip of the first.
 * @param db - Optional skip of the second.
 * @returns [ya, yb], or undefined for Monarch-layout spectra.
 * @throws BackendError if the spectra are in the fused layout but the backend is not webgpu.
 * @example
 * webGpuConvPairWithSpectra(h, sa, u, sb, da, db);
 */
export function webGpuConvPairWithSpectra(a: Tensor3D, sa: { re: Tensor; im: Tensor }, b: Tensor3D, sb: { re: Tensor; im: Tensor },
  da?: Tensor1D, db?: Tensor1D): [Tensor3D, Tensor3D] | undefined {
  const fa = fusedSpectrumOf(sa);
  const fb = fusedSpectrumOf(sb);
  if (fa === undefined && fb === undefined) return undefined;
  if (fa === undefined || fb === undefined || tf.getBackend() !== 'webgpu') throw foreignSpectrum('convPairWithSpectra');
  registerWebGpuKernels();
  return [convWithPacked('convPairWithSpectra', a, fa, da), convWithPacked('convPairWithSpectra', b, fb, db)];
}
