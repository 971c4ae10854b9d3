// Loops of monarch-core's JavaScript wasm kernels (GELU gate, Erf, tiled Transpose) split over helper threads.
// tfjs-backend-wasm's threaded build keeps its heap in a shared WebAssembly.Memory; its own thread pool only runs
// inside its C++ kernels (matMul), so our JavaScript kernels ran on one core while the others idled (at L = 4096
// the GELU gate and the transposes are ~15 % of an M2-BERT layer on one thread, ~30 % on two). Helper worker
// threads here map the same shared memory and take a share of each large loop; the main thread does its own share
// and waits (Atomics) for theirs, so a kernel stays synchronous, as tfjs requires.
//
// The loops are written once, as plain JavaScript source (KERNEL_SOURCE), compiled in the main thread and in each
// helper: the same code runs on both sides and needs no bundler.
import * as tf from '@tensorflow/tfjs-core';
import type { TensorInfo } from '@tensorflow/tfjs-core';
import { importRuntime, isNode } from './register-gradients.js';
import { FFT_WASM_PLAIN, FFT_WASM_SHARED } from './wasm-fft-binary.js';
import { GEMM_WASM_PLAIN, GEMM_WASM_SHARED } from './wasm-gemm-binary.js';
import { SIMD_WASM_PLAIN, SIMD_WASM_SHARED } from './wasm-simd-binary.js';

/**
 * The shared loops. Every function works on a Float32Array view of the whole heap (`h`), with element offsets,
 * over a unit range [lo, hi) of its work.
 * - geluGate: out[i] = GELU(g[i])·v[i] (exact erf GELU), units = elements.
 * - erf: out[i] = erf(x[i]), units = elements.
 * - transpose: the tiled plane transpose of wasm-view-kernels (planes × row tiles), units = (plane, row tile).
 * - twiddleTranspose: a Monarch DFT stage's twiddle product fused with its digit transpose [O, A, B, R] ↔
 *   [O, R, B, A] (monarch-dft.ts), units = (o, b).
 * - fftSpectrum, fftConv: the FFT long convolution's kernel spectra and the convolution itself (wasm-fft-source.ts;
 *   WebAssembly only), units = groups of four channels / (batch, channel group).
 * - blockGemm, monarchGemm: block-diagonal and order-2 Monarch products on packed weights (wasm-gemm-source.ts;
 *   WebAssembly only), units = chunks of rows.
 */
