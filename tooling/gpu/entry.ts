// GPU checks and micro-benchmarks for the H200 run (tooling/gpu/run-h200.sh runs the bundle of this file).
//
// 1. webgpu set-up through setupBackend (Dawn + Vulkan), adapter facts.
// 2. Correctness on random inputs, webgpu vs the cpu backend (relative L2): matMul, monarch-core's
//    blockDiagMatmul / monarchMatmul / bidirectionalConv (forward and gradients), and our WGSL block-diagonal
//    kernel (forward, input gradient, weight gradient).
// 3. Timings (median of warm runs, synchronised by reading one element of the last result): dense matMul,
//    block-diagonal products at M2-BERT-base shapes (stock tfjs vs our kernel, several tiles), the long conv.
// Writes everything as JSON to argv[2] (default ./gpu-results.json) and prints a short table last.
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import {
  bidirectionalConv, blockDiagMatmul, causalConv, convKernelSpectrum, convPairWithSpectra, disposeConvSpectrum, fftConv, monarchMatmul, registerCpuKernels, releaseWebGpuBufferPool, setupBackend, webGpuBytesAllocated, withWebGpuErrors,
} from '@monarch-mixer/monarch-core';
import { M2Bert } from '@monarch-mixer/m2-bert';
import {
  blockDiagMatmulKernel, registerBlockDiagKernels, runBlockDiagWebGpu,
} from '../../packages/monarch-core/src/backends/webgpu-blockdiag.js';
import type { BlockDiagTile } from '../../packages/monarch-core/src/backends/webgpu-blockdiag.js';
import {
  DEFAULT_TRAINING_SETUP, modelWeights, modelWithWeights, optimizerLabel, sameSetupButSteps, runTrainingSteps, seededWeights, trainingBatch, weightDigest,
} from './training-check.js';
import type { TrainingSetup, WeightValues } from './training-check.js';

type Row = Record<string, unknown>;
const results: { started: string; node: string; backend?: unknown; adapter?: unknown; checks: Row[]; timings: Row[]; training?: Row[]; errors: Row[] } = {
  started: new Date().toISOString(), node: process.version, checks: [], timings: [], errors: [],
};
const outFile = process.argv.slice(2).find((arg, i, args) => !arg.startsWith('--') && !(args[i - 1] ?? '').match(/^--(train-steps|train-optimizer|train-lr|train-lengths|train-fixtures|train-paths|train-preset|conv-lengths|timing-lengths|grad-vs-cpu)$/)) ?? 'gpu-results.json';
const save = () => writeFileSync(outFile, `${JSON.stringify(results, null, 2)}\n`);

/** Seeded normal-ish values (sum of uniforms), so cpu and webgpu see the same inputs. */
function random(n: number, seed: number, scale = 1): Float32Array {
  const out = new Float32Array(n);
  let s = (seed * 2654435761) >>> 0;
  const next = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
  for (let i = 0; i < n; i++) out[i] = (next() + next() + next() - 1.5) * scale;
  return out;
}

function relativeL2(a: Float32Array, b: Float32Array): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return a.length !== b.length || !Number.isFinite(num) ? Number.NaN : Math.sqrt(num / Math.max(den, 1e-30));
}

/** Runs `f` (which builds tensors from plain arrays) on webgpu and on cpu and compares every output. */
async function check(name: string, f: () => tf.Tensor[], tolerance = 1e-4): Promise<void> {
  try {
    const run = async (backend: string) => {
      await tf.setBackend(backend);
      const outs = tf.tidy(f);
      const values = await Promise.all(outs.map(async (t) => (await t.data()) as Float32Array));
      tf.dispose(outs);
      return values;
    };
    const gpu = await run('webgpu');
    const cpu = await run('cpu');
    const errors = gpu.map((g, i) => relativeL2(g, cpu[i]));
    const ok = errors.every((e) => e <= tolerance);
    results.checks.push({ name, relL2: errors, ok });
    console.log(`check ${ok ? 'ok  ' : 'FAIL'} ${name}: ${errors.map((e) => e.toExponential(2)).join(', ')}`);
  } catch (error) {
    results.errors.push({ name, error: String((error as Error).stack ?? error).slice(0, 2000) });
    console.log(`check ERROR ${name}: ${(error as Error).message}`);
  } finally {
    await tf.setBackend('webgpu');
    save();
  }
}

/**
 * Median ms per call of `f` on webgpu: warm-up, then `repeats` samples of `inner` back-to-back calls, each sample
 * synchronised once by reading one element of its last result (so the sync cost is spread over `inner` calls).
 */
async function time(name: string, f: () => tf.Tensor, extra: Row = {}, repeats = 10, inner = 1): Promise<number | undefined> {
  try {
    await tf.setBackend('webgpu');
    const once = async () => {
      const start = performance.now();
      let out = f();
      for (let i = 1; i < inner; i++) {
        out.dispose();
        out = f();
      }
      const probe = tf.tidy(() => tf.slice(tf.reshape(out, [-1]), [0], [1]));
      await probe.data();
      const ms = (performance.now() - start) / inner;
      tf.dispose([out, probe]);
      return ms;
    };
    await once();
    await once();
    const runs: number[] = [];
    for (let i = 0; i < repeats; i++) runs.push(await once());
    runs.sort((a, b) => a - b);
    const ms = runs[Math.floor(runs.length / 2)];
    const flops = typeof extra.flops === 'number' ? extra.flops : undefined;
    const row = { name, ms, minMs: runs[0], inner, ...(flops ? { tflops: flops / ms / 1e9 } : {}), ...extra };
    results.timings.push(row);
    console.log(`time ${name}: ${ms.toFixed(3)} ms${flops ? ` ${(flops / ms / 1e9).toFixed(2)} TFLOP/s` : ''}`);
    return ms;
  } catch (error) {
    results.errors.push({ name, error: String((error as Error).stack ?? error).slice(0, 2000) });
    console.log(`time ERROR ${name}: ${(error as Error).message}`);
    return undefined;
  } finally {
    save();
  }
}

