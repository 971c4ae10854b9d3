// The core of M2's sequence mixer at inference as ONE WGSL dispatch on webgpu (m2-architecture.md §1.6):
//
//   x1, x2, v = causal 3-tap depthwise convolutions (+ bias) of the in_linear output z's three channel blocks
//   h = v ⊙ x1
//   y = (conv(h, k_main) + D_main ⊙ h) ⊙ x2 + conv(u, k_res) + D_res ⊙ u
//
// with both long convolutions from cached kernel spectra (fused layout, webgpu-long-conv.ts). Stock ops need ~45
// kernels for this per layer (short-convolution slices, pads and products, the gate, four transposes, the pair of
// convolutions, the combination); here one workgroup per (batch, channel) row reads z and u in their natural
// channel-last layouts (or channel-first ones, whole rows at a time), keeps the row in workgroup memory for both FFT
// round trips and writes y in the same layout.
import * as tf from '@tensorflow/tfjs-core';
import type { KernelConfig, KernelFunc, Tensor, Tensor1D, Tensor3D, TensorInfo } from '@tensorflow/tfjs-core';
import { ShapeError } from '../errors.js';
import { fusedConvSize, fusedSpectrumOf, LongConvProgram, runProgram, singlePassCommon, threadsFor, twiddleTable } from './webgpu-long-conv.js';
import { fusedKernelsOff } from '../env.js';
import { registerWebGpuKernels } from './webgpu-kernels.js';
import { workgroupStorageBytes } from './webgpu-limits.js';
import { spectrumProduct } from './webgpu-wgsl-common.js';

/** Name of the fused mixer kernel (registered for the webgpu backend). */
export const MIXER_KERNEL = 'M2FusedMixerCore';

/**
 * WGSL of the fused mixer core for half-length M. Inputs `Z` [B, L, 3d], `P` (see {@link mixerParams}), `KM`
 * [d, M+1, 2], `W`, and with a residual convolution `U` [B, L, d], `KR` [d, M+1, 2]. Uniforms: rows = B·d,
 * channels = d, seqLen = L.
 *
 * @param m - Half the transform size (a power of two ≥ L).
 * @param residual - Whether the residual long convolution of u is added.
 * @param channelFirst - Z [3d, B, L], U and the result [d, B, L] instead of channel-last.
 * @returns The shader body.
 * @example
 * mixerShader(1024, true).includes('fn main()'); // → true
 */