const KERNEL_SOURCE = `
let W = null; // the SIMD module's exports (wasm-simd-source.ts), bound to the same memory, when available
let F = null; // the FFT long-convolution module's exports (wasm-fft-source.ts), likewise
let G = null; // the block-diagonal / Monarch product module's exports (wasm-gemm-source.ts), likewise
function erfApprox(x) {
  const v = x > 4 ? 4 : x < -4 ? -4 : x;
  const x2 = v * v;
  let p = x2 * -2.72614225801306e-10 + 2.77068142495902e-8;
  p = x2 * p + -2.10102402082508e-6;
  p = x2 * p + -5.69250639462346e-5;
  p = x2 * p + -7.34990630326855e-4;
  p = x2 * p + -2.95459980854025e-3;
  p = x2 * p + -1.60960333262415e-2;
  let q = x2 * -1.45660718464996e-5 + -2.13374055278905e-4;
  q = x2 * q + -1.68282697438203e-3;
  q = x2 * q + -7.37332916720468e-3;
  q = x2 * q + -1.42647390514189e-2;
  return (v * p) / q;
}
function geluGate(h, a, lo, hi) {
  if (W !== null) return W.geluGate(a[0] * 4, a[1] * 4, a[2] * 4, lo, hi);
  const g = a[0], v = a[1], out = a[2];
  for (let i = lo; i < hi; i++) {
    const x = h[g + i];
    h[out + i] = 0.5 * x * (1 + erfApprox(x * 0.7071067811865476)) * h[v + i];
  }
}
function erf(h, a, lo, hi) {
  if (W !== null) return W.erf(a[0] * 4, a[1] * 4, lo, hi);
  const x = a[0], out = a[1];
  for (let i = lo; i < hi; i++) h[out + i] = erfApprox(h[x + i]);
}
function transpose(h, a, lo, hi) {
  // a = [src, dst, rows, cols, rowStrideOut, colStrideIn, tile, rowTiles, basesPtr, inBase0, outBase0, inBase1, ...];
  // basesPtr: byte offset of the same bases in the heap (0: none, the JavaScript loop runs).
  if (W !== null && a[8] !== 0) return W.transpose(a[0] * 4, a[1] * 4, a[2], a[3], a[4], a[5], a[6], a[7], a[8], lo, hi);
  const src = a[0], dst = a[1], rows = a[2], cols = a[3], rowStrideOut = a[4], colStrideIn = a[5], tile = a[6], rowTiles = a[7];
  for (let u = lo; u < hi; u++) {
    const plane = (u / rowTiles) | 0;
    const r0 = (u - plane * rowTiles) * tile;
    const inBase = src + a[9 + 2 * plane];
    const outBase = dst + a[10 + 2 * plane];
    const r1 = Math.min(rows, r0 + tile);
    for (let c0 = 0; c0 < cols; c0 += tile) {
      const c1 = Math.min(cols, c0 + tile);
      for (let r = r0; r < r1; r++) {
        let i = inBase + r + c0 * colStrideIn;
        let o = outBase + r * rowStrideOut + c0;
        for (let c = c0; c < c1; c++) {
          h[o++] = h[i];
          i += colStrideIn;
        }
      }
    }
  }
}
function twiddleTranspose(h, a, lo, hi) {
  // a = [xRe, xIm, tRe, tIm, yRe, yIm, A, B, R, inverse]; units u = o·B + b.
  // forward: x [O, A, B, R] → y [O, R, B, A], y = x ⊙ t[a, b, k]; inverse: x [O, R, B, A] → y [O, A, B, R], y = x ⊙ conj t[a, b, k].
  // The [O, R, B, A] side is walked contiguously along a; the [O, A, B, R] side with stride B·R.
  if (W !== null) return W.twiddleTranspose(a[0] * 4, a[1] * 4, a[2] * 4, a[3] * 4, a[4] * 4, a[5] * 4, a[6], a[7], a[8], a[9], lo, hi);
  const xr = a[0], xi = a[1], tr = a[2], ti = a[3], yr = a[4], yi = a[5], A = a[6], B = a[7], R = a[8], inverse = a[9];
  const nearStep = B * R;
  for (let u = lo; u < hi; u++) {
    const o = (u / B) | 0;
    const b = u - o * B;
    for (let k = 0; k < R; k++) {
      let near = (o * A * B + b) * R + k; // [O, A, B, R] at a = 0
      let t = b * R + k; // twiddle [A, B, R] at a = 0
      const far = ((o * R + k) * B + b) * A; // [O, R, B, A] at a = 0
      if (inverse === 0) {
        const outR = yr + far, outI = yi + far;
        for (let d = 0; d < A; d++, near += nearStep, t += nearStep) {
          const re = h[xr + near], im = h[xi + near], c = h[tr + t], s = h[ti + t];
          h[outR + d] = re * c - im * s;
          h[outI + d] = re * s + im * c;
        }
      } else {
        const inR = xr + far, inI = xi + far;
        for (let d = 0; d < A; d++, near += nearStep, t += nearStep) {
          const re = h[inR + d], im = h[inI + d], c = h[tr + t], s = h[ti + t];
          h[yr + near] = re * c + im * s;
          h[yi + near] = im * c - re * s;
        }
      }
    }
  }
}
// The FFT loops' arguments end with [units, threads, counter]: every thread that runs claims units one at a time from
// the Int32 counter at byte offset counter (zeroed: withWorkBlock), so a thread the OS parks does not hold the others
// up; each uses its own scratch block, numbered by its static share (thread t starts at t·⌈units/threads⌉).
function fftClaim(h, units, threads, counter, lo, run) {
  if (F === null) throw new Error('the wasm FFT module is not loaded');
  const slot = lo === 0 ? 0 : Math.round(lo / Math.ceil(units / threads));
  const next = new Int32Array(h.buffer, counter >>> 0, 1); // (helpers read the words as int32: past 2 GiB negative)
  for (let u = Atomics.add(next, 0, 1); u < units; u = Atomics.add(next, 0, 1)) run(slot, u);
}
function fftSpectrum(h, a, lo, hi) {
  // a = [head, headLen, headStride, tail, tailLen, tailStride, tailAt, reverse, dst, scratch, tw, C, M, units, threads, counter]
  fftClaim(h, a[13], a[14], a[15], lo, (slot, u) => F.spectrum(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11], a[12], slot, u, u + 1));
}
function fftConv(h, a, lo, hi) {
  // a = [u, spec, skip, out, scratch, tw, C, L, M, conj, units, threads, counter] (byte offsets; skip 0: none)
  fftClaim(h, a[10], a[11], a[12], lo, (slot, u) => F.conv(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], slot, u, u + 1));
}
// The gemm loops ignore their static share [lo, hi): every thread that runs claims row chunks one at a time from a
// shared counter in the heap (an Int32 at float offset a[counter], zeroed: withWorkBlock), so a thread that the OS parks (2 cores shared by
// several processes) does not hold the others up at the end.
function blockGemm(h, a, lo, hi) {
  // a = [x, packed, y, rows, numBlocks, blockIn, blockOut, rowChunk, counter, units] (x, packed, y, counter: float offsets)
  if (G === null) throw new Error('the wasm gemm module is not loaded');
  const next = new Int32Array(h.buffer, a[8] * 4, 1);
  for (let u = Atomics.add(next, 0, 1); u < a[9]; u = Atomics.add(next, 0, 1)) G.blockGemm(a[0] * 4, a[1] * 4, a[2] * 4, a[3], a[4], a[5], a[6], a[7], u, u + 1);
}
function monarchGemm(h, a, lo, hi) {
  // a = [x, packed1, packed2, scratch, y, rows, K, P, Q, Lb, R, S, rowChunk, scratchRowBytes, counter, units] (the
  // first five and counter: float offsets). Each thread takes a slot (counter word 1) of rowChunk scratch rows and
  // reuses it for all its chunks (it stays in cache); the module addresses scratch row r0 of unit u as
  // t + r0·rowBytes, so t is passed shifted back by r0 rows (i32 arithmetic wraps to the slot).
  if (G === null) throw new Error('the wasm gemm module is not loaded');
  const next = new Int32Array(h.buffer, a[14] * 4, 2);
  const slotBytes = a[12] * a[13];
  const slot = a[3] * 4 + Atomics.add(next, 1, 1) * slotBytes;
  for (let u = Atomics.add(next, 0, 1); u < a[15]; u = Atomics.add(next, 0, 1)) {
    G.monarch(a[0] * 4, a[1] * 4, a[2] * 4, (slot - u * slotBytes) | 0, a[4] * 4, a[5], a[6], a[7], a[8], a[9], a[10], a[11], a[12], u, u + 1);
  }
}
function fftKernelGrad(h, a, lo, hi) {
  // a = [u, dy, out, scratch, tw, B, C, L, M, units, threads, counter] (byte offsets)
  fftClaim(h, a[9], a[10], a[11], lo, (slot, u) => F.kernelGrad(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], slot, u, u + 1));
}
const KERNELS = [geluGate, erf, transpose, twiddleTranspose, fftSpectrum, fftConv, blockGemm, monarchGemm, fftKernelGrad];
function useSimd(module, memory, fftModule, gemmModule) {
  W = module === null ? null : new WebAssembly.Instance(module, { env: { memory } }).exports;
  F = fftModule == null ? null : new WebAssembly.Instance(fftModule, { env: { memory } }).exports;
  G = gemmModule == null ? null : new WebAssembly.Instance(gemmModule, { env: { memory } }).exports;
}
`;

