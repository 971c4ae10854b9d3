// The FFT long convolution on the wasm backend (kernels of wasm-fft-source.ts's module, split over the helper threads
// of wasm-parallel.ts): y = irfft(rfft(u, N)·K̂)[:L] + D⊙u with N = the power of two ≥ 2L, O(N log N) per row
// instead of the Monarch DFT's matMuls. Three tfjs kernels: M2FftSpectrum (kernel rows placed on the N-circle → K̂/(2N)
// in the module's layout [⌈C/4⌉, N/2 + 1, re4 | im4]), M2FftConv (u [B, C, L] × spectrum (+ D) → y; with conj K̂:
// the adjoint, du) and M2FftKernelGrad (Σ_b correlation of dy with u on the circle → the kernels' gradients).
// fft-conv.ts chooses them on wasm unless `M2_FUSED_LONG_CONV=0`. Internal: not exported from index.ts.
import * as tf from '@tensorflow/tfjs-core';
import type { KernelConfig, KernelFunc, Tensor, Tensor1D, Tensor2D, Tensor3D, TensorInfo } from '@tensorflow/tfjs-core';
import { fusedKernelsOff } from '../env.js';
import { HeapFull } from './wasm-heap-guard.js';
import { PARALLEL_KERNELS, runParallel, wasmFftReady, withWorkBlock } from './wasm-parallel.js';
import type { WasmOutputBackend } from './wasm-parallel.js';

/** The part of tfjs-backend-wasm's BackendWasm these kernels use. */
interface WasmBackendLike extends WasmOutputBackend {
  wasm: { _malloc(bytes: number): number; _free(pointer: number): void };
}

/** Name of the wasm kernel that makes a kernel spectrum (inputs kernel [C, Lk] and optional tail [C, L]). */
export const FFT_SPECTRUM = 'M2FftSpectrum';
/** Name of the wasm FFT convolution kernel (inputs u [B, C, L], spectrum, optional skip [C]; attr conj). */
export const FFT_CONV = 'M2FftConv';
/** Name of the wasm kernel-gradient kernel (inputs u, dy [B, C, L] → [C, N] on the circle). */
export const FFT_KERNEL_GRAD = 'M2FftKernelGrad';

/**
 * The FFT size of the wasm long convolution for sequence length L: the power of two ≥ 2L (≥ 2).
 * @param length - L.
 * @returns N.
 * @example
 * wasmFftSize(3000); // → 8192
 */
export function wasmFftSize(length: number): number {
  return Math.max(2, 2 ** Math.ceil(Math.log2(2 * length)));
}

/** Twiddle tables in the heap, per emscripten module and M: W_M^j (j < M) then W_N^k (k ≤ M/2), float32 (cos, −sin). */
const twiddleTables = new WeakMap<object, Map<number, number>>();

/**
 * The FFT module's twiddle table for M = N/2, computed in float64: W_M^j for j < M, then W_N^k for k ≤ M/2, as
 * float32 (cos, −sin) pairs.
 * @param m - M (a power of two).
 * @returns 2·(M + ⌊M/2⌋ + 1) floats.
 */
export function fftTwiddles(m: number): Float32Array {
  const half = m >> 1;
  const values = new Float32Array(2 * (m + half + 1));
  for (let j = 0; j < m; j++) {
    values[2 * j] = Math.cos((2 * Math.PI * j) / m);
    values[2 * j + 1] = -Math.sin((2 * Math.PI * j) / m);
  }
  for (let k = 0; k <= half; k++) {
    values[2 * (m + k)] = Math.cos((Math.PI * k) / m); // W_N^k, N = 2M
    values[2 * (m + k) + 1] = -Math.sin((Math.PI * k) / m);
  }
  return values;
}

/** The twiddle table for M = N/2 in the heap (computed once per module and M, kept: about 12·M bytes). */
function twiddles(wasm: WasmBackendLike, m: number): number {
  let tables = twiddleTables.get(wasm.wasm);
  if (tables === undefined) twiddleTables.set(wasm.wasm, (tables = new Map()));
  let pointer = tables.get(m);
  if (pointer !== undefined) return pointer;
  const values = fftTwiddles(m);
  pointer = wasm.wasm._malloc(values.byteLength) >>> 0; // a full heap: the heap guard's one-line HeapFull error
  if (pointer === 0) throw new HeapFull(values.byteLength); // (likewise where the guard is not installed)
  new Float32Array(memoryOf(wasm), pointer, values.length).set(values); // a view after the allocation (the heap may grow)
  tables.set(m, pointer);
  return pointer;
}

/** The heap's current buffer (after any growth). */
function memoryOf(wasm: WasmBackendLike): ArrayBufferLike {
  return (wasm.wasm as unknown as { HEAPU8: Uint8Array }).HEAPU8.buffer;
}

const byteOffset = (wasm: WasmBackendLike, t: TensorInfo) => wasm.typedArrayFromHeap(t).byteOffset;