export function mixerShader(m: number, residual: boolean, channelFirst = false): string {
  const threads = threadsFor(m);
  // Each thread holds the sample pairs (2q, 2q+1) of complex slots q = t + i·threads < ⌈M/2⌉ (L ≤ M samples).
  const slots = Math.max(1, m >> 1);
  const perThread = Math.ceil(slots / threads);
  // × the kernel spectrum (input KM or KR, packed [d, M+1, 2]), then the inverse transform.
  const convolve = (k: string) => `
    ${spectrumProduct(m, threads, (i) => `vec2<f32>(${k}[2u * (${i})], ${k}[2u * (${i}) + 1u])`)}
    workgroupBarrier();
    m2Inverse(t);`;
  // Stores the held pairs (zeros past L) and zeros in the padded half.
  const fill = `
    for (var i = 0u; i < ${perThread}u; i = i + 1u) {
      let q = t + i * ${threads}u;
      if (q < ${slots}u) { m2buf[q] = held[i]; }
    }
    for (var q = ${slots}u + t; q < ${m}u; q = q + ${threads}u) { m2buf[q] = vec2<f32>(0.0); }
    workgroupBarrier();
    m2Forward(t);`;
  const at = (j: string) => (channelFirst ? `(c * u32(uniforms.batch) + b) * len + ${j}` : `(b * len + ${j}) * d + c`);
  return `${singlePassCommon(m)}
  // Causal 3-tap convolution (+ bias) of channel block 'part' of z at position j: b + w0·z[j−2] + w1·z[j−1] + w2·z[j].
  fn m2Short(b : u32, j : u32, part : u32, c : u32) -> f32 {
    let d = u32(uniforms.channels);
    let len = u32(uniforms.seqLen);
    let col = part * d + c;
    let row = b * len;
    ${channelFirst ? `let base = (col * u32(uniforms.batch) + b) * len + j; // z as [3d, B, L]
    let step = 1u;` : `let base = (row + j) * 3u * d + col; // z as [B, L, 3d]
    let step = 3u * d;`}
    var acc = P[9u * d + col] + P[3u * col + 2u] * Z[base];
    if (j >= 1u) { acc = acc + P[3u * col + 1u] * Z[base - step]; }
    if (j >= 2u) { acc = acc + P[3u * col] * Z[base - 2u * step]; }
    return acc;
  }
  // h = v ⊙ x1 at position j (0 past L).
  fn m2Gate(b : u32, j : u32, c : u32, len : u32) -> f32 {
    if (j >= len) { return 0.0; }
    return m2Short(b, j, 2u, c) * m2Short(b, j, 0u, c);
  }

  fn main() {
    let t = localIndex;
    let rows = u32(uniforms.rows);
    let d = u32(uniforms.channels);
    let len = u32(uniforms.seqLen);
    let r = workgroupId.x + workgroupId.y * numWorkgroups.x;
    let row = min(r, rows - 1u);
    let b = row / d;
    let c = row % d;
    let kBase = c * ${m + 1}u;
    var held : array<vec2<f32>, ${perThread}>;
    var acc : array<vec2<f32>, ${perThread}>;
    for (var i = 0u; i < ${perThread}u; i = i + 1u) {
      let j = 2u * (t + i * ${threads}u);
      held[i] = vec2<f32>(m2Gate(b, j, c, len), m2Gate(b, j + 1u, c, len));
    }
    ${fill}
    ${convolve('KM')}
    let dMain = P[12u * d + c];
    for (var i = 0u; i < ${perThread}u; i = i + 1u) {
      let q = t + i * ${threads}u;
      let j = 2u * q;
      if (j < len) {
        var x2 = vec2<f32>(m2Short(b, j, 1u, c), 0.0);
        if (j + 1u < len) { x2.y = m2Short(b, j + 1u, 1u, c); }
        acc[i] = (m2buf[q] * m2Scale + dMain * held[i]) * x2;
      }
    }
    ${residual ? `workgroupBarrier();
    for (var i = 0u; i < ${perThread}u; i = i + 1u) {
      let j = 2u * (t + i * ${threads}u);
      var v = vec2<f32>(0.0);
      if (j < len) { v.x = U[${at('j')}]; }
      if (j + 1u < len) { v.y = U[${at('j + 1u')}]; }
      held[i] = v;
    }
    ${fill}
    ${convolve('KR')}
    let dRes = P[13u * d + c];
    for (var i = 0u; i < ${perThread}u; i = i + 1u) {
      let q = t + i * ${threads}u;
      if (2u * q < len) { acc[i] = acc[i] + m2buf[q] * m2Scale + dRes * held[i]; }
    }` : ''}
    if (r < rows) {
      for (var i = 0u; i < ${perThread}u; i = i + 1u) {
        let j = 2u * (t + i * ${threads}u);
        if (j < len) { result[${at('j')}] = acc[i].x; }
        if (j + 1u < len) { result[${at('j + 1u')}] = acc[i].y; }
      }
    }
  }
  `;
}