/** Kernel ids (index into KERNELS in KERNEL_SOURCE). */
export const PARALLEL_KERNELS = { geluGate: 0, erf: 1, transpose: 2, twiddleTranspose: 3, fftSpectrum: 4, fftConv: 5, blockGemm: 6, monarchGemm: 7, fftKernelGrad: 8 } as const;

type Loop = (heap: Float32Array, args: Int32Array | number[], lo: number, hi: number) => void;

/** The loops compiled in this thread, with the SIMD module bound to `memory` when given (one set per memory). */
function compileLoops(memory?: WebAssembly.Memory): Loop[] {
  const { KERNELS, useSimd } = new Function(`${KERNEL_SOURCE}\nreturn { KERNELS, useSimd };`)() as {
    KERNELS: Loop[];
    useSimd: (m: WebAssembly.Module | null, memory?: WebAssembly.Memory, fft?: WebAssembly.Module | null, gemm?: WebAssembly.Module | null) => void;
  };
  if (memory !== undefined) useSimd(simdModule(memory), memory, fftModule(memory), gemmModule(memory));
  return KERNELS;
}

/** The loops in plain JavaScript, bound to no memory (tests; and when no wasm backend runs). */
export const parallelLoops: Loop[] = compileLoops();

const modules = new Map<string, WebAssembly.Module | null>();