/** Where a kernel's taps go on the N-circle (attrs of M2FftSpectrum). */
interface Placement {
  /** N. */
  n: number;
  /** Taps kernel[:, 0..headLen) at positions 0.. */
  headLen: number;
  /** The tail's first column in its source (the `tail` input if given, else the kernel). */
  tailColumn: number;
  /** Tail taps, at positions tailAt.. (reversed when `reverse`). */
  tailLen: number;
  tailAt: number;
  reverse: boolean;
}

/** Kernel rows [C, Lk] (+ tail rows) placed on the N-circle → K̂/(2N), [⌈C/4⌉·(N/2 + 1)·8] floats. */
const spectrumKernel: KernelFunc = ({ inputs, backend, attrs }) => {
  const { kernel, tail } = inputs as { kernel: TensorInfo; tail?: TensorInfo };
  const { n, headLen, tailColumn, tailLen, tailAt, reverse } = attrs as unknown as Placement;
  const wasm = backend as unknown as WasmBackendLike;
  const channels = kernel.shape[0]!;
  const m = n / 2;
  const groups = Math.ceil(channels / 4);
  const out = wasm.makeOutput([groups * (m + 1) * 8], 'float32');
  const tw = twiddles(wasm, m);
  withWorkBlock(wasm, m * 64, ({ counter, scratch, threads, heap }) => {
    const tailSource = tail ?? kernel;
    const tailAtByte = byteOffset(wasm, tailSource) + 4 * tailColumn;
    const args = [byteOffset(wasm, kernel), headLen, 4 * kernel.shape[1]!, tailAtByte, tailLen, 4 * tailSource.shape[1]!, tailAt, reverse ? 1 : 0];
    args.push(byteOffset(wasm, out), scratch, tw, channels, m, groups, threads, counter);
    runParallel(PARALLEL_KERNELS.fftSpectrum, args, groups, heap, channels * n * 8);
  });
  return out;
};

/** u [B, C, L] × spectrum (+ skip [C]) → y [B, C, L]; attrs.conj multiplies by conj K̂ (the adjoint: du). */
const convKernel: KernelFunc = ({ inputs, backend, attrs }) => {
  const { u, spectrum, skip } = inputs as { u: TensorInfo; spectrum: TensorInfo; skip?: TensorInfo };
  const { conj } = attrs as unknown as { conj: boolean };
  const wasm = backend as unknown as WasmBackendLike;
  const [batch, channels, length] = u.shape as [number, number, number];
  const m = wasmFftSize(length) / 2;
  const units = batch * Math.ceil(channels / 4);
  const out = wasm.makeOutput(u.shape, 'float32');
  const tw = twiddles(wasm, m);
  withWorkBlock(wasm, m * 64, ({ counter, scratch, threads, heap }) => {
    const skipAt = skip === undefined ? 0 : byteOffset(wasm, skip);
    const args = [byteOffset(wasm, u), byteOffset(wasm, spectrum), skipAt, byteOffset(wasm, out), scratch, tw, channels, length, m, conj ? 1 : 0, units, threads, counter];
    runParallel(PARALLEL_KERNELS.fftConv, args, units, heap, batch * channels * m * 16);
  });
  return out;
};

/** u [B, C, L], dy [B, C, L] → the kernel's gradient on the N-circle [C, N]: Σ_b circular correlation of dy with u. */
const kernelGradKernel: KernelFunc = ({ inputs, backend }) => {
  const { u, dy } = inputs as { u: TensorInfo; dy: TensorInfo };
  const wasm = backend as unknown as WasmBackendLike;
  const [batch, channels, length] = u.shape as [number, number, number];
  const m = wasmFftSize(length) / 2;
  const groups = Math.ceil(channels / 4);
  const out = wasm.makeOutput([channels, 2 * m], 'float32');
  const tw = twiddles(wasm, m);
  withWorkBlock(wasm, 4 * (m + 1) * 32, ({ counter, scratch, threads, heap }) => {
    const args = [byteOffset(wasm, u), byteOffset(wasm, dy), byteOffset(wasm, out), scratch, tw, batch, channels, length, m, groups, threads, counter];
    runParallel(PARALLEL_KERNELS.fftKernelGrad, args, groups, heap, batch * channels * m * 16);
  });
  return out;
};

const kernelConfigs: KernelConfig[] = [
  { kernelName: FFT_SPECTRUM, backendName: 'wasm', kernelFunc: spectrumKernel },
  { kernelName: FFT_CONV, backendName: 'wasm', kernelFunc: convKernel },
  { kernelName: FFT_KERNEL_GRAD, backendName: 'wasm', kernelFunc: kernelGradKernel },
];

/**
 * Registers the FFT long-convolution kernels for the `wasm` backend (setupBackend('wasm') calls it, beside monarch-core's
 * other wasm kernels); a kernel registered by another copy of this module is replaced.
 */
export function registerWasmFftKernels(): void {
  for (const config of kernelConfigs) {
    if (tf.getKernel(config.kernelName, 'wasm')?.kernelFunc !== config.kernelFunc) {
      if (tf.getKernel(config.kernelName, 'wasm') !== undefined) tf.unregisterKernel(config.kernelName, 'wasm');
      tf.registerKernel(config);
    }
  }
}

