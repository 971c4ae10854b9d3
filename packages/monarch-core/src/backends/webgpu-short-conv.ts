// M2's short causal depthwise convolution (kernel 3, m2-architecture.md §1.6) as WGSL kernels with their gradient:
//
//   y[b, t, c]  = bias[c] + w[c, 0]·z[b, t−2, c] + w[c, 1]·z[b, t−1, c] + w[c, 2]·z[b, t, c]      (z[<0] = 0)
//   dz[b, t, c] = w[c, 2]·dy[b, t, c] + w[c, 1]·dy[b, t+1, c] + w[c, 0]·dy[b, t+2, c]             (dy[≥L] = 0)
//   dw[c, k]    = Σ_{b,t} dy[b, t, c]·z[b, t−2+k, c],   dbias[c] = Σ_{b,t} dy[b, t, c]
//
// Stock ops need a pad, three slices, tap slices, three products and two adds (~12 kernels) per block, and more for
// the gradient; here the forward and dz are one elementwise dispatch each (channel-last, coalesced) and dw, dbias
// one partial-sum dispatch over row chunks plus a Sum.
import * as tf from '@tensorflow/tfjs-core';
import type { KernelConfig, KernelFunc, Tensor, Tensor1D, Tensor3D, TensorInfo } from '@tensorflow/tfjs-core';
import { ShapeError } from '../errors.js';
import { LongConvProgram, runProgram } from './webgpu-long-conv.js';
import { fusedKernelsOff } from '../env.js';
import { registerWebGpuKernels } from './webgpu-kernels.js';

/** Kernel names (webgpu only). */
export const SHORT_CONV_KERNELS = { forward: 'M2ShortConv', inputGrad: 'M2ShortConvInputGrad', weightGrad: 'M2ShortConvWeightGrad' } as const;

type Mode = keyof typeof SHORT_CONV_KERNELS;

/** Rows of [B·L] summed by one weight-gradient workgroup row group. */
const ROWS_PER_SPLIT = 64;

/**
 * WGSL of one short-convolution kernel. Inputs: forward `Z, P` (P = taps [C, 3] then bias [C], flat); inputGrad
 * `G, P`; weightGrad `G, Z`. Uniforms: rows = B·L, channels = C, seqLen = L.
 *
 * @param mode - Which kernel.
 * @returns The shader body.
 * @example
 * shortConvShader('forward').includes('fn main()'); // → true
 */
export function shortConvShader(mode: Mode): string {
  const prologue = `
    let channels = u32(uniforms.channels);
    let len = u32(uniforms.seqLen);
    let total = u32(uniforms.rows) * channels;`;
  if (mode === 'forward' || mode === 'inputGrad') {
    // Element e = (row, c), row = b·L + t; neighbours in t are ±channels apart.
    const body = mode === 'forward'
      ? `var acc = P[3u * channels + c] + P[3u * c + 2u] * Z[e];
        if (t >= 1u) { acc = acc + P[3u * c + 1u] * Z[e - channels]; }
        if (t >= 2u) { acc = acc + P[3u * c] * Z[e - 2u * channels]; }`
      : `var acc = P[3u * c + 2u] * G[e];
        if (t + 1u < len) { acc = acc + P[3u * c + 1u] * G[e + channels]; }
        if (t + 2u < len) { acc = acc + P[3u * c] * G[e + 2u * channels]; }`;
    return `
  fn main() {${prologue}
    let e = (workgroupId.x + workgroupId.y * numWorkgroups.x) * 256u + localIndex;
    if (e < total) {
      let c = e % channels;
      let t = (e / channels) % len;
      ${body}
      result[e] = acc;
    }
  }
  `;
  }
  // weightGrad: workgroup (channel block of 64, row split); 4 row lanes × 64 channels; partial [splits, C, 4].
  return `
  var<workgroup> m2part : array<vec4<f32>, 256>;
  fn main() {${prologue}
    let blocks = (channels + 63u) / 64u;
    let w = workgroupId.x + workgroupId.y * numWorkgroups.x;
    let block = w % blocks;
    let split = w / blocks;
    let c = block * 64u + (localIndex & 63u);
    let lane = localIndex >> 6u;
    var acc = vec4<f32>(0.0);
    if (c < channels) {
      let rows = u32(uniforms.rows);
      let end = min(rows, (split + 1u) * ${ROWS_PER_SPLIT}u);
      for (var row = split * ${ROWS_PER_SPLIT}u + lane; row < end; row = row + 4u) {
        let t = row % len;
        let e = row * channels + c;
        let g = G[e];
        var z2 = 0.0;
        var z1 = 0.0;
        if (t >= 2u) { z2 = Z[e - 2u * channels]; }
        if (t >= 1u) { z1 = Z[e - channels]; }
        acc = acc + g * vec4<f32>(z2, z1, Z[e], 1.0);
      }
    }
    m2part[localIndex] = acc;
    workgroupBarrier();
    // Workgroups past the last split (the 2-D grid rounds up) write nothing: their rows would lie past the result.
    if (lane == 0u && c < channels && split * ${ROWS_PER_SPLIT}u < u32(uniforms.rows)) {
      let s = m2part[localIndex] + m2part[localIndex + 64u] + m2part[localIndex + 128u] + m2part[localIndex + 192u];
      let o = (split * channels + c) * 4u;
      result[o] = s.x;
      result[o + 1u] = s.y;
      result[o + 2u] = s.z;
      result[o + 3u] = s.w;
    }
  }
  `;
}