const mixerKernel: KernelFunc = ({ inputs, backend, attrs }) => {
  const { z, p, km, u, kr } = inputs as { z: TensorInfo; p: TensorInfo; km: TensorInfo; u?: TensorInfo; kr?: TensorInfo };
  const { m, channelFirst } = attrs as unknown as { m: number; channelFirst: boolean };
  // z [B, L, 3d] (or [3d, B, L] channel-first); the output has u's layout.
  const [batch, length, threeD] = channelFirst ? [z.shape[1]!, z.shape[2]!, z.shape[0]!] : z.shape;
  const d = threeD! / 3;
  const residual = u !== undefined && kr !== undefined;
  const w = twiddleTable(2 * m, m);
  const names = residual ? ['Z', 'P', 'KM', 'W', 'U', 'KR'] : ['Z', 'P', 'KM', 'W'];
  const outputShape = channelFirst ? [d, batch!, length!] : [batch!, length!, d];
  const program = new LongConvProgram(names, outputShape, threadsFor(m), batch! * d, `m2Mixer_${m}_t${threadsFor(m)}_${residual ? 'r' : ''}${channelFirst ? 'c' : ''}`, () => mixerShader(m, residual, channelFirst));
  return runProgram(backend, program, residual ? [z, p, km, w, u, kr] : [z, p, km, w], { rows: batch! * d, channels: d, seqLen: length!, batch: batch! });
};

/** The fused mixer kernel, for the webgpu backend (registered by registerWebGpuKernels). */
export const mixerKernelConfigs: KernelConfig[] = [{ kernelName: MIXER_KERNEL, backendName: 'webgpu', kernelFunc: mixerKernel }];

/**
 * Packs the mixer's per-channel parameters for {@link webGpuMixerCore} into one vector (cache it with the weights):
 * [short-conv taps (3d·3, row-major [3d, 3]) | short-conv bias (3d) | D_main (d) | D_res (d, zeros if none)].
 *
 * Shapes: shortWeight [3d, 1, 3] or [3d, 3], shortBias [3d], mainSkip [d], residualSkip [d] → [14d]
 * @param shortWeight - Depthwise short-convolution taps (tap k multiplies z[t − 2 + k]).
 * @param shortBias - Its bias.
 * @param mainSkip - D of the gated long convolution.
 * @param residualSkip - D of the residual long convolution, if any.
 * @returns The packed vector.
 * @throws ShapeError if the sizes do not fit one d.
 * @example
 * mixerParams(tf.zeros([6, 1, 3]), tf.zeros([6]), tf.ones([2])).shape; // → [28]
 */
export function mixerParams(shortWeight: Tensor, shortBias: Tensor, mainSkip: Tensor, residualSkip?: Tensor): Tensor1D {
  const d = mainSkip.size;
  if (shortWeight.size !== 9 * d || shortBias.size !== 3 * d || (residualSkip !== undefined && residualSkip.size !== d)) {
    throw new ShapeError(`mixerParams: expected shortWeight of 3d·3, shortBias of 3d and skips of d = ${d} values, got ${shortWeight.size}, ${shortBias.size} and ${residualSkip?.size ?? '-'}`, { parameter: 'shortWeight' });
  }
  return tf.tidy(() => tf.concat([tf.reshape(shortWeight, [-1]), tf.reshape(shortBias, [-1]), tf.reshape(mainSkip, [-1]),
    residualSkip === undefined ? tf.zeros([d]) : tf.reshape(residualSkip, [-1])]) as Tensor1D);
}

/**
 * Whether {@link webGpuMixerCore} can run a length-L mixer now (webgpu active, one row fits a workgroup's memory,
 * not switched off by `M2_FUSED_LONG_CONV=0`): check it before computing its inputs.
 *
 * @param length - L.
 * @returns True when the fused mixer core applies.
 * @example
 * if (canFuseMixer(4096)) y = webGpuMixerCore(z, u, params, sm, sr);
 */
export function canFuseMixer(length: number): boolean {
  if (tf.getBackend() !== 'webgpu') return false;
  if (fusedKernelsOff()) return false;
  return fusedConvSize(length).bytes <= workgroupStorageBytes();
}

