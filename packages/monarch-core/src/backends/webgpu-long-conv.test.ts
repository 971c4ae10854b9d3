// The fused WGSL long convolution, executed on webgpu through SwiftShader (a CPU Vulkan driver) and compared with
// float64 references (forward) and the cpu backend's Monarch path (gradients). Skipped, with the reason in the
// test name, where SwiftShader is missing; in CI it must be there (tooling/system-deps.sh installs it).
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import { countDispatches, describeWebGpu, readTensor, swiftShaderWebGpu } from '../../test/webgpu-swiftshader.js';
import { BackendError } from '../errors.js';
import { bidirectionalConv, causalConv, convKernelSpectrum, convPairWithSpectra, convWithSpectrum, disposeConvSpectrum, fftConv } from '../fft-conv.js';
import { bidirectionalConvReference, causalConvReference, longConvReference, relativeL2, seededUniform } from '../testing.js';
import { fourStepPlan, fourStepShader } from './webgpu-long-conv-four-step.js';
import { fusedConvSize, LONG_CONV_KERNELS, longConvShader, rowBlocks, setFusedConvBindingBytes, setFusedConvWorkgroupBytes } from './webgpu-long-conv.js';

const gpu = await swiftShaderWebGpu();
afterAll(() => tf.setBackend('cpu'));

// CI installs SwiftShader (tooling/system-deps.sh): there a missing webgpu is a failure, not a skip.
it('webgpu through SwiftShader is available in CI', () => {
  if (process.env.CI !== undefined) expect(gpu.available, gpu.available ? '' : gpu.reason).toBe(true);
});

/** Plain arrays of a problem: u [B, C, L], kf / kr [C, L], a longer and a shorter kernel, D [C], dy [B, C, L]. */
function problem(batch: number, channels: number, length: number, seed: number) {
  const longLength = Math.min(2 * length, length + 5);
  const shortLength = Math.max(1, length >> 1);
  return {
    batch, channels, length, longLength, shortLength,
    u: seededUniform(batch * channels * length, seed),
    kf: seededUniform(channels * length, seed + 1),
    kr: seededUniform(channels * length, seed + 2),
    kLong: seededUniform(channels * longLength, seed + 3),
    kShort: seededUniform(channels * shortLength, seed + 4),
    d: seededUniform(channels, seed + 5),
    dy: seededUniform(batch * channels * length, seed + 6),
  };
}
type Problem = ReturnType<typeof problem>;
const view = (data: Float32Array, shape: number[]) => ({ shape, data });