function kernelFor(mode: Mode): KernelFunc {
  return ({ inputs, backend }) => {
    const { a, b } = inputs as { a: TensorInfo; b: TensorInfo };
    const [batch, length, channels] = a.shape;
    const rows = batch * length;
    const sizes = { rows, channels, seqLen: length };
    if (mode !== 'weightGrad') {
      const names = mode === 'forward' ? ['Z', 'P'] : ['G', 'P'];
      const program = new LongConvProgram(names, [batch, length, channels], 256, Math.ceil((rows * channels) / 256), `m2ShortConv_${mode}`, () => shortConvShader(mode));
      return runProgram(backend, program, [a, b], sizes);
    }
    const splits = Math.ceil(rows / ROWS_PER_SPLIT);
    const program = new LongConvProgram(['G', 'Z'], [splits, channels, 4], 256, splits * Math.ceil(channels / 64), 'm2ShortConv_weightGrad', () => shortConvShader(mode));
    return runProgram(backend, program, [a, b], sizes);
  };
}

/** The short-convolution kernels, for the webgpu backend (registered by registerWebGpuKernels). */
export const shortConvKernelConfigs: KernelConfig[] = (Object.keys(SHORT_CONV_KERNELS) as Mode[])
  .map((mode) => ({ kernelName: SHORT_CONV_KERNELS[mode], backendName: 'webgpu', kernelFunc: kernelFor(mode) }));

/**
 * Whether {@link webGpuShortConv} runs now for float32 inputs (webgpu active, not switched off by
 * `M2_FUSED_LONG_CONV=0`): check it before computing its input.
 *
 * @returns True when the fused short convolution applies.
 * @example
 * if (canFuseShortConv()) y = webGpuShortConv(inLinear(u), w, b);
 */
export function canFuseShortConv(): boolean {
  return tf.getBackend() === 'webgpu' && !fusedKernelsOff();
}

/**
 * The short causal depthwise convolution (kernel 3) as fused WGSL kernels on webgpu, differentiable with respect to
 * z, the taps and the bias: forward 1 dispatch (+1 to pack taps and bias), backward 3 (dz, partial dw/dbias, Sum).
 *
 * Shapes: z [B, L, C] × weight [C, 1, 3] or [C, 3] × bias [C] → [B, L, C]
 * @param z - Input, channel-last.
 * @param weight - Taps (tap k multiplies z[t − 2 + k]).
 * @param bias - Bias.
 * @returns y, or undefined when the backend is not webgpu or an input is not float32 (compose stock ops then).
 * @throws ShapeError if the weight or bias do not have C channels.
 * @example
 * const y = webGpuShortConv(z, w, b) ?? slowShortConv(z, w, b);
 */
export function webGpuShortConv(z: Tensor3D, weight: Tensor, bias: Tensor1D): Tensor3D | undefined {
  if (!canFuseShortConv() || [z, weight, bias].some((t) => t.dtype !== 'float32')) return undefined;
  const channels = z.shape[2];
  if (weight.size !== 3 * channels || bias.size !== channels) {
    throw new ShapeError(`webGpuShortConv: weight must hold [${channels}, 3] taps and bias ${channels} values (C of z), got weight [${weight.shape.join(', ')}] and bias [${bias.shape.join(', ')}]`, { parameter: 'weight' });
  }
  registerWebGpuKernels();
  const run = tf.customGrad(((...args: unknown[]) => {
    const save = args[args.length - 1] as (tensors: Tensor[]) => void;
    const [zIn, wIn, bIn] = args as Tensor[];
    const params = tf.concat([tf.reshape(wIn!, [-1]), tf.reshape(bIn!, [-1])]); // [4C]: taps [C, 3], bias [C]
    save([zIn!, params]);
    return {
      value: tf.engine().runKernel(SHORT_CONV_KERNELS.forward, { a: zIn!, b: params }) as Tensor3D,
      gradFunc: (dy: Tensor, saved: Tensor[]) => {
        const [zSaved, paramsSaved] = saved;
        const dz = tf.engine().runKernel(SHORT_CONV_KERNELS.inputGrad, { a: dy, b: paramsSaved! }) as Tensor3D;
        const partial = tf.engine().runKernel(SHORT_CONV_KERNELS.weightGrad, { a: dy, b: zSaved! }) as Tensor; // [splits, C, 4]
        const sums = tf.sum(partial, 0); // [C, 4]: dw taps 0..2, dbias
        const [dw, db] = tf.split(sums, [3, 1], 1);
        return [dz, tf.reshape(dw!, weight.shape), tf.reshape(db!, bias.shape)];
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return run(z, weight, bias) as Tensor3D;
}