/** Long sequences: the tall-matMul path (more than 2^18 rows) and the long convolution at 16K and 32K. */
async function longSequences(): Promise<void> {
  const rows = 600_000;
  const a = random(rows * 32, 21);
  const b = random(32 * 32, 22, 0.2);
  await check(`tall matMul [${rows},32]x[32,32] (rows folded into the batch)`, () => [tf.matMul(tf.tensor2d(a, [rows, 32]), tf.tensor2d(b, [32, 32]))]);
  for (const L of [16384, 32768]) {
    const C = 768;
    const u = random(C * L, 23);
    const kf = random(C * L, 24, 0.01);
    const kr = random(C * L, 25, 0.01);
    const d = random(C, 26);
    // Channels are independent: compare the first 4 channels of the full-width GPU result with a 4-channel run.
    let gpuFirst: Float32Array | undefined;
    try {
      await tf.setBackend('webgpu');
      const ut = tf.tensor3d(u, [1, C, L]);
      const kft = tf.tensor2d(kf, [C, L]);
      const krt = tf.tensor2d(kr, [C, L]);
      const dt = tf.tensor1d(d);
      const ms = await time(`bidirectionalConv fwd [1,${C},${L}]`, () => bidirectionalConv(ut, kft, krt, dt), { L }, 5);
      if (ms !== undefined) results.timings[results.timings.length - 1].tokensPerMs = L / ms;
      const dy = tf.randomNormal([1, C, L]);
      await time(`bidirectionalConv fwd+bwd [1,${C},${L}]`, () => {
        const [gu, gkf, gkr] = tf.grads((x: tf.Tensor, k1: tf.Tensor, k2: tf.Tensor) =>
          tf.sum(tf.mul(bidirectionalConv(x as tf.Tensor3D, k1 as tf.Tensor2D, k2 as tf.Tensor2D, dt), dy)))([ut, kft, krt]);
        tf.dispose([gkf, gkr]); // all three gradients are computed; the sample synchronises on gu
        return gu;
      }, { L }, 3);
      const y = bidirectionalConv(ut, kft, krt, dt);
      gpuFirst = (await tf.slice(y, [0, 0, 0], [1, 4, L]).data()) as Float32Array;
      tf.dispose([ut, kft, krt, dt, dy, y]);
    } catch (error) {
      results.errors.push({ name: `long conv ${L}`, error: String((error as Error).stack ?? error).slice(0, 2000) });
      console.log(`ERROR long conv ${L}: ${(error as Error).message}`);
    }
    if (gpuFirst) {
      await tf.setBackend('cpu');
      const y4 = tf.tidy(() => bidirectionalConv(tf.tensor3d(u.subarray(0, 4 * L), [1, 4, L]), tf.tensor2d(kf.subarray(0, 4 * L), [4, L]),
        tf.tensor2d(kr.subarray(0, 4 * L), [4, L]), tf.tensor1d(d.subarray(0, 4))));
      const err = relativeL2(gpuFirst, (await y4.data()) as Float32Array);
      y4.dispose();
      results.checks.push({ name: `bidirectionalConv [1,768,${L}] webgpu, channels 0-3 vs cpu`, relL2: [err], ok: err <= 1e-4 });
      console.log(`check ${err <= 1e-4 ? 'ok  ' : 'FAIL'} bidirectionalConv [1,768,${L}] channels 0-3 vs cpu: ${err.toExponential(2)}`);
      await tf.setBackend('webgpu');
    }
    save();
  }
}

/**
 * webgpu vs cpu on the long convolutions at M2-BERT-base width (768 channels), each webgpu path: the fused WGSL
 * kernels (webgpu-long-conv.ts; one workgroup per row up to L = 4096, four-step passes beyond) and the Monarch path
 * (M2_FUSED_LONG_CONV=0). Channels are independent, so the cpu side runs only the
 * first `cpuChannels` channels and the webgpu outputs are sliced to them (rank 3: axis 1; rank 2 and 1: axis 0).
 * Tolerances (relative L2): forward 1e-5, gradients 1e-4.
 */
async function longConvChecks(lengths: number[]): Promise<void> {
  const C = 768;
  const c = 4;
  const B = 2;
  for (const L of lengths) {
    const u = random(B * C * L, 51);
    const dy = random(B * C * L, 52);
    const kf = random(C * L, 53, 0.02);
    const kr = random(C * L, 54, 0.02);
    const k2 = random(C * 2 * L, 55, 0.02);
    const d = random(C, 56);
    // The first `ch` channels of a [B, C, W] / [C, W] / [C] array.
    const first3 = (a: Float32Array, ch: number, batch = B) => {
      if (ch === C) return a;
      const out = new Float32Array(batch * ch * L);
      for (let b = 0; b < batch; b++) out.set(a.subarray(b * C * L, (b * C + ch) * L), b * ch * L);
      return out;
    };
    const first2 = (a: Float32Array, ch: number, width: number) => a.subarray(0, ch * width);
    const firstChannels = (t: tf.Tensor) => (t.rank === 3 ? tf.slice(t, [0, 0, 0], [t.shape[0]!, c, t.shape[2]!])
      : t.rank === 2 ? tf.slice(t, [0, 0], [c, t.shape[1]!]) : tf.slice(t, [0], [c]));
    // The cpu outputs once, then each webgpu long-convolution path: fused WGSL kernels and the Monarch path.
    const run = async (name: string, f: (ch: number) => tf.Tensor[], tolerances: number[]) => {
      let cpu: Float32Array[];
      try {
        await tf.setBackend('cpu');
        const cpuOuts = tf.tidy(() => f(c));
        cpu = await Promise.all(cpuOuts.map(async (t) => (await t.data()) as Float32Array));
        tf.dispose(cpuOuts);
      } catch (error) {
        results.errors.push({ name: `${name} (cpu)`, error: String((error as Error).stack ?? error).slice(0, 2000) });
        console.log(`check ERROR ${name} (cpu): ${(error as Error).message}`);
        await tf.setBackend('webgpu');
        return;
      }
      for (const path of ['fused', 'monarch'] as const) {
        const previous = process.env.M2_FUSED_LONG_CONV;
        process.env.M2_FUSED_LONG_CONV = path === 'fused' ? '1' : '0';
        try {
          await tf.setBackend('webgpu');
          const gpuOuts = tf.tidy(() => f(C).map(firstChannels));
          const gpu = await Promise.all(gpuOuts.map(async (t) => (await t.data()) as Float32Array));
          tf.dispose(gpuOuts);
          const errors = gpu.map((g, i) => relativeL2(g, cpu[i]!));
          const ok = errors.every((e, i) => e <= tolerances[Math.min(i, tolerances.length - 1)]!);
          results.checks.push({ name: `${name} [${path}]`, relL2: errors, tolerances, ok, path });
          console.log(`check ${ok ? 'ok  ' : 'FAIL'} ${name} [${path}]: ${errors.map((e) => e.toExponential(2)).join(', ')}`);
        } catch (error) {
          results.errors.push({ name: `${name} [${path}]`, error: String((error as Error).stack ?? error).slice(0, 2000) });
          console.log(`check ERROR ${name} [${path}]: ${(error as Error).message}`);
        } finally {
          if (previous === undefined) delete process.env.M2_FUSED_LONG_CONV;
          else process.env.M2_FUSED_LONG_CONV = previous;
          save();
        }
      }
    };
    const tensors = (ch: number) => ({
      u: tf.tensor3d(first3(u, ch), [B, ch, L]), dy: tf.tensor3d(first3(dy, ch), [B, ch, L]),
      kf: tf.tensor2d(first2(kf, ch, L), [ch, L]), kr: tf.tensor2d(first2(kr, ch, L), [ch, L]),
      k2: tf.tensor2d(first2(k2, ch, 2 * L), [ch, 2 * L]), d: tf.tensor1d(d.subarray(0, ch)),
    });
    await run(`long conv L=${L}: bidirectionalConv [${B},${C},${L}] fwd + grads (u, kf, kr, D), channels 0-${c - 1} vs cpu`, (ch) => {
      const t = tensors(ch);
      const y = bidirectionalConv(t.u, t.kf, t.kr, t.d);
      const grads = tf.grads((a: tf.Tensor, b: tf.Tensor, e: tf.Tensor, g: tf.Tensor) =>
        tf.sum(tf.mul(bidirectionalConv(a as tf.Tensor3D, b as tf.Tensor2D, e as tf.Tensor2D, g as tf.Tensor1D), t.dy)))([t.u, t.kf, t.kr, t.d]);
      return [y, ...grads];
    }, [1e-5, 1e-4]);
    await run(`long conv L=${L}: causalConv [${B},${C},${L}] fwd (+D) and fftConv with a [${C},${2 * L}] kernel, channels 0-${c - 1} vs cpu`, (ch) => {
      const t = tensors(ch);
      return [causalConv(t.u, t.kf, t.d), fftConv(t.u, t.k2, t.d)];
    }, [1e-5]);
    if (L <= 4096) {
      await run(`long conv L=${L}: convKernelSpectrum + convPairWithSpectra [1,${C},${L}] (cached spectra) vs two cpu bidirectionalConv`, (ch) => {
        const t = tensors(ch);
        const a = tf.slice(t.u, [0, 0, 0], [1, ch, L]) as tf.Tensor3D;
        const b = tf.slice(t.u, [1, 0, 0], [1, ch, L]) as tf.Tensor3D;
        const kf2 = tf.reverse(t.kf, 1) as tf.Tensor2D;
        const d2 = tf.neg(t.d) as tf.Tensor1D;
        if (tf.getBackend() === 'cpu') return [bidirectionalConv(a, t.kf, t.kr, t.d), bidirectionalConv(b, kf2, t.kf, d2)];
        const sa = convKernelSpectrum(t.kf, t.kr);
        const sb = convKernelSpectrum(kf2, t.kf);
        const [ya, yb] = convPairWithSpectra(a, sa, b, sb, t.d, d2);
        disposeConvSpectrum(sa);
        disposeConvSpectrum(sb);
        return [ya, yb];
      }, [1e-5]);
    }
  }
}