/**
 * Whether the long convolutions take the wasm FFT kernels now: the active backend is wasm, its helper loops are bound
 * (setupBackend('wasm')), the FFT module validates, and `M2_FUSED_LONG_CONV=0` is not set.
 * @returns True when they do.
 */
export function useWasmFft(): boolean {
  return tf.getBackend() === 'wasm' && !fusedKernelsOff() && wasmFftReady();
}

/** Spectra made by {@link wasmKernelSpectrum} (their layout is this module's, not the Monarch one). */
const wasmSpectra = new WeakSet<Tensor>();

/**
 * Whether a spectrum tensor is in this module's layout.
 * @param t - A spectrum's tensor.
 * @returns True for spectra from {@link wasmKernelSpectrum}.
 */
export function isWasmSpectrum(t: Tensor): boolean {
  return wasmSpectra.has(t);
}

/**
 * A long-convolution kernel's spectrum in this module's layout, placed on the N-point circle as fft-conv.ts defines
 * it: a kernel [C, Lk ≤ 2L] has lags 0..L−1 first and (Lk > L) its taps L+1..2L−1 as lags −(L−1)..−1 at the end;
 * with kr [C, L] (bidirectional) kr[j] is lag −(j+1). Shapes: kernel [C, Lk] (+ kr [C, L]) → [⌈C/4⌉·(N/2 + 1)·8].
 *
 * @param length - L.
 * @param kernel - Kernel [C, Lk ≤ 2L] (bidirectional: kf [C, L]).
 * @param reverseKernel - Optional kr [C, L].
 * @returns The spectrum tensor (a new tensor; the caller owns it).
 */
export function wasmKernelSpectrum(length: number, kernel: Tensor2D, reverseKernel?: Tensor2D): Tensor1D {
  const n = wasmFftSize(length);
  const lk = kernel.shape[1];
  const inputs: Record<string, Tensor> = { kernel };
  let placement: Placement;
  if (reverseKernel !== undefined) {
    inputs['tail'] = reverseKernel; // kr[L−1−t] at N − L + t
    placement = { n, headLen: Math.min(lk, length), tailColumn: 0, tailLen: length, tailAt: n - length, reverse: true };
  } else if (lk > length) {
    placement = { n, headLen: length, tailColumn: length, tailLen: lk - length, tailAt: n - length, reverse: false }; // tap i at N − 2L + i
  } else {
    placement = { n, headLen: lk, tailColumn: 0, tailLen: 0, tailAt: 0, reverse: false };
  }
  const spectrum = tf.engine().runKernel(FFT_SPECTRUM, inputs, placement as unknown as tf.NamedAttrMap) as Tensor1D;
  wasmSpectra.add(spectrum);
  return spectrum;
}

/**
 * The convolution with a spectrum from {@link wasmKernelSpectrum} (not differentiable by itself: fft-conv.ts wraps it).
 * Shapes: u [B, C, L] × spectrum (+ skip [C]) → [B, C, L].
 *
 * @param u - Input, channel-first.
 * @param spectrum - The kernel spectrum.
 * @param skip - Optional D [C].
 * @param conj - Multiply by conj K̂ instead (the adjoint, for du).
 * @returns y [B, C, L].
 */
export function wasmSpectrumConv(u: Tensor3D, spectrum: Tensor, skip?: Tensor1D, conj = false): Tensor3D {
  const inputs: Record<string, Tensor> = { u, spectrum };
  if (skip !== undefined) inputs['skip'] = skip;
  return tf.engine().runKernel(FFT_CONV, inputs, { conj } as unknown as tf.NamedAttrMap) as Tensor3D;
}

/**
 * The gradients of a long convolution's kernel(s) for upstream dy (the adjoint of {@link wasmKernelSpectrum}'s
 * placement applied to Σ_b corr(dy, u) on the N-circle). Shapes: u, dy [B, C, L] → [dkernel [C, Lk]] or, with a
 * reverse kernel, [dkf [C, L], dkr [C, L]].
 *
 * @param u - The convolution's input.
 * @param dy - The upstream gradient.
 * @param kernelLength - Lk of the kernel (bidirectional: L).
 * @param hasReverse - Whether a reverse kernel kr was given.
 * @returns The kernel gradients.
 */
export function wasmKernelGrads(u: Tensor3D, dy: Tensor3D, kernelLength: number, hasReverse: boolean): Tensor2D[] {
  const length = u.shape[2];
  const n = wasmFftSize(length);
  return tf.tidy(() => {
    const circle = tf.engine().runKernel(FFT_KERNEL_GRAD, { u, dy }) as Tensor2D; // [C, N]: lag p at column p mod N
    const head = tf.slice(circle, [0, 0], [-1, Math.min(kernelLength, length)]);
    if (hasReverse) return [head, tf.reverse(tf.slice(circle, [0, n - length], [-1, length]), 1)]; // kr[j] is lag −(j+1)
    if (kernelLength <= length) return [head];
    return [tf.concat([head, tf.slice(circle, [0, n - length], [-1, kernelLength - length])], 1)]; // taps L.. at N − L..
  }) as Tensor2D[];
}
