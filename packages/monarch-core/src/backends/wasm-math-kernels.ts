// Elementwise math for the wasm backend in JavaScript over the backend's heap. tfjs-backend-wasm 4.22.0's Erf runs at
// about 30–40 M elements/s (151 ms of a 1.3 s M2-BERT-base layer at L = 2048 goes to the GLU's GELU); the rational
// approximation below runs at 110–220 M elements/s in plain JavaScript. The fused GELU gate (GLU: GELU(g) ⊙ v) saves
// the three extra elementwise passes on top of that.
import * as tf from '@tensorflow/tfjs-core';
import type { KernelConfig, KernelFunc, Tensor, TensorInfo } from '@tensorflow/tfjs-core';
import { PARALLEL_KERNELS, runParallel } from './wasm-parallel.js';
import { registerWebGpuKernels } from './webgpu-kernels.js';

/** The part of tfjs-backend-wasm's BackendWasm these kernels use. */
interface WasmBackendLike {
  makeOutput(shape: number[], dtype: tf.DataType): TensorInfo;
  typedArrayFromHeap(t: TensorInfo): Float32Array | Int32Array | Uint8Array;
}

// erf(x) ≈ x·P(x²)/Q(x²) on x clamped to [−4, 4] (beyond, erf is ±1 in float32): the float32 rational
// approximation used by Eigen and XLA. Absolute error below 2e-7 against the float64 erf.
const P13 = -2.72614225801306e-10;
const P11 = 2.77068142495902e-8;
const P9 = -2.10102402082508e-6;
const P7 = -5.69250639462346e-5;
const P5 = -7.34990630326855e-4;
const P3 = -2.95459980854025e-3;
const P1 = -1.60960333262415e-2;
const Q8 = -1.45660718464996e-5;
const Q6 = -2.13374055278905e-4;
const Q4 = -1.68282697438203e-3;
const Q2 = -7.37332916720468e-3;
const Q0 = -1.42647390514189e-2;

/**
 * erf(x) in float32 precision (|error| < 2e-7), the approximation the wasm kernels use.
 *
 * @param x - Argument.
 * @returns erf(x); NaN for NaN.
 * @example
 * erfApprox(1); // → ≈ 0.8427008
 */
export function erfApprox(x: number): number {
  const v = x > 4 ? 4 : x < -4 ? -4 : x;
  const x2 = v * v;
  let p = x2 * P13 + P11;
  p = x2 * p + P9;
  p = x2 * p + P7;
  p = x2 * p + P5;
  p = x2 * p + P3;
  p = x2 * p + P1;
  let q = x2 * Q8 + Q6;
  q = x2 * q + Q4;
  q = x2 * q + Q2;
  q = x2 * q + Q0;
  return (v * p) / q;
}

/** The whole wasm heap as floats (the view `t` is one tensor's window on it). */
function heapFloats(t: Float32Array | Int32Array | Uint8Array): Float32Array {
  return new Float32Array(t.buffer, 0, t.buffer.byteLength / 4);
}

function floatInput(name: string, t: TensorInfo): void {
  if (t.dtype !== 'float32') throw new Error(`${name}: expected a float32 input, got ${t.dtype}`);
}

/** Erf, elementwise. */
const erf: KernelFunc = ({ inputs, backend }) => {
  const x = inputs['x'] as TensorInfo;
  floatInput('Erf', x);
  const wasm = backend as unknown as WasmBackendLike;
  const out = wasm.makeOutput([...x.shape], 'float32');
  const src = wasm.typedArrayFromHeap(x);
  const dst = wasm.typedArrayFromHeap(out);
  runParallel(PARALLEL_KERNELS.erf, [src.byteOffset / 4, dst.byteOffset / 4], src.length, heapFloats(src)); // split over the helper threads
  return out;
};

/** Name of the fused GLU gate kernel: out = GELU(gate) ⊙ value, exact (erf) GELU. */
export const GELU_GATE = 'M2GeluGate';

/** GELU(gate) ⊙ value, same shapes, one pass. */
const geluGateWasm: KernelFunc = ({ inputs, backend }) => {
  const { gate, value } = inputs as { gate: TensorInfo; value: TensorInfo };
  floatInput(GELU_GATE, gate);
  floatInput(GELU_GATE, value);
  const wasm = backend as unknown as WasmBackendLike;
  const out = wasm.makeOutput([...gate.shape], 'float32');
  const g = wasm.typedArrayFromHeap(gate);
  const v = wasm.typedArrayFromHeap(value);
  const dst = wasm.typedArrayFromHeap(out);
  runParallel(PARALLEL_KERNELS.geluGate, [g.byteOffset / 4, v.byteOffset / 4, dst.byteOffset / 4], g.length, heapFloats(g)); // split over the helper threads
  return out;
};

/** GELU(x) = 0.5·x·(1 + erf(x/√2)) from tfjs ops (every backend). */
function geluOps(x: Tensor): Tensor {
  return tf.mul(tf.mul(x, 0.5), tf.add(1, tf.erf(tf.mul(x, Math.SQRT1_2))));
}

/**
 * The GLU gate of M2's MLP: GELU(gate) ⊙ value with the exact (erf) GELU. On wasm one fused pass (a custom kernel);
 * elsewhere tfjs ops. Differentiable: d gate = dy ⊙ value ⊙ GELU′(gate), d value = dy ⊙ GELU(gate), with
 * GELU′(x) = Φ(x) + x·φ(x).
 *
 * Shapes: gate [...], value [...] (same shape) → [...]
 * @param gate - Pre-activation half of the GLU.
 * @param value - Linear half.
 * @returns GELU(gate) ⊙ value.
 * @throws Error if the shapes differ.
 * @example
 * geluGate(tf.tensor1d([1]), tf.tensor1d([2])); // → ≈ [1.6827]
 */