/** Long-convolution timings at [1, 768, L], fused kernels vs the Monarch path (M2_FUSED_LONG_CONV=0). */
async function longConvTimings(lengths: number[]): Promise<void> {
  const C = 768;
  for (const L of lengths) {
    const u = tf.tensor3d(random(C * L, 61), [1, C, L]);
    const u2 = tf.tensor3d(random(C * L, 62), [1, C, L]);
    const dy = tf.tensor3d(random(C * L, 63), [1, C, L]);
    const kf = tf.tensor2d(random(C * L, 64, 0.02), [C, L]);
    const kr = tf.tensor2d(random(C * L, 65, 0.02), [C, L]);
    const d = tf.tensor1d(random(C, 66));
    for (const fused of [true, false]) {
      const previous = process.env.M2_FUSED_LONG_CONV;
      process.env.M2_FUSED_LONG_CONV = fused ? '1' : '0';
      const path = fused ? 'fused' : 'monarch';
      try {
        const ms = await time(`bidirectionalConv fwd [1,${C},${L}] (${path})`, () => bidirectionalConv(u, kf, kr, d), { L, path }, 10, 10);
        if (ms !== undefined) results.timings[results.timings.length - 1].tokensPerMs = L / ms;
        await time(`bidirectionalConv fwd+bwd [1,${C},${L}] (${path})`, () => {
          const [gu, gkf, gkr] = tf.grads((x: tf.Tensor, k1: tf.Tensor, k2: tf.Tensor) =>
            tf.sum(tf.mul(bidirectionalConv(x as tf.Tensor3D, k1 as tf.Tensor2D, k2 as tf.Tensor2D, d), dy)))([u, kf, kr]);
          tf.dispose([gkf, gkr]);
          return gu;
        }, { L, path }, 10, 3);
        const sa = convKernelSpectrum(kf, kr);
        const sb = convKernelSpectrum(kr, kf);
        await time(`convPairWithSpectra [1,${C},${L}] cached spectra (${path})`, () => {
          const [ya, yb] = convPairWithSpectra(u, sa, u2, sb, d, d);
          yb.dispose();
          return ya;
        }, { L, path }, 10, 10);
        disposeConvSpectrum(sa);
        disposeConvSpectrum(sb);
      } finally {
        if (previous === undefined) delete process.env.M2_FUSED_LONG_CONV;
        else process.env.M2_FUSED_LONG_CONV = previous;
      }
    }
    tf.dispose([u, u2, dy, kf, kr, d]);
  }
}

/** Value of a `--name value` argument. */
function argument(name: string): string | undefined {
  const index = process.argv.indexOf(name);
  return index < 0 ? undefined : process.argv[index + 1];
}

/**
 * The implicit long-convolution filters (HyenaFilter kernels: sin activations, exponential decay) of every layer at
 * the training length, webgpu vs cpu from the seeded weights (relative L2 per layer and kernel): the GPU's sin/exp
 * precision enters every loss through them.
 */
async function compareFilterKernels(setup: TrainingSetup, weights: WeightValues, row: Row, preset?: 'tiny'): Promise<void> {
  try {
    const read = async (backend: string) => {
      await tf.setBackend(backend);
      const model = modelWithWeights(setup.length, weights, preset);
      const out: Float32Array[][] = [];
      for (const layer of model.layers) {
        const { filterFn, filterFn2 } = layer.attention.filterKernels(setup.length);
        const kernels = [filterFn.forward, filterFn.reverse, filterFn2?.forward, filterFn2?.reverse].filter((k): k is tf.Tensor2D => k !== undefined);
        out.push(await Promise.all(kernels.map(async (k) => (await k.data()) as Float32Array)));
        tf.dispose(kernels);
      }
      model.dispose();
      return out;
    };
    const gpu = await read('webgpu');
    const cpu = await read('cpu');
    const perLayer = gpu.map((kernels, i) => kernels.map((k, j) => relativeL2(k, cpu[i]![j]!)));
    const max = Math.max(...perLayer.flat());
    row.filterKernels = { what: 'HyenaFilter kernels (filter_fn forward/reverse, filter_fn2 forward/reverse) per layer, webgpu vs cpu, relative L2', maxRelL2: max, perLayer };
    results.checks.push({ name: `M2-BERT-base filter kernels at L=${setup.length}, every layer, webgpu vs cpu`, relL2: perLayer.flat(), ok: max <= 1e-4 });
    console.log(`train: filter kernels webgpu vs cpu, max relL2 ${max.toExponential(2)} (layer 0: ${perLayer[0]!.map((e) => e.toExponential(1)).join(', ')})`);
  } catch (error) {
    results.errors.push({ name: 'filter kernels webgpu vs cpu', error: String((error as Error).stack ?? error).slice(0, 2000) });
    console.log(`ERROR filter kernels: ${(error as Error).message}`);
  } finally {
    await tf.setBackend('webgpu');
    save();
  }
}

/**
 * The first step's gradients of every weight on webgpu, fused long convolution vs the Monarch path, from the seeded
 * weights: relative L2 per weight (worst ten recorded) and the share of entries whose sign differs (Adam's first update
 * is about lr·sign(g), so those entries move the weights apart by 2·lr).
 */