/** A committed module (base64, plain and shared-memory variants) for this memory's kind, or null if it does not validate. */
function moduleFor(name: string, memory: WebAssembly.Memory, plain: string, sharedBytes: string): WebAssembly.Module | null {
  const shared = memory.buffer instanceof SharedArrayBuffer;
  const key = `${name}:${shared}`;
  let module = modules.get(key);
  if (module === undefined) {
    const bytes = Uint8Array.from(atob(shared ? sharedBytes : plain), (c) => c.charCodeAt(0));
    module = WebAssembly.validate(bytes) ? new WebAssembly.Module(bytes) : null;
    modules.set(key, module);
  }
  return module;
}

/** The SIMD kernels' module for this memory's kind (shared or plain), or null where WebAssembly SIMD is missing. */
function simdModule(memory: WebAssembly.Memory): WebAssembly.Module | null {
  return moduleFor('simd', memory, SIMD_WASM_PLAIN, SIMD_WASM_SHARED);
}

/** The FFT long-convolution module (wasm-fft-source.ts) for this memory's kind, or null where it does not validate. */
function fftModule(memory: WebAssembly.Memory): WebAssembly.Module | null {
  return moduleFor('fft', memory, FFT_WASM_PLAIN, FFT_WASM_SHARED);
}

/** The block-diagonal / Monarch product module (wasm-gemm-source.ts) for this memory's kind, or null where it does not validate. */
function gemmModule(memory: WebAssembly.Memory): WebAssembly.Module | null {
  return moduleFor('gemm', memory, GEMM_WASM_PLAIN, GEMM_WASM_SHARED);
}

/** Helper thread body: wait for a job, run its share, report. Control words: see ParallelPool. */
const WORKER_SOURCE = `
const { workerData } = require('node:worker_threads');
${KERNEL_SOURCE}
const { memory, control, args, module, fftModule, gemmModule } = workerData;
useSimd(module, memory, fftModule, gemmModule);
const ctl = new Int32Array(control);
const arg = new Int32Array(args);
let seen = 0;
for (;;) {
  Atomics.wait(ctl, 0, seen);
  seen = Atomics.load(ctl, 0);
  if (seen < 0) break;
  try {
    KERNELS[ctl[2]](new Float32Array(memory.buffer), arg, ctl[3], ctl[4]);
    ctl[5] = 0;
  } catch (e) {
    ctl[5] = 1;
  }
  Atomics.store(ctl, 1, seen);
  Atomics.notify(ctl, 1);
}
`;

/** Argument words per job (the transpose passes two bases per plane). */
const MAX_ARGS = 1 << 16;

/** Elements below this are not worth waking a helper (its wake-up costs ~10–50 µs). */
const MIN_PARALLEL_WORK = 1 << 16;

interface Helper {
  /** [0] job sequence (−1: exit), [1] done sequence, [2] kernel, [3] lo, [4] hi, [5] error flag. */
  control: Int32Array;
  /** Shared argument words. */
  args: Int32Array;
  worker: { terminate(): Promise<number>; unref(): void };
}

/** Helper threads sharing one wasm heap (see {@link createHelperPool}). */
export class ParallelPool {
  private sequence = 0;
  private readonly loops: Loop[];
  constructor(
    private readonly memory: WebAssembly.Memory,
    private readonly helpers: Helper[],
  ) {
    this.loops = compileLoops(memory);
  }

  /** Threads that take a share of each loop (helpers + this thread). */
  get threads(): number {
    return this.helpers.length + 1;
  }

  /** Runs `kernel` over units [0, units), split evenly between this thread and the helpers; `work` ≈ elements touched. */
  run(kernel: number, args: number[], units: number, work: number): void {
    const loop = this.loops[kernel]!;
    if (work < MIN_PARALLEL_WORK || units < 2 || args.length > MAX_ARGS) {
      loop(new Float32Array(this.memory.buffer), args, 0, units);
      return;
    }
    const share = Math.ceil(units / this.threads);
    const seq = ++this.sequence;
    const started: Helper[] = [];
    this.helpers.forEach((helper, i) => {
      const lo = (i + 1) * share;
      if (lo >= units) return;
      helper.args.set(args);
      helper.control[2] = kernel;
      helper.control[3] = lo;
      helper.control[4] = Math.min(units, lo + share);
      Atomics.store(helper.control, 0, seq);
      Atomics.notify(helper.control, 0);
      started.push(helper);
    });
    loop(new Float32Array(this.memory.buffer), args, 0, Math.min(units, share));
    let failed = false;
    for (const helper of started) {
      while (Atomics.load(helper.control, 1) !== seq) Atomics.wait(helper.control, 1, Atomics.load(helper.control, 1), 1000);
      failed ||= helper.control[5] !== 0;
    }
    if (failed) throw new Error('monarch-core wasm helper thread failed a kernel loop');
  }