describeWebGpu(gpu, 'fused long convolution on webgpu (SwiftShader)', () => {
  it.each([
    [1, 1, 1],
    [3, 2, 7],
    [2, 3, 96],
    [1, 2, 130], // M = 256: 128 threads, two frequency pairs per thread
  ])('B = %i, C = %i, L = %i: causal, bidirectional and fftConv (short and 2L kernels) equal float64 sums', async (batch, channels, length) => {
    await tf.setBackend('webgpu');
    const p = problem(batch, channels, length, length);
    const shape = [batch, channels, length];
    const [u, kf, kr, d] = [tf.tensor3d(p.u, [batch, channels, length]), tf.tensor2d(p.kf, [channels, length]), tf.tensor2d(p.kr, [channels, length]), tf.tensor1d(p.d)];
    const kLong = tf.tensor2d(p.kLong, [channels, p.longLength]);
    const kShort = tf.tensor2d(p.kShort, [channels, p.shortLength]);
    const { result: outputs, total } = countDispatches(() => [
      causalConv(u, kf, d),
      bidirectionalConv(u, kf, kr, d),
      bidirectionalConv(u, kf, kr),
      fftConv(u, kLong),
      fftConv(u, kShort, d),
    ]);
    expect(total).toBe(10); // spectrum + convolution, for each of the five
    const [causal, bidir, bidirNoD, long, short] = await Promise.all(outputs.map(readTensor));
    const uv = view(p.u, shape);
    expect(relativeL2(causal!, causalConvReference(uv, view(p.kf, [channels, length]), view(p.d, [channels])))).toBeLessThan(1e-5);
    expect(relativeL2(bidir!, bidirectionalConvReference(uv, view(p.kf, [channels, length]), view(p.kr, [channels, length]), view(p.d, [channels])))).toBeLessThan(1e-5);
    expect(relativeL2(bidirNoD!, bidirectionalConvReference(uv, view(p.kf, [channels, length]), view(p.kr, [channels, length])))).toBeLessThan(1e-5);
    expect(relativeL2(long!, longConvReference(uv, view(p.kLong, [channels, p.longLength])))).toBeLessThan(1e-5);
    expect(relativeL2(short!, longConvReference(uv, view(p.kShort, [channels, p.shortLength]), view(p.d, [channels])))).toBeLessThan(1e-5);
    tf.dispose([u, kf, kr, d, kLong, kShort, ...outputs]);
    await tf.setBackend('cpu');
  });

  /** Gradients of Σ dy ⊙ f(u, kernels, D) on one backend, read back (webgpu with `rowBytes` of workgroup memory). */
  async function gradients(backend: string, p: Problem, rowBytes?: number) {
    await tf.setBackend(backend);
    setFusedConvWorkgroupBytes(rowBytes);
    const { batch, channels, length } = p;
    const u = tf.tensor3d(p.u, [batch, channels, length]);
    const kf = tf.tensor2d(p.kf, [channels, length]);
    const kr = tf.tensor2d(p.kr, [channels, length]);
    const kLong = tf.tensor2d(p.kLong, [channels, p.longLength]);
    const d = tf.tensor1d(p.d);
    const dy = tf.tensor3d(p.dy, [batch, channels, length]);
    try {
      tf.dispose(bidirectionalConv(u, kf, kr, d)); // warm-up: makes (and keeps) the twiddle table of this size
      const before = tf.memory().numTensors;
      const objective = (y: tf.Tensor) => tf.sum(tf.mul(y, dy));
      const bidir = tf.grads((a, b, c, e) => objective(bidirectionalConv(a as tf.Tensor3D, b as tf.Tensor2D, c as tf.Tensor2D, e as tf.Tensor1D)));
      const causal = tf.grads((a, b) => objective(causalConv(a as tf.Tensor3D, b as tf.Tensor2D)));
      const long = tf.grads((a, b, e) => objective(fftConv(a as tf.Tensor3D, b as tf.Tensor2D, e as tf.Tensor1D)));
      const counted = backend === 'webgpu' ? countDispatches(() => bidir([u, kf, kr, d])) : { result: bidir([u, kf, kr, d]), byProgram: new Map<string, number>() };
      const all = [...counted.result, ...causal([u, kf]), ...long([u, kLong, d])];
      const values = await Promise.all(all.map(readTensor));
      tf.dispose(all);
      const leaked = tf.memory().numTensors - before;
      return { values, fusedDispatches: counted.byProgram.get('LongConvProgram'), leaked };
    } finally {
      tf.dispose([u, kf, kr, kLong, d, dy]);
      setFusedConvWorkgroupBytes(undefined);
      await tf.setBackend('cpu');
    }
  }

  it.each([
    [3, 2, 37],
    [2, 2, 130],
  ])('B = %i, C = %i, L = %i: gradients (u, kf, kr, D; causal; 2L kernel) equal the cpu backend\'s', async (batch, channels, length) => {
    const p = problem(batch, channels, length, 100 + length);
    const reference = await gradients('cpu', p);
    const fused = await gradients('webgpu', p);
    expect(fused.leaked).toBe(0);
    // Forward: spectrum and convolution; backward: du and the kernel gradient (then 3 slices split dkf, dkr, dD).
    expect(fused.fusedDispatches).toBe(4);
    const names = ['du', 'dkf', 'dkr', 'dD', 'causal du', 'causal dkf', 'long du', 'long dk', 'long dD'];
    fused.values.forEach((g, i) => {
      expect(g.shape, names[i]).toEqual(reference.values[i]!.shape);
      expect(relativeL2(g, reference.values[i]!), names[i]).toBeLessThan(1e-4);
    });
  });

  it.each([
    [1, 2, 5, 32], // M = 8 as M1 = 4 columns of M2 = 2
    [3, 2, 37, 256], // M = 64 as 8 × 8
    [2, 3, 130, 512], // M = 256 as 16 × 16, 4 columns per workgroup
  ])('B = %i, C = %i, L = %i with %i bytes of workgroup memory: the four-step passes give the same forward and gradients', async (batch, channels, length, rowBytes) => {
    const p = problem(batch, channels, length, 200 + length);
    const shape = [batch, channels, length];
    await tf.setBackend('webgpu');
    setFusedConvWorkgroupBytes(rowBytes);
    const [u, kf, kr, d] = [tf.tensor3d(p.u, [batch, channels, length]), tf.tensor2d(p.kf, [channels, length]), tf.tensor2d(p.kr, [channels, length]), tf.tensor1d(p.d)];
    const kLong = tf.tensor2d(p.kLong, [channels, p.longLength]);
    const spectrum = convKernelSpectrum(kf, kr);
    let outputs: tf.Tensor[] = [];
    try {
      const counted = countDispatches(() => [bidirectionalConv(u, kf, kr, d), fftConv(u, kLong), convWithSpectrum(u, spectrum, d)]);
      outputs = counted.result;
      expect(counted.byProgram.get('LongConvProgram')).toBe(5 + 5 + 3); // spectrum 2 passes, convolution 3
    } finally {
      setFusedConvWorkgroupBytes(undefined);
    }
    const [bidir, long, cached] = await Promise.all(outputs.map(readTensor));
    tf.dispose([u, kf, kr, d, kLong, ...outputs]);
    disposeConvSpectrum(spectrum);
    await tf.setBackend('cpu');
    const bidirRef = bidirectionalConvReference(view(p.u, shape), view(p.kf, [channels, length]), view(p.kr, [channels, length]), view(p.d, [channels]));
    expect(relativeL2(bidir!, bidirRef)).toBeLessThan(1e-5);
    expect(relativeL2(cached!, bidirRef)).toBeLessThan(1e-5);
    expect(relativeL2(long!, longConvReference(view(p.u, shape), view(p.kLong, [channels, p.longLength])))).toBeLessThan(1e-5);
    const reference = await gradients('cpu', p);
    const fused = await gradients('webgpu', p, rowBytes);
    expect(fused.leaked).toBe(0);
    expect(fused.fusedDispatches).toBe(5 + 3 + 4); // forward; du (3 passes); kernel gradient (2 column passes of u and dy, rows, columns)
    fused.values.forEach((g, i) => expect(relativeL2(g, reference.values[i]!), `gradient ${i}`).toBeLessThan(1e-4));
  });

  it('cached spectra: convWithSpectrum (1 dispatch) and convPairWithSpectra (2) equal float64 sums; u and D gradients equal cpu\'s', async () => {
    const [batch, channels, length] = [2, 3, 50];
    const p = problem(batch, channels, length, 7);
    const q = problem(batch, channels, length, 70);
    const shape = [batch, channels, length];
    await tf.setBackend('webgpu');
    tf.tidy(() => causalConv(tf.ones([1, 1, length]), tf.ones([1, length]))); // warm-up: the kept twiddle table of this size
    const before = tf.memory().numTensors;
    const u = tf.tensor3d(p.u, [batch, channels, length]);
    const v = tf.tensor3d(q.u, [batch, channels, length]);
    const d = tf.tensor1d(p.d);
    const e = tf.tensor1d(q.d);
    const kernels = [tf.tensor2d(p.kf, [channels, length]), tf.tensor2d(p.kr, [channels, length]), tf.tensor2d(q.kf, [channels, length])] as const;
    const { result: [sa, sb], total: spectra } = countDispatches(() => [convKernelSpectrum(kernels[0], kernels[1]), convKernelSpectrum(kernels[2])]);
    expect(spectra).toBe(2);
    const single = countDispatches(() => convWithSpectrum(u, sa!, d));
    expect(single.total).toBe(1);
    const pair = countDispatches(() => convPairWithSpectra(u, sa!, v, sb!, d, e));
    expect(pair.total).toBe(2);
    const [y, ya, yb] = await Promise.all([single.result, ...pair.result].map(readTensor));
    const bidirRef = bidirectionalConvReference(view(p.u, shape), view(p.kf, [channels, length]), view(p.kr, [channels, length]), view(p.d, [channels]));
    expect(relativeL2(y!, bidirRef)).toBeLessThan(1e-5);
    expect(relativeL2(ya!, bidirRef)).toBeLessThan(1e-5);
    expect(relativeL2(yb!, causalConvReference(view(q.u, shape), view(q.kf, [channels, length]), view(q.d, [channels])))).toBeLessThan(1e-5);
    const dy = tf.tensor3d(p.dy, [batch, channels, length]);
    const fusedGrads = tf.grads((a, b) => tf.sum(tf.mul(convWithSpectrum(a as tf.Tensor3D, sa!, b as tf.Tensor1D), dy)))([u, d]);
    const got = await Promise.all(fusedGrads.map(readTensor));
    tf.dispose([single.result, ...pair.result, ...fusedGrads, u, v, d, e, dy, ...kernels]);
    disposeConvSpectrum(sa!);
    disposeConvSpectrum(sb!);
    expect(tf.memory().numTensors).toBe(before);
    await tf.setBackend('cpu');
    const expected = tf.grads((a, b) => tf.sum(tf.mul(bidirectionalConv(a as tf.Tensor3D, tf.tensor2d(p.kf, [channels, length]), tf.tensor2d(p.kr, [channels, length]), b as tf.Tensor1D), tf.tensor3d(p.dy, [batch, channels, length]))))(
      [tf.tensor3d(p.u, [batch, channels, length]), tf.tensor1d(p.d)]);
    const want = await Promise.all(expected.map(readTensor));
    expect(relativeL2(got[0]!, want[0]!)).toBeLessThan(1e-4);
    expect(relativeL2(got[1]!, want[1]!)).toBeLessThan(1e-4);
  });

  it.each([
    [3, 2, 37, 3], // 2 rows a dispatch: one batch entry each
    [2, 3, 37, 4], // 2 rows a dispatch, 3 channels: channel blocks of one entry
  ])('B = %i, C = %i, L = %i past the storage-binding limit: convWithSpectrum runs the four-step passes in %i row blocks, equal to float64 sums; u and D gradients equal cpu\'s', async (batch, channels, length, blocks) => {
    const p = problem(batch, channels, length, 300 + channels);
    const shape = [batch, channels, length];
    await tf.setBackend('webgpu');
    setFusedConvWorkgroupBytes(256); // M = 64 as 8 × 8 four-step passes, 8·M = 512 bytes of scratch a row
    const [kf, kr] = [tf.tensor2d(p.kf, [channels, length]), tf.tensor2d(p.kr, [channels, length])];
    const spectrum = convKernelSpectrum(kf, kr); // C rows fit: the fused layout
    const [u, d, dy] = [tf.tensor3d(p.u, [batch, channels, length]), tf.tensor1d(p.d), tf.tensor3d(p.dy, [batch, channels, length])];
    setFusedConvBindingBytes(1024); // 2 rows a scratch binding
    try {
      const { result: y, byProgram } = countDispatches(() => convWithSpectrum(u, spectrum, d));
      expect(byProgram.get('LongConvProgram')).toBe(3 * blocks);
      const grads = tf.grads((a, b) => tf.sum(tf.mul(convWithSpectrum(a as tf.Tensor3D, spectrum, b as tf.Tensor1D), dy)))([u, d]);
      const [got, du, dD] = await Promise.all([y, ...grads].map(readTensor));
      tf.dispose([y, ...grads]);
      const bidirRef = bidirectionalConvReference(view(p.u, shape), view(p.kf, [channels, length]), view(p.kr, [channels, length]), view(p.d, [channels]));
      expect(relativeL2(got!, bidirRef)).toBeLessThan(1e-5);
      await tf.setBackend('cpu');
      const want = await Promise.all(tf.grads((a, b) => tf.sum(tf.mul(bidirectionalConv(a as tf.Tensor3D, tf.tensor2d(p.kf, [channels, length]), tf.tensor2d(p.kr, [channels, length]), b as tf.Tensor1D), tf.tensor3d(p.dy, shape as [number, number, number]))))(
        [tf.tensor3d(p.u, [batch, channels, length]), tf.tensor1d(p.d)]).map(readTensor));
      expect(relativeL2(du!, want[0]!)).toBeLessThan(1e-4);
      expect(relativeL2(dD!, want[1]!)).toBeLessThan(1e-4);
    } finally {
      setFusedConvBindingBytes(undefined);
      setFusedConvWorkgroupBytes(undefined);
      await tf.setBackend('webgpu');
      tf.dispose([kf, kr, u, d, dy]);
      disposeConvSpectrum(spectrum);
      await tf.setBackend('cpu');
    }
  });

  it('does not grow the tensor count across repeated forwards', async () => {
    await tf.setBackend('webgpu');
    const p = problem(1, 2, 20, 3);
    const u = tf.tensor3d(p.u, [1, 2, 20]);
    const kf = tf.tensor2d(p.kf, [2, 20]);
    const kr = tf.tensor2d(p.kr, [2, 20]);
    tf.dispose(bidirectionalConv(u, kf, kr)); // first call: the twiddle table is created and kept
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) tf.dispose(bidirectionalConv(u, kf, kr));
    const s = convKernelSpectrum(kf, kr);
    tf.dispose(convWithSpectrum(u, s));
    disposeConvSpectrum(s);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([u, kf, kr]);
    await tf.setBackend('cpu');
  });

  it('a spectrum made on webgpu is refused on cpu with one line', async () => {
    await tf.setBackend('webgpu');
    const s = convKernelSpectrum(tf.ones([2, 4]), tf.ones([2, 4]));
    await tf.setBackend('cpu');
    const call = () => convWithSpectrum(tf.ones([1, 2, 4]), s);
    expect(call).toThrow(BackendError);
    expect(call).toThrow(/^convWithSpectrum: this kernel spectrum was made by the webgpu kernels \(layout \[C, M\+1, 2\]\) but the backend is now cpu; make the spectrum again/);
    disposeConvSpectrum(s);
  });
});