async function compareTrainingGradients(setup: TrainingSetup, weights: WeightValues, row: Row, preset?: 'tiny'): Promise<void> {
  const batch = trainingBatch(setup.length, setup.batchSeed, preset === 'tiny' ? 1024 : undefined);
  const byPath = new Map<string, { loss: number; grads: Map<string, Float32Array> }>();
  try {
    for (const path of ['fused', 'monarch'] as const) {
      const previous = process.env.M2_FUSED_LONG_CONV;
      process.env.M2_FUSED_LONG_CONV = path === 'fused' ? '1' : '0';
      try {
        await tf.setBackend('webgpu');
        await releaseWebGpuBufferPool(); // what earlier runs (other lengths, other paths) left in tfjs-webgpu's pool
        const model = modelWithWeights(setup.length, weights, preset);
        const keyOf = new Map<string, string>();
        for (const [key, variable] of model.namedWeights()) if (!keyOf.has(variable.name)) keyOf.set(variable.name, key);
        const variables = model.trainableVariables();
        const { value, grads } = tf.variableGrads(() => model.forward(batch, { training: true }).loss as tf.Scalar, variables);
        const loss = (await value.data())[0]!;
        const read = new Map<string, Float32Array>();
        for (const [name, gradient] of Object.entries(grads)) read.set(keyOf.get(name) ?? name, (await gradient.data()) as Float32Array);
        tf.dispose([value, ...Object.values(grads)]);
        model.dispose();
        byPath.set(path, { loss, grads: read });
      } finally {
        if (previous === undefined) delete process.env.M2_FUSED_LONG_CONV;
        else process.env.M2_FUSED_LONG_CONV = previous;
      }
    }
    const fused = byPath.get('fused')!;
    const monarch = byPath.get('monarch')!;
    let num = 0;
    let den = 0;
    let signDiffers = 0;
    let entries = 0;
    const perWeight: Array<{ key: string; relL2: number; signDiffers: number; size: number }> = [];
    for (const [key, a] of fused.grads) {
      const b = monarch.grads.get(key);
      if (b === undefined) continue;
      let n = 0;
      let d = 0;
      let flips = 0;
      for (let i = 0; i < a.length; i++) {
        n += (a[i]! - b[i]!) ** 2;
        d += b[i]! ** 2;
        if (Math.sign(a[i]!) !== Math.sign(b[i]!)) flips += 1;
      }
      num += n;
      den += d;
      signDiffers += flips;
      entries += a.length;
      perWeight.push({ key, relL2: Math.sqrt(n / Math.max(d, 1e-30)), signDiffers: flips, size: a.length });
    }
    perWeight.sort((x, y) => y.relL2 - x.relL2);
    row.gradientComparison = {
      what: 'first-step gradients on webgpu, fused long conv vs Monarch path (same seeded weights and batch)',
      lossFused: fused.loss, lossMonarch: monarch.loss, relL2: Math.sqrt(num / Math.max(den, 1e-30)),
      signDiffers, entries, worst: perWeight.slice(0, 10),
    };
    console.log(`train: gradients fused vs Monarch: relL2 ${Math.sqrt(num / Math.max(den, 1e-30)).toExponential(2)}, sign differs at ${signDiffers} of ${entries}; worst ${perWeight.slice(0, 4).map((w) => `${w.key} ${w.relL2.toExponential(1)}`).join(', ')}`);
  } catch (error) {
    results.errors.push({ name: 'training gradients fused vs Monarch', error: String((error as Error).stack ?? error).slice(0, 2000) });
    console.log(`ERROR training gradients: ${(error as Error).message}`);
  } finally {
    save();
  }
}

/**
 * The first step's gradients of every weight, webgpu (fused kernels) vs the tfjs cpu backend, from the seeded weights
 * at `--grad-vs-cpu L` (a diagnostic: the cpu side runs here, minutes at L = 256): relative L2 per weight, worst
 * fifteen recorded, and the loss on each side.
 */
async function gradientsVersusCpu(length: number): Promise<void> {
  const setup: TrainingSetup = { ...DEFAULT_TRAINING_SETUP, length };
  const preset = argument('--train-preset') as 'tiny' | undefined;
  const batch = trainingBatch(length, setup.batchSeed, preset === 'tiny' ? 1024 : undefined);
  const row: Row = { what: 'first-step gradients, webgpu (fused) vs tfjs cpu, relative L2 per weight', setup, ...(preset ? { preset } : {}) };
  (results.training ??= []).push(row);
  try {
    const weights = await seededWeights(length, setup.weightSeed, preset);
    row.weightDigest = weightDigest(weights);
    const gradsOn = async (backend: string) => {
      await tf.setBackend(backend);
      if (backend === 'cpu') registerCpuKernels();
      const start = performance.now();
      const model = modelWithWeights(length, weights, preset);
      const keyOf = new Map<string, string>();
      for (const [key, variable] of model.namedWeights()) if (!keyOf.has(variable.name)) keyOf.set(variable.name, key);
      const { value, grads } = tf.variableGrads(() => model.forward(batch, { training: true }).loss as tf.Scalar, model.trainableVariables());
      const loss = (await value.data())[0]!;
      const read = new Map<string, Float32Array>();
      for (const [name, gradient] of Object.entries(grads)) read.set(keyOf.get(name) ?? name, (await gradient.data()) as Float32Array);
      tf.dispose([value, ...Object.values(grads)]);
      model.dispose();
      console.log(`train: ${backend} gradients at L=${length}: loss ${loss.toFixed(6)} in ${((performance.now() - start) / 1000).toFixed(1)} s`);
      return { loss, grads: read, ms: performance.now() - start };
    };
    const gpu = await gradsOn('webgpu');
    const cpu = await gradsOn('cpu');
    let num = 0;
    let den = 0;
    const perWeight: Array<{ key: string; relL2: number; size: number }> = [];
    for (const [key, a] of gpu.grads) {
      const b = cpu.grads.get(key);
      if (b === undefined) continue;
      let n = 0;
      let d = 0;
      for (let i = 0; i < a.length; i++) {
        n += (a[i]! - b[i]!) ** 2;
        d += b[i]! ** 2;
      }
      num += n;
      den += d;
      perWeight.push({ key, relL2: Math.sqrt(n / Math.max(d, 1e-30)), size: a.length });
    }
    perWeight.sort((x, y) => y.relL2 - x.relL2);
    Object.assign(row, { lossWebgpu: gpu.loss, lossCpu: cpu.loss, cpuMs: cpu.ms, relL2: Math.sqrt(num / Math.max(den, 1e-30)), worst: perWeight.slice(0, 15), weights: perWeight.length });
    console.log(`train: gradients webgpu vs cpu at L=${length}: relL2 ${(row.relL2 as number).toExponential(2)}; worst ${perWeight.slice(0, 6).map((w) => `${w.key} ${w.relL2.toExponential(1)}`).join(', ')}`);
  } catch (error) {
    results.errors.push({ name: 'gradients webgpu vs cpu', error: String((error as Error).stack ?? error).slice(0, 2000) });
    console.log(`ERROR gradients webgpu vs cpu: ${(error as Error).message}`);
  } finally {
    await tf.setBackend('webgpu');
    save();
  }
}

/** The committed CPU references (tooling/gpu/fixtures/training-reference-*.json, see training-reference.ts). */
function trainingReferences(): Array<{ file: string; backend: string; setup: TrainingSetup; weightDigest: string; losses: number[]; msPerStep: number[]; gitCommit: string }> {
  const dir = argument('--train-fixtures') ?? process.env.M2_GPU_TRAIN_FIXTURES ?? 'tooling/gpu/fixtures';
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((name) => /^training-reference-.*\.json$/.test(name)).map((name) => ({ file: name, ...JSON.parse(readFileSync(join(dir, name), 'utf8')) }));
}