  /** Stops the helper threads. */
  async close(): Promise<void> {
    for (const helper of this.helpers) {
      Atomics.store(helper.control, 0, -1);
      Atomics.notify(helper.control, 0);
    }
    await Promise.all(this.helpers.map((h) => h.worker.terminate()));
  }
}

/**
 * Starts `threads − 1` helper threads on a shared WebAssembly.Memory.
 * @param memory - Shared memory (its buffer is a SharedArrayBuffer).
 * @param threads - Threads in all, ≥ 2.
 * @returns The pool.
 */
export async function createHelperPool(memory: WebAssembly.Memory, threads: number): Promise<ParallelPool> {
  const { Worker } = (await importRuntime('node:worker_threads')) as typeof import('node:worker_threads');
  const helpers: Helper[] = [];
  for (let i = 1; i < threads; i++) {
    const control = new Int32Array(new SharedArrayBuffer(8 * 4));
    const args = new Int32Array(new SharedArrayBuffer(MAX_ARGS * 4));
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { memory, control: control.buffer, args: args.buffer, module: simdModule(memory), fftModule: fftModule(memory), gemmModule: gemmModule(memory) } });
    worker.unref(); // an idle helper does not keep the process alive
    helpers.push({ control, args, worker });
  }
  return new ParallelPool(memory, helpers);
}

let pool: ParallelPool | undefined;
/** The loops bound to the wasm backend's memory (SIMD module included), once the backend is set up. */
let mainLoops: Loop[] | undefined;
/** The memory mainLoops are bound to. */
let boundMemory: WebAssembly.Memory | undefined;

/**
 * Binds the loops to the wasm backend's heap (SIMD kernels where WebAssembly SIMD exists) and starts `threads − 1`
 * helper threads on it (threaded wasm in Node only; otherwise the loops run on the calling thread). Idempotent.
 *
 * @param threads - Threads in all (the wasm backend's thread count).
 * @returns The threads that now share the loops (1 when no helper runs).
 * @example
 * await startWasmHelpers(2); // → 2 in Node with threaded wasm
 */
export async function startWasmHelpers(threads: number): Promise<number> {
  if (pool !== undefined) return pool.threads;
  const backend = tf.findBackend('wasm') as unknown as { wasm?: { wasmMemory?: WebAssembly.Memory; asm?: Record<string, unknown> } } | null;
  // The threaded build keeps its (shared) memory as wasmMemory, the single-threaded one exports it from its instance.
  const memory = backend?.wasm?.wasmMemory ?? (Object.values(backend?.wasm?.asm ?? {}).find((v) => v instanceof WebAssembly.Memory) as WebAssembly.Memory | undefined);
  if (memory === undefined) return 1;
  mainLoops ??= compileLoops(memory);
  boundMemory ??= memory;
  if (threads < 2 || !isNode() || !(memory.buffer instanceof SharedArrayBuffer)) return 1;
  pool = await createHelperPool(memory, threads);
  return pool.threads;
}

/**
 * Runs a shared loop: split over the helper threads when they run, else on this thread.
 * @param kernel - A {@link PARALLEL_KERNELS} id.
 * @param args - Its integer arguments (element offsets into the heap, sizes).
 * @param units - Work units.
 * @param heap - The heap as floats (used by the plain JavaScript loops).
 * @param work - Elements the loop touches (decides whether helpers are woken). Default `units`.
 */
export function runParallel(kernel: number, args: number[], units: number, heap: Float32Array, work = units): void {
  if (!simd) parallelLoops[kernel]!(heap, args, 0, units);
  else if (pool !== undefined && enabled) pool.run(kernel, args, units, work);
  else (mainLoops ?? parallelLoops)[kernel]!(heap, args, 0, units);
}

let simd = true;