describe('fused long convolution shaders (no GPU needed)', () => {
  it('sizes the transform to the power of two ≥ L and a row to 8·M bytes of workgroup memory', () => {
    expect(fusedConvSize(1)).toEqual({ m: 1, n: 2, bytes: 8 });
    expect(fusedConvSize(257)).toEqual({ m: 512, n: 1024, bytes: 4096 });
    expect(fusedConvSize(4096)).toEqual({ m: 4096, n: 8192, bytes: 32768 });
  });

  it('declares one row of workgroup memory and keeps every barrier out of per-thread branches', () => {
    for (const kind of ['conv', 'spectrum', 'kernelGrad'] as const) {
      const code = longConvShader(kind, 1024, { skip: true, reverse: true });
      expect(code).toContain('var<workgroup> m2buf : array<vec2<f32>, 1024>;');
      // Barriers sit in the two FFT loops (constant trip counts) and at top level of main.
      for (const line of code.split('\n').filter((l) => l.includes('workgroupBarrier'))) expect(line.trim()).toBe('workgroupBarrier();');
    }
    expect(Object.values(LONG_CONV_KERNELS)).toEqual(['M2FusedLongConv', 'M2FusedConvSpectrum', 'M2FusedConvKernelGrad']);
  });

  it('splits the rows of a [B, C, L] convolution into blocks of whole batch entries, else channel ranges of one entry', () => {
    expect(rowBlocks(3, 2, Infinity)).toEqual([[{ b0: 0, bn: 3, c0: 0, cn: 2 }]]);
    expect(rowBlocks(3, 2, 4)).toEqual([[{ b0: 0, bn: 2, c0: 0, cn: 2 }], [{ b0: 2, bn: 1, c0: 0, cn: 2 }]]);
    expect(rowBlocks(2, 5, 2)).toEqual([
      [{ b0: 0, bn: 1, c0: 0, cn: 2 }, { b0: 0, bn: 1, c0: 2, cn: 2 }, { b0: 0, bn: 1, c0: 4, cn: 1 }],
      [{ b0: 1, bn: 1, c0: 0, cn: 2 }, { b0: 1, bn: 1, c0: 2, cn: 2 }, { b0: 1, bn: 1, c0: 4, cn: 1 }],
    ]);
  });

  it('splits long rows so that two rows of M2 fit the workgroup memory and column workgroups hold ≤ 2048 values', () => {
    expect(fourStepPlan(8192, 32768)).toEqual({ m: 8192, m1: 4, m2: 2048, columns: 512 });
    expect(fourStepPlan(16384, 49152)).toEqual({ m: 16384, m1: 8, m2: 2048, columns: 256 });
    expect(fourStepPlan(32768, 16384)).toEqual({ m: 32768, m1: 32, m2: 1024, columns: 64 });
    for (const pass of [{ pass: 'columns', source: 'signal' }, { pass: 'rows', mode: 'kernelGrad' }, { pass: 'columnsInverse', mode: 'signal', skip: true }] as const) {
      const code = fourStepShader(fourStepPlan(32768, 16384), pass);
      const words = Number(/var<workgroup> m2buf : array<f32, (\d+)>/.exec(code)![1]);
      expect(4 * words).toBeLessThanOrEqual(16384);
    }
  });
});