/** Options of {@link webGpuMixerCore}. */
export interface MixerCoreOptions {
  /**
   * true: z, u (and the result) are channel-first, z [3d, B, L], u [d, B, L] → y [d, B, L]: the kernel's row reads
   * and writes are contiguous (on the H200 at L = 4096, 3.8 instead of 6.2 ms per forward), worth it where the caller
   * makes those layouts without extra transposes (M2SequenceMixer does from L = 2048). Default false: channel-last,
   * z [B, L, 3d], u [B, L, d] → y [B, L, d], read strided by the kernel (no transposes: fewest dispatches).
   */
  channelFirst?: boolean;
}

/**
 * M2's sequence-mixer core at inference as one WGSL dispatch (see the top of this file): from the in_linear output
 * z [B, L, 3d] (blocks x1 | x2 | v, before the short convolutions) and the normed input u, returns
 * y = (conv(v⊙x1) + D⊙(v⊙x1))⊙x2 + conv(u) + D_res⊙u. Not differentiable (inference only).
 *
 * Shapes: z [B, L, 3d], u [B, L, d], params [14d], spectra of [d, L] kernels → y [B, L, d]; with `channelFirst`,
 * z [3d, B, L], u [d, B, L] → y [d, B, L]
 * @param z - in_linear output, blocks [x1 | x2 | v] on the last axis.
 * @param u - The mixer's (normed) input, for the residual convolution; omit without one.
 * @param params - From {@link mixerParams}.
 * @param main - Spectrum of the gated convolution's kernels (convKernelSpectrum made on webgpu).
 * @param residual - Spectrum of the residual convolution's kernels, with u.
 * @param options - Layout of z, u and y.
 * @returns y, or undefined when the fused kernel does not apply (backend not webgpu, spectra not in the fused layout,
 *   a row longer than one workgroup's memory, not float32): then compose the stock ops.
 * @example
 * const y = webGpuMixerCore(z, u, params, mainSpectrum, residualSpectrum) ?? slowPath();
 */
export function webGpuMixerCore(z: Tensor3D, u: Tensor3D | undefined, params: Tensor1D,
  main: { re: Tensor; im: Tensor }, residual?: { re: Tensor; im: Tensor }, options: MixerCoreOptions = {}): Tensor3D | undefined {
  const channelFirst = options.channelFirst === true; // z [3d, B, L], u [d, B, L] → y [d, B, L]
  const [batch, length, threeD] = channelFirst ? [z.shape[1], z.shape[2], z.shape[0]] : z.shape;
  if (!canFuseMixer(length)) return undefined;
  const d = threeD / 3;
  const km = fusedSpectrumOf(main);
  const kr = residual === undefined ? undefined : fusedSpectrumOf(residual);
  if (km === undefined || (residual !== undefined) !== (u !== undefined) || (residual !== undefined && kr === undefined)) return undefined;
  if ([z, u, params].some((t) => t !== undefined && t.dtype !== 'float32')) return undefined;
  const { m } = fusedConvSize(length);
  if (km.m !== m || (kr !== undefined && kr.m !== m)) return undefined;
  const uShape = channelFirst ? [d, batch, length] : [batch, length, d];
  if (!Number.isInteger(d) || params.size !== 14 * d || km.packed.shape[0] !== d || (u !== undefined && u.shape.some((v, i) => v !== uShape[i]))) {
    const layout = channelFirst ? 'z [3d, B, L], u [d, B, L]' : 'z [B, L, 3d], u [B, L, d]';
    throw new ShapeError(`webGpuMixerCore: expected ${layout}, params [14d] and spectra for d channels, got z [${z.shape.join(', ')}], u [${u?.shape.join(', ') ?? '-'}], params [${params.size}], spectrum channels ${km.packed.shape[0]}`, { parameter: 'z' });
  }
  registerWebGpuKernels();
  const inputs: tf.NamedTensorMap = { z, p: params, km: km.packed };
  if (u !== undefined && kr !== undefined) {
    inputs.u = u;
    inputs.kr = kr.packed;
  }
  return tf.engine().runKernel(MIXER_KERNEL, inputs, { m, channelFirst } as unknown as tf.NamedAttrMap) as Tensor3D;
}