/**
 * Whether the FFT long-convolution kernels (PARALLEL_KERNELS.fftSpectrum / fftConv) can run: the loops are bound
 * to the wasm backend's heap (startWasmHelpers ran), the FFT module validated there, and the SIMD kernels are on.
 * @returns True when they run.
 */
export function wasmFftReady(): boolean {
  const memory = boundMemory;
  return simd && mainLoops !== undefined && memory !== undefined && fftModule(memory) !== null;
}

/**
 * Whether the block-diagonal / Monarch product kernels (PARALLEL_KERNELS.blockGemm / monarchGemm) can run: the
 * loops are bound to the wasm backend's heap (startWasmHelpers ran), the gemm module validated there, and the SIMD
 * kernels are on.
 * @returns True when they run.
 */
export function wasmGemmReady(): boolean {
  const memory = boundMemory;
  return simd && mainLoops !== undefined && memory !== undefined && gemmModule(memory) !== null;
}

/**
 * Turns the SIMD module (and the helpers) off, back to the plain JavaScript loops on one thread (paired timings).
 * @param on - Whether the SIMD kernels run.
 * @returns The previous setting.
 */
export function useWasmSimd(on: boolean): boolean {
  const previous = simd;
  simd = on;
  return previous;
}

let enabled = true;

/**
 * Turns the helper threads' share of the loops on or off (for paired timings and tests; on by default).
 * @param on - Whether started helpers take a share.
 * @returns The previous setting.
 */
export function useWasmHelpers(on: boolean): boolean {
  const previous = enabled;
  enabled = on;
  return previous;
}

/** Threads that share the loops now (1 without helpers). */
export function wasmHelperThreads(): number {
  return pool !== undefined && enabled ? pool.threads : 1;
}

/** The part of tfjs-backend-wasm's BackendWasm that {@link withWorkBlock} uses. */
export interface WasmOutputBackend {
  /** Allocates a tensor's memory on the heap (through the heap guard, when installed). */
  makeOutput(shape: number[], dtype: tf.DataType): TensorInfo;
  /** A view of a tensor's memory (taken after any allocation: growing an unshared heap detaches older views). */
  typedArrayFromHeap(t: TensorInfo): Float32Array | Int32Array | Uint8Array;
  /** Frees a tensor's memory. */
  disposeData(dataId: object, force?: boolean): boolean;
}

/** Bytes in front of a work block's scratch: the zeroed Int32 counter words, padded to a cache line. */
const WORK_COUNTER_BYTES = 64;

/** A work block on the wasm heap (see {@link withWorkBlock}). */
export interface WorkBlock {
  /** Byte offset of the zeroed Int32 counter words (the loops' unit counter first). */
  counter: number;
  /** Byte offset of the first thread's scratch slot. */
  scratch: number;
  /** Threads the slots were made for ({@link wasmHelperThreads}). */
  threads: number;
  /** The whole heap as floats, viewed after the block's allocation (the heap argument of {@link runParallel}). */
  heap: Float32Array;
}

/**
 * Runs a claimed-unit loop's host side with a work block on the wasm heap: zeroed Int32 counter words (the threads
 * claim units from the first, see KERNEL_SOURCE; the words after it are free for the loop, e.g. scratch slot numbers),
 * then one scratch slot of `slotBytes` for every thread that may take a share. The block is a tfjs tensor's memory,
 * so a full heap fails with the heap guard's one-line error; it is freed when `run` returns or throws.
 *
 * @param backend - The wasm backend.
 * @param slotBytes - Scratch bytes per thread (a multiple of 4; 0: counters only).
 * @param run - Gets the block.
 * @throws BackendError (from the heap guard) when the heap has no room for the block.
 * @example
 * withWorkBlock(backend, 0, ({ counter, heap }) => runParallel(kernel, [...args, counter / 4, units], units, heap));
 */
export function withWorkBlock(backend: WasmOutputBackend, slotBytes: number, run: (block: WorkBlock) => void): void {
  const threads = wasmHelperThreads();
  const block = backend.makeOutput([(WORK_COUNTER_BYTES + threads * slotBytes) / 4], 'int32');
  try {
    const view = backend.typedArrayFromHeap(block);
    new Int32Array(view.buffer, view.byteOffset, WORK_COUNTER_BYTES / 4).fill(0);
    run({ counter: view.byteOffset, scratch: view.byteOffset + WORK_COUNTER_BYTES, threads, heap: new Float32Array(view.buffer) });
  } finally {
    backend.disposeData(block.dataId, true);
  }
}