/**
 * The M2-BERT-base training check (tooling/gpu/training-check.ts) on webgpu: the seeded initial weights (built on cpu,
 * copied by key; their sha256 digest recorded), the seeded batch at L = 2048, 3 Adam(1e-3) steps; the losses are
 * compared with each committed CPU reference of the same set-up and weights (no CPU training here: the references
 * were computed on the workstation). Goal: |Δloss| ≤ 1e-3 at every step. Runs once per long-convolution path
 * (`--train-paths fused,monarch`: the fused WGSL kernels, then M2_FUSED_LONG_CONV=0).
 */
async function trainingCheck(length: number, learningRate?: number): Promise<void> {
  const setup: TrainingSetup = {
    ...DEFAULT_TRAINING_SETUP,
    ...(argument('--train-steps') === undefined ? {} : { steps: Number(argument('--train-steps')) }),
    ...(argument('--train-optimizer') === undefined ? {} : { optimizer: argument('--train-optimizer') as 'adam' | 'sgd' }),
    ...(learningRate === undefined ? {} : { learningRate }),
    length,
  };
  const preset = argument('--train-preset') as 'tiny' | undefined; // a dry run of this tooling (e.g. on SwiftShader)
  // --train-gradient-checkpointing: M2Bert's gradientCheckpointing (each layer recomputed in the backward pass).
  const gradientCheckpointing = process.argv.includes('--train-gradient-checkpointing');
  const batch = trainingBatch(setup.length, setup.batchSeed, preset === 'tiny' ? 1024 : undefined);
  const row: Row = { ...(preset ? { preset } : {}), setup, batch: 1, optimizer: optimizerLabel(setup), labelled: batch.labels[0]!.filter((l) => l > 0).length };
  (results.training ??= []).push(row);
  try {
    const start = performance.now();
    const weights = await seededWeights(setup.length, setup.weightSeed, preset);
    row.weightDigest = weightDigest(weights);
    row.seededWeightsMs = performance.now() - start;
    console.log(`train: seeded weights ${String(row.weightDigest).slice(0, 16)}… built on cpu in ${(row.seededWeightsMs as number).toFixed(0)} ms`);
    save();
    if (!process.argv.includes('--no-filter-compare')) await compareFilterKernels(setup, weights, row, preset);
    if (!process.argv.includes('--no-grad-compare')) await compareTrainingGradients(setup, weights, row, preset);
    // References of this set-up with at least one loss (a CPU reference still running has written none yet).
    const references = trainingReferences().filter((reference) => reference.setup !== undefined && sameSetupButSteps(reference.setup, setup) && reference.losses.length > 0);
    const runs: Row[] = [];
    row.runs = runs;
    // Each long-convolution path of the webgpu backend: the fused WGSL kernels (L ≤ 4096) and the Monarch path.
    for (const path of (argument('--train-paths') ?? 'fused,monarch').split(',')) {
      const previous = process.env.M2_FUSED_LONG_CONV;
      process.env.M2_FUSED_LONG_CONV = path === 'monarch' ? '0' : '1';
      const run: Row = { path };
      runs.push(run);
      try {
        await tf.setBackend('webgpu');
        await releaseWebGpuBufferPool(); // what earlier runs (other lengths, other paths) left in tfjs-webgpu's pool
        const model = modelWithWeights(setup.length, weights, preset);
        run.webgpuWeightDigest = weightDigest(await modelWeights(model));
        console.log(`train: webgpu model (${path} long conv) weights ${String(run.webgpuWeightDigest).slice(0, 16)}… after ${(performance.now() - start).toFixed(0)} ms`);
        save();
        const losses: number[] = [];
        const msPerStep: number[] = [];
        const gradientNorms: number[] = [];
        run.webgpuLosses = losses;
        run.webgpuMsPerStep = msPerStep;
        run.webgpuGradientNorms = gradientNorms;
        // After each update of the fused run: its weights copied into a fresh model on the Monarch path, whose loss
        // (with a gradient tape, as a step computes it, and without: the inference kernels) tells a forward
        // difference between the paths from the two runs' weights drifting apart.
        const crossLosses: Row[] = [];
        run.crossCheck = crossLosses;
        const afterUpdate = async (step: number) => {
          if (path !== 'fused' || step + 1 >= setup.steps || process.argv.includes('--no-cross-check')) return;
          const current = await modelWeights(model);
          const saved = process.env.M2_FUSED_LONG_CONV;
          process.env.M2_FUSED_LONG_CONV = '0';
          const fresh = modelWithWeights(setup.length, current, preset);
          try {
            const noTape = tf.tidy(() => fresh.forward(batch, { training: true, outputLogits: false }).loss as tf.Scalar);
            const { value, grads } = tf.variableGrads(() => fresh.forward(batch, { training: true, gradientCheckpointing, outputLogits: false }).loss as tf.Scalar, fresh.trainableVariables());
            const entry = { afterStep: step + 1, monarchWithTape: (await value.data())[0]!, monarchNoTape: (await noTape.data())[0]! };
            tf.dispose([noTape, value, ...Object.values(grads)]);
            crossLosses.push(entry);
            console.log(`train: fused run's weights after step ${step + 1} on the Monarch path: loss ${entry.monarchWithTape.toFixed(6)} (tape), ${entry.monarchNoTape.toFixed(6)} (no tape)`);
          } finally {
            fresh.dispose();
            process.env.M2_FUSED_LONG_CONV = saved;
          }
        };
        // The webgpu backend pools its buffers: the bytes allocated after a step are the step's high-water mark
        // (the pool is emptied before each run; the fused run's cross-check between steps adds its own).
        const gpuAllocatedGiB: number[] = [];
        run.gpuAllocatedGiB = gpuAllocatedGiB;
        run.gradientCheckpointing = gradientCheckpointing;
        // Under WebGPU's error scopes: an allocation that fails leaves invalid buffers and garbage losses, not a throw.
        const { error: gpuError } = await withWebGpuErrors(() => runTrainingSteps(model, setup, (step, record) => {
          losses.push(record.loss);
          msPerStep.push(record.ms);
          if (record.gradientNorm !== undefined) gradientNorms.push(record.gradientNorm);
          gpuAllocatedGiB.push((webGpuBytesAllocated() ?? 0) / 2 ** 30);
          console.log(`train webgpu (${path} long conv${gradientCheckpointing ? ', gradient checkpointing' : ''}) step ${step + 1}: loss ${record.loss.toFixed(6)}, ‖g‖ ${record.gradientNorm?.toFixed(4)} (${record.ms.toFixed(0)} ms, ${gpuAllocatedGiB[step]!.toFixed(1)} GiB allocated)`);
          save();
        }, { afterUpdate, gradientCheckpointing }));
        model.dispose();
        if (gpuError !== undefined) {
          run.webgpuError = gpuError;
          throw new Error(`webgpu reported an error during the steps (losses not valid): ${gpuError}`);
        }
        const comparisons: Row[] = [];
        for (const reference of references) {
          // A reference may have run fewer steps (a slow CPU): the rest of the set-up must be the same.
          const sameSetup = sameSetupButSteps(reference.setup, setup);
          const sameWeights = reference.weightDigest === row.weightDigest && run.webgpuWeightDigest === row.weightDigest;
          const differences = reference.losses.slice(0, losses.length).map((loss, i) => Math.abs(loss - losses[i]!));
          const maxDifference = differences.length > 0 ? Math.max(...differences) : null;
          const ok = sameSetup && sameWeights && maxDifference !== null && maxDifference <= 1e-3;
          comparisons.push({
            reference: reference.file, backend: reference.backend, gitCommit: reference.gitCommit, sameSetup, sameWeights,
            referenceLosses: reference.losses, referenceMsPerStep: reference.msPerStep, lossDifferences: differences, maxLossDifference: maxDifference, ok,
          });
          results.checks.push({ name: `M2-BERT-base training L=${setup.length}: ${differences.length} ${optimizerLabel(setup)} steps, webgpu (${path} long conv) vs ${reference.backend} (${reference.file}) loss`, relL2: differences, ok });
          console.log(`check ${ok ? 'ok  ' : 'FAIL'} training losses webgpu (${path}) ${losses.map((l) => l.toFixed(5))} vs ${reference.backend} ${reference.losses.map((l) => l.toFixed(5))}: max |Δ| ${maxDifference?.toExponential(2)}${sameSetup ? '' : ' (other set-up)'}${sameWeights ? '' : ' (other weights)'}`);
        }
        run.comparisons = comparisons;
        if (comparisons.length === 0) console.log('training check: no committed reference to compare with');
      } catch (error) {
        results.errors.push({ name: `training check (${path})`, error: String((error as Error).stack ?? error).slice(0, 2000) });
        console.log(`ERROR training check (${path}): ${(error as Error).message}`);
      } finally {
        if (previous === undefined) delete process.env.M2_FUSED_LONG_CONV;
        else process.env.M2_FUSED_LONG_CONV = previous;
        save();
      }
    }
  } catch (error) {
    results.errors.push({ name: 'training check', error: String((error as Error).stack ?? error).slice(0, 2000) });
    console.log(`ERROR training check: ${(error as Error).message}`);
  } finally {
    await tf.setBackend('webgpu');
    save();
  }
}

