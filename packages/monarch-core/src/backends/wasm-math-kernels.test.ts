// The wasm Erf replacement and the fused GELU gate against float64 references (an erf series), and the gate's
// gradient against central finite differences of the float64 function.
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { erf64, expectTensorsClose, numericalGradient } from '../testing.js';
import { setupBackend } from './setup-backend.js';
import { erfApprox, GELU_GATE, geluGate, registerWasmMathKernels, wasmMathKernels } from './wasm-math-kernels.js';

const gelu64 = (x: number) => 0.5 * x * (1 + erf64(x / Math.SQRT2));
const grid = (n: number, lo: number, hi: number) => Array.from({ length: n }, (_, i) => lo + ((hi - lo) * i) / (n - 1));

const previous = tf.getBackend();
beforeAll(async () => {
  await setupBackend('wasm', { threads: 1 });
});
afterAll(async () => {
  await tf.setBackend(previous);
});

describe('wasm math kernels', () => {
  it('erfApprox is within 2e-7 of the float64 erf', () => {
    let worst = 0;
    for (const x of grid(4001, -6, 6)) worst = Math.max(worst, Math.abs(erfApprox(x) - erf64(x)));
    expect(worst).toBeLessThan(2e-7);
    expect(erfApprox(Infinity)).toBeCloseTo(1, 6);
    expect(erfApprox(-Infinity)).toBeCloseTo(-1, 6);
    expect(erfApprox(Number.NaN)).toBeNaN();
  });

  it('are registered for wasm by setupBackend', () => {
    expect(registerWasmMathKernels()).toEqual([]);
    for (const k of wasmMathKernels) expect(tf.getKernel(k.kernelName, 'wasm')?.kernelFunc).toBe(k.kernelFunc);
  });

  it('tf.erf on wasm matches the float64 erf', () => {
    const xs = grid(999, -5, 5);
    const y = tf.erf(tf.tensor2d(xs, [27, 37]));
    const got = y.dataSync();
    xs.forEach((x, i) => expect(Math.abs(got[i]! - erf64(x))).toBeLessThan(3e-7));
    y.dispose();
  });

  it('geluGate runs the fused kernel on wasm and matches GELU(g)·v in float64', () => {
    expect(tf.getKernel(GELU_GATE, 'wasm')).toBeDefined();
    const gs = grid(600, -7, 5);
    const vs = gs.map((_, i) => Math.sin(i) * 3);
    const g = tf.tensor3d(gs, [2, 20, 15]);
    const v = tf.tensor3d(vs, [2, 20, 15]);
    const before = tf.memory().numTensors;
    const y = geluGate(g, v);
    expect(y.shape).toEqual([2, 20, 15]);
    expectTensorsClose(y, { shape: [2, 20, 15], data: gs.map((x, i) => gelu64(x) * vs[i]!) }, 1e-6, 'geluGate');
    y.dispose();
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([g, v]);
  });

  it('geluGate gradients match finite differences of the float64 function', () => {
    const gs = [-3.1, -1.2, -0.4, 0, 0.3, 0.9, 1.7, 2.6];
    const vs = [0.5, -1.5, 2, 0.7, -0.2, 1.1, -0.8, 0.4];
    const dy = [1, -0.5, 0.3, 2, -1, 0.6, 0.9, -0.7];
    const loss = (x: Float64Array) => x.slice(0, 8).reduce((acc, gi, i) => acc + dy[i]! * gelu64(gi) * x[8 + i]!, 0);
    const numeric = numericalGradient(loss, Float64Array.from([...gs, ...vs]), 1e-5);
    const [dg, dv] = tf.grads((g: tf.Tensor, v: tf.Tensor) => tf.sum(tf.mul(geluGate(g, v), tf.tensor1d(dy))))([tf.tensor1d(gs), tf.tensor1d(vs)]);
    expectTensorsClose(dg!, { shape: [8], data: numeric.slice(0, 8) }, 1e-5, 'd gate');
    expectTensorsClose(dv!, { shape: [8], data: numeric.slice(8) }, 1e-5, 'd value');
  });

  it('geluGate rejects different shapes', () => {
    expect(() => geluGate(tf.ones([2, 3]), tf.ones([3, 2]))).toThrow(/geluGate/);
  });
});
