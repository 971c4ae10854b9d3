// Two small fused WGSL kernels for the rest of an M2 layer on webgpu, where stock tfjs issues one kernel per
// elementwise op:
//   M2LayerNormRows   LayerNorm over the last axis (biased variance, like torch): one workgroup per row, two
//                     workgroup reductions (mean, then the centred sum of squares), one write — instead of ~10 kernels.
//   M2GeluGate        GELU(gate) ⊙ value with the exact (erf) GELU — instead of ~6. Registered under the name the
//                     wasm kernel of `geluGate` uses, so `geluGate` runs it on webgpu; erf is tfjs-webgpu's own
//                     Abramowitz–Stegun 7.1.26 form (|error| ≤ 1.5e-7), so results match the stock ops.
import * as tf from '@tensorflow/tfjs-core';
import type { KernelConfig, KernelFunc, Tensor, TensorInfo } from '@tensorflow/tfjs-core';
import { LongConvProgram, runProgram } from './webgpu-long-conv.js';
import { fusedKernelsOff } from '../env.js';
import { registerWebGpuKernels } from './webgpu-kernels.js';

/** Name of the webgpu LayerNorm kernel. */
export const LAYER_NORM_KERNEL = 'M2LayerNormRows';
/** Name shared with the wasm GELU-gate kernel (wasm-math-kernels.ts). */
const GELU_GATE_KERNEL = 'M2GeluGate';

const THREADS = 256;

/**
 * WGSL of the row LayerNorm: inputs `X` [rows, d], `G` (weight [d]), `B` (bias [d]); uniforms rows, channels = d,
 * and `eps` (f32).
 *
 * @returns The shader body.
 * @example
 * layerNormShader().includes('fn main()'); // → true
 */
export function layerNormShader(): string {
  return `
  var<workgroup> m2red : array<f32, ${THREADS}>;
  fn m2Sum(t : u32, v : f32) -> f32 {
    m2red[t] = v;
    workgroupBarrier();
    for (var s = ${THREADS / 2}u; s > 0u; s = s >> 1u) {
      if (t < s) { m2red[t] = m2red[t] + m2red[t + s]; }
      workgroupBarrier();
    }
    let total = m2red[0];
    workgroupBarrier();
    return total;
  }
  fn main() {
    let t = localIndex;
    let rows = u32(uniforms.rows);
    let d = u32(uniforms.channels);
    let r = workgroupId.x + workgroupId.y * numWorkgroups.x;
    let row = min(r, rows - 1u) * d;
    var s = 0.0;
    for (var j = t; j < d; j = j + ${THREADS}u) { s = s + X[row + j]; }
    let mean = m2Sum(t, s) / f32(d);
    var q = 0.0;
    for (var j = t; j < d; j = j + ${THREADS}u) { let c = X[row + j] - mean; q = q + c * c; }
    let scale = inverseSqrt(m2Sum(t, q) / f32(d) + uniforms.eps);
    if (r < rows) {
      for (var j = t; j < d; j = j + ${THREADS}u) { result[row + j] = (X[row + j] - mean) * scale * G[j] + B[j]; }
    }
  }
  `;
}

/**
 * WGSL of GELU(gate) ⊙ value over flat tensors: inputs `A` (gate), `V` (value); uniform rows = element count.
 *
 * @returns The shader body.
 * @example
 * geluGateShader().includes('fn main()'); // → true
 */
export function geluGateShader(): string {
  return `
  fn m2Erf(a : f32) -> f32 {
    let t = 1.0 / (1.0 + 0.3275911 * abs(a));
    return sign(a) * (1.0 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * exp(-a * a));
  }
  fn main() {
    let e = (workgroupId.x + workgroupId.y * numWorkgroups.x) * ${THREADS}u + localIndex;
    if (e < u32(uniforms.rows)) {
      let g = A[e];
      result[e] = 0.5 * g * (1.0 + m2Erf(g * ${Math.SQRT1_2})) * V[e];
    }
  }
  `;
}

/** The LayerNorm program has an extra f32 uniform. */
class LayerNormProgram extends LongConvProgram {
  override readonly uniforms = 'rows : i32, channels : i32, seqLen : i32, kLen : i32, rLen : i32, batch : i32, eps : f32,';
}

const layerNormKernel: KernelFunc = ({ inputs, backend, attrs }) => {
  const { x, weight, bias } = inputs as { x: TensorInfo; weight: TensorInfo; bias: TensorInfo };
  const { eps } = attrs as unknown as { eps: number };
  const d = x.shape[x.shape.length - 1]!;
  const rows = x.shape.slice(0, -1).reduce((a, b) => a * b, 1);
  const program = new LayerNormProgram(['X', 'G', 'B'], [...x.shape], THREADS, rows, 'm2LayerNormRows', layerNormShader);
  const uniforms = [rows, d, 0, 0, 0, 0].map((v) => ({ type: 'int32', data: [v] }));
  uniforms.push({ type: 'float32', data: [eps] });
  return (backend as unknown as { runWebGPUProgram(p: object, i: TensorInfo[], t: string, u: unknown[]): TensorInfo }).runWebGPUProgram(program, [x, weight, bias], 'float32', uniforms);
};

const geluGateKernel: KernelFunc = ({ inputs, backend }) => {
  const { gate, value } = inputs as { gate: TensorInfo; value: TensorInfo };
  const size = gate.shape.reduce((a, b) => a * b, 1);
  const program = new LongConvProgram(['A', 'V'], [...gate.shape], THREADS, Math.ceil(size / THREADS), 'm2GeluGate', geluGateShader);
  return runProgram(backend, program, [gate, value], { rows: size, channels: 0, seqLen: 0 });
};

/** The LayerNorm and GELU-gate kernels, for the webgpu backend (registered by registerWebGpuKernels). */
export const normKernelConfigs: KernelConfig[] = [
  { kernelName: LAYER_NORM_KERNEL, backendName: 'webgpu', kernelFunc: layerNormKernel },
  { kernelName: GELU_GATE_KERNEL, backendName: 'webgpu', kernelFunc: geluGateKernel },
];

/**
 * LayerNorm over the last axis, (x − mean)/√(var + eps)·weight + bias, as one WGSL dispatch on webgpu. Inference
 * only: under a gradient tape, on other backends or for non-float32 inputs it returns undefined (use stock ops).
 *
 * Shapes: x [..., d], weight [d], bias [d] → [..., d]
 * @param x - Input.
 * @param weight - Scale γ.
 * @param bias - Shift β.
 * @param eps - Added to the variance.
 * @param recording - Whether a gradient tape is recording (then undefined is returned).
 * @returns The normalised tensor, or undefined.
 * @example
 * const y = webGpuLayerNorm(x, w, b, 1e-12, false) ?? stockLayerNorm(x, w, b, 1e-12);
 */
export function webGpuLayerNorm(x: Tensor, weight: Tensor, bias: Tensor, eps: number, recording: boolean): Tensor | undefined {
  if (recording || tf.getBackend() !== 'webgpu' || x.rank < 1) return undefined;
  if (fusedKernelsOff()) return undefined;
  const d = x.shape[x.rank - 1]!;
  if ([x, weight, bias].some((t) => t.dtype !== 'float32') || weight.size !== d || bias.size !== d || x.size === 0) return undefined;
  registerWebGpuKernels();
  return tf.engine().runKernel(LAYER_NORM_KERNEL, { x, weight, bias }, { eps } as unknown as tf.NamedAttrMap) as Tensor;
}