/**
 * Where an M2-BERT-base forward's time goes on webgpu: (1) the cost of one small dispatch (a chain of 1000 adds of
 * [1024] floats, synchronised once) at two WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE values; (2) one forward (12 layers, MLM
 * head) at L = 512, 4096 and 16384 with the fused kernels, at 4096 also with 256 threads per row (M2_FUSED_THREADS),
 * the channel-first mixer core (M2_MIXER_CHANNEL_FIRST=1) and the Monarch long convolution (M2_FUSED_LONG_CONV=0):
 * its median time, the WebGPU programs it dispatches, and under tf.profile the kernels' summed GPU time (timestamp
 * queries), so GPU-busy fraction = GPU ms / forward ms.
 */
async function overheads(): Promise<void> {
  const chain = (n: number) => () => {
    let x = tf.zeros([1024]);
    for (let i = 0; i < n; i++) {
      const next = tf.add(x, 1);
      x.dispose();
      x = next;
    }
    return x;
  };
  for (const batch of [15, 256]) {
    tf.env().set('WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE', batch);
    const ms = await time(`1000 chained adds [1024], submit batch ${batch}`, chain(1000), { submitBatch: batch }, 5);
    if (ms !== undefined) results.timings[results.timings.length - 1].usPerDispatch = ms;
  }
  tf.env().set('WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE', 15);
  // Each profiled forward: L and the environment switches of the fused kernels it runs under.
  const configs: Array<{ length: number; env: Record<string, string>; path: string }> = [
    { length: 512, env: {}, path: 'fused long conv' },
    { length: 4096, env: {}, path: 'fused long conv' },
    { length: 4096, env: { M2_FUSED_THREADS: '256' }, path: 'fused, 256 threads per row' },
    { length: 4096, env: { M2_MIXER_CHANNEL_FIRST: '1' }, path: 'fused, channel-first mixer core' },
    { length: 4096, env: { M2_FUSED_LONG_CONV: '0' }, path: 'Monarch long conv' },
    { length: 16384, env: {}, path: 'fused long conv (four-step)' },
  ];
  for (const { length, env, path } of configs) {
    const previous = Object.fromEntries(['M2_FUSED_LONG_CONV', 'M2_FUSED_THREADS', 'M2_MIXER_CHANNEL_FIRST'].map((k) => [k, process.env[k]]));
    for (const [k, v] of Object.entries(env)) process.env[k] = v;
    try {
      const model = new M2Bert({ preset: 'm2-bert-80M-2k', maxPositionEmbeddings: length, longConvLMax: length, hiddenDropout: 0, head: 'masked-lm' });
      const ids = [Array.from(random(length, 41), (v) => 1000 + Math.floor(Math.abs(v) * 19000) % 29000)];
      const forward = () => {
        const out = model.forward({ inputIds: ids });
        tf.dispose([out.lastHiddenState, out.poolerOutput ?? []].flat());
        return out.logits!;
      };
      const forwardMs = await time(`M2-BERT-base forward L=${length} (12 layers, MLM head, ${path})`, forward, { L: length, path, env }, 5);
      const before = dispatches;
      const counted = forward();
      const forwardDispatches = dispatches - before;
      await tf.slice(tf.reshape(counted, [-1]), [0], [1]).data();
      counted.dispose();
      const start = performance.now();
      const info = await tf.profile(async () => {
        const logits = forward();
        await tf.slice(tf.reshape(logits, [-1]), [0], [1]).data();
        return logits;
      });
      const wallMs = performance.now() - start;
      let gpuMs = 0;
      const byKernel = new Map<string, { count: number; ms: number }>();
      for (const kernel of info.kernels) {
        const ms = Number(await kernel.kernelTimeMs) || 0;
        gpuMs += ms;
        const entry = byKernel.get(kernel.name) ?? { count: 0, ms: 0 };
        entry.count += 1;
        entry.ms += ms;
        byKernel.set(kernel.name, entry);
      }
      const top = [...byKernel.entries()].sort((a, b) => b[1].ms - a[1].ms).slice(0, 15).map(([name, v]) => ({ name, ...v }));
      const busy = forwardMs === undefined ? undefined : gpuMs / forwardMs;
      results.timings.push({
        name: `profile M2-BERT-base forward L=${length} (${path})`, L: length, path, env, kernels: info.kernels.length, dispatches: forwardDispatches,
        gpuMs, profiledWallMs: wallMs, forwardMs, gpuBusyFraction: busy, tokensPerMs: forwardMs === undefined ? undefined : length / forwardMs, top,
      });
      console.log(`profile L=${length} ${path}: ${forwardDispatches} dispatches, ${info.kernels.length} kernels, GPU ${gpuMs.toFixed(1)} ms of ${forwardMs?.toFixed(1)} ms forward (busy ${busy?.toFixed(2)}), wall (profiled) ${wallMs.toFixed(1)} ms; top ${top.slice(0, 6).map((t) => `${t.name} ${t.count}× ${t.ms.toFixed(1)} ms`).join(', ')}`);
      model.dispose();
    } catch (error) {
      results.errors.push({ name: `profile ${length} ${path}`, error: String((error as Error).stack ?? error).slice(0, 2000) });
      console.log(`ERROR profile ${length} ${path}: ${(error as Error).message}`);
    } finally {
      for (const [k, v] of Object.entries(previous)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
    save();
  }
}

/** WebGPU programs run so far (counted in the runWebGPUProgram wrapper that main installs). */
let dispatches = 0;

async function main(): Promise<void> {
  const info = await setupBackend('webgpu');
  results.backend = info;
  const device = (tf.backend() as unknown as { device: GPUDevice; adapterInfo?: unknown }).device;
  results.adapter = {
    description: info.description,
    maxStorageBufferBindingSize: device.limits.maxStorageBufferBindingSize,
    maxBufferSize: device.limits.maxBufferSize,
    maxComputeWorkgroupStorageSize: device.limits.maxComputeWorkgroupStorageSize,
    features: [...device.features],
  };
  console.log(`backend: ${info.description}`);
  // Name the tfjs program in errors (the bundle is minified): shader key, output shape, dispatch.
  const gpuBackend = tf.backend() as unknown as { runWebGPUProgram: (program: { shaderKey: string; outputShape: number[]; dispatch: number[] }, ...rest: unknown[]) => unknown };
  const runProgram = gpuBackend.runWebGPUProgram.bind(gpuBackend);
  gpuBackend.runWebGPUProgram = (program, ...rest) => {
    dispatches += 1;
    try {
      return runProgram(program, ...rest);
    } catch (error) {
      (error as Error).message += ` [program ${program.shaderKey}, output [${program.outputShape}], dispatch [${program.dispatch}]]`;
      throw error;
    }
  };
  tf.env().set('WEBGPU_CPU_FORWARD', false);
  registerBlockDiagKernels();
  save();
  if (process.argv.includes('--long-only')) {
    await longSequences();
    return;
  }
  if (process.argv.includes('--train-only')) {
    // --train-lr 0.01,0.1: one check per learning rate (e.g. to pick an SGD step size that moves the loss).
    const learningRates = argument('--train-lr')?.split(',').map(Number) ?? [undefined];
    for (const length of (argument('--train-lengths') ?? String(DEFAULT_TRAINING_SETUP.length)).split(',').map(Number)) {
      for (const learningRate of learningRates) await trainingCheck(length, learningRate);
    }
    return;
  }
  const quick = process.argv.includes('--quick'); // checks, blockDiagMatmul timings, overheads (no tile sweep, no long sequences)
  const convLengths = (argument('--conv-lengths') ?? '1024,4096,16384,32768').split(',').filter(Boolean).map(Number);
  if (argument('--grad-vs-cpu') !== undefined) {
    await gradientsVersusCpu(Number(argument('--grad-vs-cpu')));
    return;
  }
  if (process.argv.includes('--profile-only')) {
    await overheads();
    return;
  }
  if (process.argv.includes('--conv-only')) {
    await longConvChecks(convLengths);
    await longConvTimings((argument('--timing-lengths') ?? '4096,16384,32768').split(',').map(Number));
    return;
  }

  // ---- correctness vs cpu ----
  await check('matMul 256x384x200', () => [tf.matMul(tf.tensor2d(random(256 * 384, 1), [256, 384]), tf.tensor2d(random(384 * 200, 2), [384, 200]))]);
  for (const [rows, nb, bi, bo] of [[300, 4, 24, 40], [130, 3, 70, 17], [64, 4, 192, 192]]) {
    const x = random(rows * nb * bi, 3);
    const w = random(nb * bi * bo, 4, 0.1);
    const dyv = random(rows * nb * bo, 5);
    await check(`wgsl blockDiag fwd+grads rows ${rows} blocks ${nb}x${bi}x${bo}`, () => {
      const xt = tf.tensor2d(x, [rows, nb * bi]);
      const wt = tf.tensor3d(w, [nb, bi, bo]);
      const dy = tf.tensor2d(dyv, [rows, nb * bo]);
      const y = blockDiagMatmulKernel(xt, wt);
      const [gx, gw] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(blockDiagMatmulKernel(a as tf.Tensor2D, b as tf.Tensor3D), dy)))([xt, wt]);
      // On cpu the same kernels are plain loops (unit-tested against monarch-core's blockDiagMatmul).
      return [y, gx, gw];
    });
  }
  for (const tile of [{ tm: 4, tn: 4, tk: 32 }, { tm: 8, tn: 8, tk: 8 }, { tm: 8, tn: 8, tk: 16 }, { tm: 8, tn: 4, tk: 32 }]) {
    // Each tile's three products against the plain-loop kernels (cpu) on a shape that is no multiple of the tiles.
    const [rows, nb, bi, bo] = [333, 3, 100, 70];
    const x = random(rows * nb * bi, 17);
    const w = random(nb * bi * bo, 18, 0.1);
    const dyv = random(rows * nb * bo, 19);
    await check(`wgsl tile ${tile.tm}x${tile.tn}x${tile.tk} fwd/dx/dW rows ${rows} blocks ${nb}x${bi}x${bo}`, () => {
      const xt = tf.tensor2d(x, [rows, nb * bi]);
      const wt = tf.tensor3d(w, [nb, bi, bo]);
      const dy = tf.tensor2d(dyv, [rows, nb * bo]);
      if (tf.getBackend() !== 'webgpu') {
        const [gx, gw] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(blockDiagMatmulKernel(a as tf.Tensor2D, b as tf.Tensor3D), dy)))([xt, wt]);
        return [blockDiagMatmulKernel(xt, wt), gx, gw];
      }
      const backend = tf.backend();
      const run = (mode: 'forward' | 'inputGrad' | 'weightGrad', a: tf.Tensor, b: tf.Tensor) =>
        tf.engine().makeTensorFromTensorInfo(runBlockDiagWebGpu(backend, mode, a, b, { nb, bi, bo }, tile));
      return [run('forward', xt, wt), run('inputGrad', dy, wt), run('weightGrad', xt, dy)];
    });
  }
  await check('monarch-core blockDiagMatmul fwd+grads [2,512,768] x [4,192,192]', () => {
    const x = tf.tensor3d(random(2 * 512 * 768, 6), [2, 512, 768]);
    const w = tf.tensor3d(random(4 * 192 * 192, 7, 0.07), [4, 192, 192]);
    const dy = tf.tensor3d(random(2 * 512 * 768, 8), [2, 512, 768]);
    const [gx, gw] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(blockDiagMatmul(a, b as tf.Tensor3D), dy)))([x, w]);
    return [blockDiagMatmul(x, w), gx, gw];
  });
  await check('monarch-core monarchMatmul [8,1024] (32,32,32)x(32,32,32)', () => {
    const x = tf.tensor2d(random(8 * 1024, 9), [8, 1024]);
    return [monarchMatmul(x, tf.tensor3d(random(32 ** 3, 10, 0.2), [32, 32, 32]), tf.tensor3d(random(32 ** 3, 11, 0.2), [32, 32, 32]))];
  });
  for (const L of [1024, 4096]) {
    await check(`monarch-core bidirectionalConv fwd+grads [2,16,${L}]`, () => {
      const u = tf.tensor3d(random(2 * 16 * L, 12), [2, 16, L]);
      const kf = tf.tensor2d(random(16 * L, 13, 0.02), [16, L]);
      const kr = tf.tensor2d(random(16 * L, 14, 0.02), [16, L]);
      const d = tf.tensor1d(random(16, 15));
      const dy = tf.tensor3d(random(2 * 16 * L, 16), [2, 16, L]);
      const [gu, gkf, gkr] = tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) =>
        tf.sum(tf.mul(bidirectionalConv(a as tf.Tensor3D, b as tf.Tensor2D, c as tf.Tensor2D, d), dy)))([u, kf, kr]);
      return [bidirectionalConv(u, kf, kr, d), gu, gkf, gkr];
    }, 1e-3);
  }

  await longConvChecks(convLengths);

  // ---- timings ----
  if (quick) {
    await longConvTimings((argument('--timing-lengths') ?? '4096,16384,32768').split(',').map(Number));
    for (const [rows, nb, bi, bo] of [[16384, 4, 192, 192], [16384, 4, 192, 768], [16384, 4, 768, 192]] as const) {
      const x = tf.randomNormal([rows, nb * bi]) as tf.Tensor2D;
      const w = tf.randomNormal([nb, bi, bo]) as tf.Tensor3D;
      const dy = tf.randomNormal([rows, nb * bo]) as tf.Tensor2D;
      const flops = 2 * rows * nb * bi * bo;
      await time(`monarch-core blockDiagMatmul (webgpu: WGSL kernel) ${rows}x${nb}x${bi}x${bo}`, () => blockDiagMatmul(x, w), { rows, nb, bi, bo, flops }, 10, 10);
      await time(`monarch-core blockDiagMatmul fwd+grads ${rows}x${nb}x${bi}x${bo}`, () => {
        const [gx, gw] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(blockDiagMatmul(a, b as tf.Tensor3D), dy)))([x, w]);
        gw.dispose();
        return gx;
      }, { rows, nb, bi, bo, flops: 3 * flops }, 10, 3);
      tf.dispose([x, w, dy]);
    }
    await overheads();
    return;
  }
  for (const n of [1024, 2048, 4096, 8192]) {
    const a = tf.randomNormal([n, n]);
    const b = tf.randomNormal([n, n]);
    await time(`matMul ${n}^3`, () => tf.matMul(a, b), { flops: 2 * n ** 3 }, n >= 8192 ? 5 : 10);
    tf.dispose([a, b]);
  }
  // M2-BERT-base shapes: d 768 as 4 blocks of 192; the GLU MLP's 768 → 3072 and 3072 → 768 as 4 blocks.
  const shapes: Array<[number, number, number, number]> = [[16384, 4, 192, 192], [16384, 4, 192, 768], [16384, 4, 768, 192]];
  const tiles: BlockDiagTile[] = [
    { tm: 4, tn: 4, tk: 16 }, { tm: 4, tn: 4, tk: 32 }, { tm: 8, tn: 8, tk: 8 }, { tm: 8, tn: 8, tk: 16 }, { tm: 8, tn: 4, tk: 32 },
  ];
  for (const [rows, nb, bi, bo] of shapes) {
    const x = tf.randomNormal([rows, nb * bi]) as tf.Tensor2D;
    const w = tf.randomNormal([nb, bi, bo]) as tf.Tensor3D;
    const dy = tf.randomNormal([rows, nb * bo]) as tf.Tensor2D;
    const flops = 2 * rows * nb * bi * bo;
    const shape = { rows, nb, bi, bo, flops };
    await time(`stock blockDiagMatmul ${rows}x${nb}x${bi}x${bo}`, () => blockDiagMatmul(x, w), shape, 10, 10);
    const dense = tf.randomNormal([nb * bi, nb * bo]);
    await time(`dense matMul same rows [${rows},${nb * bi}]x[${nb * bi},${nb * bo}]`, () => tf.matMul(x, dense), { ...shape, flops: flops * nb }, 10, 10);
    dense.dispose();
    for (const tile of tiles) {
      const backend = tf.backend();
      const label = `${tile.tm}x${tile.tn}x${tile.tk}`;
      await time(`wgsl fwd ${label} ${rows}x${nb}x${bi}x${bo}`, () =>
        tf.engine().makeTensorFromTensorInfo(runBlockDiagWebGpu(backend, 'forward', x, w, { nb, bi, bo }, tile)), { ...shape, tile: label }, 10, 10);
      await time(`wgsl dx ${label} ${rows}x${nb}x${bi}x${bo}`, () =>
        tf.engine().makeTensorFromTensorInfo(runBlockDiagWebGpu(backend, 'inputGrad', dy, w, { nb, bi, bo }, tile)), { ...shape, tile: label }, 10, 10);
      await time(`wgsl dW ${label} ${rows}x${nb}x${bi}x${bo}`, () =>
        tf.engine().makeTensorFromTensorInfo(runBlockDiagWebGpu(backend, 'weightGrad', x, dy, { nb, bi, bo }, tile)), { ...shape, tile: label }, 10, 10);
    }
    tf.dispose([x, w, dy]);
  }
  {
    const u = tf.randomNormal([1, 768, 4096]) as tf.Tensor3D;
    const kf = tf.mul(tf.randomNormal([768, 4096]), 0.01) as tf.Tensor2D;
    const kr = tf.mul(tf.randomNormal([768, 4096]), 0.01) as tf.Tensor2D;
    const d = tf.randomNormal([768]) as tf.Tensor1D;
    const ms = await time('bidirectionalConv fwd [1,768,4096]', () => bidirectionalConv(u, kf, kr, d), { L: 4096 }, 5);
    if (ms !== undefined) results.timings[results.timings.length - 1].tokensPerMs = 4096 / ms;
    tf.dispose([u, kf, kr, d]);
  }
  await longSequences();
  if (!process.argv.includes('--no-train')) await trainingCheck(DEFAULT_TRAINING_SETUP.length);
}

if (process.argv.includes('--probe')) {
  // Set-up only (used to check setupBackend's own Vulkan driver search, with VK_DRIVER_FILES unset).
  const info = await setupBackend('webgpu').catch((error: Error) => ({ error: error.message }));
  console.log(`probe: ${JSON.stringify(info)}`);
  process.exit(0);
}

try {
  await main();
} catch (error) {
  results.errors.push({ name: 'main', error: String((error as Error).stack ?? error).slice(0, 4000) });
  console.log(`FATAL ${(error as Error).message}`);
  process.exitCode = 1;
}
save();
console.log('\n| check | ok | relL2 |');
for (const c of results.checks) console.log(`| ${c.name} | ${c.ok} | ${(c.relL2 as number[]).map((e) => e.toExponential(1)).join(' ')} |`);
console.log('\n| timing | ms | TFLOP/s |');
for (const t of results.timings) if (typeof t.ms === 'number') console.log(`| ${t.name} | ${t.ms.toFixed(3)} | ${t.tflops === undefined ? '' : (t.tflops as number).toFixed(2)} |`);
console.log(`errors: ${results.errors.length}`);
process.exit(process.exitCode ?? 0);