export function geluGate(gate: Tensor, value: Tensor): Tensor {
  tf.util.assertShapesMatch(gate.shape, value.shape, 'geluGate: gate and value');
  const backendName = tf.getBackend();
  if (backendName === 'webgpu') registerWebGpuKernels(); // the WGSL twin of the wasm kernel (webgpu-norm.ts)
  const fused = (backendName === 'wasm' || backendName === 'webgpu') && tf.getKernel(GELU_GATE, backendName) !== undefined && gate.dtype === 'float32' && value.dtype === 'float32';
  const op = tf.customGrad(((g: Tensor, v: Tensor, save: (t: Tensor[]) => void) => {
    save([g, v]);
    const out = fused ? (tf.engine().runKernel(GELU_GATE, { gate: g, value: v }) as Tensor) : tf.tidy(() => tf.mul(geluOps(g), v));
    return {
      value: out,
      gradFunc: (dy: Tensor, [gs, vs]: Tensor[]) => {
        const cdf = tf.mul(0.5, tf.add(1, tf.erf(tf.mul(gs!, Math.SQRT1_2)))); // Φ(g)
        const pdf = tf.mul(1 / Math.sqrt(2 * Math.PI), tf.exp(tf.mul(-0.5, tf.square(gs!)))); // φ(g)
        const dGelu = tf.add(cdf, tf.mul(gs!, pdf));
        return [tf.mul(tf.mul(dy, vs!), dGelu), tf.mul(dy, tf.mul(gs!, cdf))];
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return op(gate, value) as Tensor;
}

/** Name of the fused twiddle-and-transpose kernel of a Monarch DFT stage (monarch-dft.ts). */
export const TWIDDLE_TRANSPOSE = 'M2TwiddleTranspose';

/**
 * One Monarch DFT stage's twiddle product and digit transpose in one pass (two outputs, re and im). Forward:
 * x [O, A, B, R] → y [O, R, B, A] with y = x ⊙ t[a, b, k]; inverse: x [O, R, B, A] → y [O, A, B, R] with
 * y = x ⊙ conj t[a, b, k]. Twiddles t are flat [A·B·R]. Replaces four multiplies, two adds and two transposes.
 */
const twiddleTransposeWasm: KernelFunc = ({ inputs, backend, attrs }) => {
  const { xRe, xIm, tRe, tIm } = inputs as { xRe: TensorInfo; xIm: TensorInfo; tRe: TensorInfo; tIm: TensorInfo };
  const { a, b, r, inverse } = attrs as unknown as { a: number; b: number; r: number; inverse: boolean };
  for (const t of [xRe, xIm, tRe, tIm]) floatInput(TWIDDLE_TRANSPOSE, t);
  const wasm = backend as unknown as WasmBackendLike;
  const size = tf.util.sizeFromShape(xRe.shape);
  const outer = size / (a * b * r);
  const outShape = inverse ? [outer, a, b, r] : [outer, r, b, a];
  const yRe = wasm.makeOutput(outShape, 'float32');
  const yIm = wasm.makeOutput(outShape, 'float32');
  const offset = (t: TensorInfo) => wasm.typedArrayFromHeap(t).byteOffset / 4; // views after allocating (the heap may grow)
  const args = [offset(xRe), offset(xIm), offset(tRe), offset(tIm), offset(yRe), offset(yIm), a, b, r, inverse ? 1 : 0];
  runParallel(PARALLEL_KERNELS.twiddleTranspose, args, outer * b, heapFloats(wasm.typedArrayFromHeap(xRe)), 2 * size);
  return [yRe, yIm];
};

/** Kernel configs this module adds to (or replaces in) the `wasm` backend. */
export const wasmMathKernels: readonly KernelConfig[] = [
  { kernelName: tf.Erf, backendName: 'wasm', kernelFunc: erf },
  { kernelName: GELU_GATE, backendName: 'wasm', kernelFunc: geluGateWasm },
  { kernelName: TWIDDLE_TRANSPOSE, backendName: 'wasm', kernelFunc: twiddleTransposeWasm },
];

/**
 * Registers the kernels in `wasmMathKernels` for the `wasm` backend: replaces its Erf (same results to 2e-7, gradients
 * unchanged: they are registered per kernel name) and adds the fused GELU gate used by {@link geluGate} and the fused
 * twiddle-and-transpose of the Monarch DFT stages. Idempotent.
 *
 * @returns The kernel names registered by this call ([] if already done or the wasm backend is absent).
 * @example
 * registerWasmMathKernels(); // → ['Erf', 'M2GeluGate', 'M2TwiddleTranspose'] the first time
 */
export function registerWasmMathKernels(): string[] {
  const done: string[] = [];
  if (tf.getKernel(tf.Erf, 'wasm') === undefined) return done; // no wasm backend registered
  for (const config of wasmMathKernels) {
    const current = tf.getKernel(config.kernelName, 'wasm');
    if (current?.kernelFunc === config.kernelFunc) continue;
    if (current !== undefined) tf.unregisterKernel(config.kernelName, 'wasm');
    tf.registerKernel(config);
    done.push(config.kernelName);
  }
  return done;
}
