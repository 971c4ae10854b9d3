// Every op computed on cpu and on wasm (switching tf.setBackend inside the test, then restoring the suite's
// backend), forward and gradients, must agree.
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { blockDiagMatmul, blockdiagLinear } from './blockdiag.js';
import { fft, ifft, irfft, rfft } from './dft.js';
import { bidirectionalConv, causalConv } from './fft-conv.js';
import { monarchMatmul, monarchMatmulOrderP } from './monarch.js';
import { expectTensorsClose, toFloat64 } from './testing.js';
import type { Float64Tensor } from './testing.js';

const original = tf.getBackend();

beforeAll(async () => {
  const require = createRequire(import.meta.url);
  setWasmPaths(dirname(require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm')) + '/');
  await tf.setBackend('wasm');
  await tf.setBackend(original);
});
afterAll(async () => {
  await tf.setBackend(original);
});

/** Runs `f` on a backend with fresh copies of the inputs and returns its outputs as float64. */
async function on(backend: string, inputs: Float64Tensor[], f: (...xs: tf.Tensor[]) => tf.Tensor[]): Promise<Float64Tensor[]> {
  await tf.setBackend(backend);
  if (tf.getBackend() !== backend) throw new Error(`backend ${backend} did not start (got ${tf.getBackend()})`);
  try {
    return tf.tidy(() => f(...inputs.map((t) => tf.tensor(Float32Array.from(t.data), t.shape)))).map((t) => {
      const out = toFloat64(t);
      t.dispose();
      return out;
    });
  } finally {
    await tf.setBackend(original);
  }
}

function random(shape: number[], seed: number): Float64Tensor {
  const t = tf.randomNormal(shape, 0, 1, 'float32', seed);
  const out = toFloat64(t);
  t.dispose();
  return out;
}

async function agree(label: string, inputs: Float64Tensor[], f: (...xs: tf.Tensor[]) => tf.Tensor[], tolerance = 1e-5): Promise<void> {
  const cpu = await on('cpu', inputs, f);
  const wasm = await on('wasm', inputs, f);
  cpu.forEach((c, i) => expectTensorsClose(wasm[i], c, tolerance, `${label} output ${i} (wasm vs cpu)`));
}

/** f's outputs plus the gradients of Σ probe⊙output[0] with respect to every input. */
function withGrads(f: (...xs: tf.Tensor[]) => tf.Tensor, probe: tf.Tensor | null = null) {
  return (...xs: tf.Tensor[]): tf.Tensor[] => {
    const y = f(...xs);
    const p = probe ?? tf.randomNormal(y.shape, 0, 1, 'float32', 99);
    const grads = tf.grads((...a: tf.Tensor[]) => tf.sum(tf.mul(f(...a), p)))(xs);
    return [y, ...grads];
  };
}

describe('cpu and wasm agree', () => {
  it('blockDiagMatmul, blockdiagLinear and Monarch products, with gradients', async () => {
    await agree('blockDiagMatmul', [random([5, 24], 1), random([4, 6, 5], 2)], withGrads((x, w) => blockDiagMatmul(x, w as tf.Tensor3D)));
    await agree(
      'blockdiagLinear',
      [random([3, 22], 3), random([4, 6, 5], 4), random([19], 5)],
      withGrads((x, w, b) => blockdiagLinear(x, w as tf.Tensor3D, { outFeatures: 19, bias: b as tf.Tensor1D })),
    );
    await agree(
      'monarchMatmul',
      [random([3, 48], 6), random([4, 6, 12], 7), random([6, 5, 4], 8)],
      withGrads((x, a, b) => monarchMatmul(x, a as tf.Tensor3D, b as tf.Tensor3D)),
    );
    await agree(
      'monarchMatmulOrderP',
      [random([2, 24], 9), random([12, 2, 2], 10), random([8, 3, 3], 11), random([6, 4, 4], 12)],
      withGrads((x, a, b, c) => monarchMatmulOrderP(x, [a, b, c] as tf.Tensor3D[])),
    );
  });

  it('fft, ifft, rfft and irfft', async () => {
    for (const n of [96, 1024]) {
      await agree(`fft ${n}`, [random([2, n], 20), random([2, n], 21)], (re, im) => [...fft(re, im), ...ifft(re, im)]);
      await agree(`rfft ${n}`, [random([2, n], 22)], (x) => {
        const [re, im] = rfft(x);
        return [re, im, irfft(re, im, n)];
      });
    }
  });

  it('causal and bidirectional long convolutions, with gradients, orders 2 and 3', async () => {
    for (const [length, order] of [
      [64, 2],
      [100, 3],
      [1024, undefined],
    ] as const) {
      const inputs = [random([2, 4, length], 30), random([4, length], 31), random([4, length], 32), random([4], 33)];
      await agree(
        `bidirectionalConv L=${length}`,
        inputs,
        withGrads((u, kf, kr, d) => bidirectionalConv(u as tf.Tensor3D, kf as tf.Tensor2D, kr as tf.Tensor2D, d as tf.Tensor1D, { order })),
      );
      await agree(
        `causalConv L=${length}`,
        inputs.slice(0, 2),
        withGrads((u, kf) => causalConv(u as tf.Tensor3D, kf as tf.Tensor2D, undefined, { order })),
      );
    }
  });
});
