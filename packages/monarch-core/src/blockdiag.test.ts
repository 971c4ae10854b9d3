import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { fixtureTensor, readFixture } from '../test/read-fixture.js';
import { blockDiagMatmul, blockdiagLinear, tfjsBlocksToTorch, torchBlocksToTfjs } from './blockdiag.js';
import { fft, rfft } from './dft.js';
import { ShapeError } from './errors.js';
import { monarchMatmul, monarchMatmulOrderP } from './monarch.js';
import { blockDiagMatmulReference, blockdiagLinearReference, expectTensorsClose, numericalGradient, toFloat64 } from './testing.js';

const golden = readFixture('blockdiag.safetensors');
const g = (key: string) => fixtureTensor(golden, key);

describe('blockDiagMatmul', () => {
  it('reproduces the golden y, y3d and the dense equivalent', () => {
    tf.tidy(() => {
      const w = torchBlocksToTfjs(g('weight') as tf.Tensor3D);
      expect(w.shape).toEqual([4, 24, 40]);
      expectTensorsClose(blockDiagMatmul(g('x'), w), g('y'), 1e-5, 'y');
      expectTensorsClose(blockDiagMatmul(g('x3d'), w), g('y3d'), 1e-5, 'y3d');
      expectTensorsClose(tf.matMul(g('x') as tf.Tensor2D, tf.transpose(g('dense')) as tf.Tensor2D), g('y'), 1e-5, 'dense');
      expectTensorsClose(blockDiagMatmulReference(g('x'), w), g('y'), 1e-6, 'reference');
    });
  });

  it('accepts pre-split blocks with the same result and gradients', () => {
    tf.tidy(() => {
      const w = torchBlocksToTfjs(g('weight') as tf.Tensor3D);
      const blocks = tf.unstack(w) as tf.Tensor2D[];
      expectTensorsClose(blockDiagMatmul(g('x3d'), blocks), g('y3d'), 1e-5, 'pre-split');
      const probe = tf.randomNormal([3, 160], 0, 1, 'float32', 8);
      const grads = tf.grads((...bs: tf.Tensor[]) => tf.sum(tf.mul(blockDiagMatmul(g('x'), bs as tf.Tensor2D[]), probe)))(blocks);
      const whole = tf.grad((ww: tf.Tensor) => tf.sum(tf.mul(blockDiagMatmul(g('x'), ww as tf.Tensor3D), probe)))(w);
      expectTensorsClose(tf.stack(grads), whole, 1e-6, 'block grads');
      expect(() => blockDiagMatmul(g('x'), [blocks[0], tf.zeros([24, 39]) as tf.Tensor2D])).toThrow(
        'blockDiagMatmul: blocks[1] must have shape [24, 40] (like blocks[0]), got [24, 39]',
      );
    });
  });

  it('round-trips the layouts', () => {
    tf.tidy(() => {
      const w = g('weight') as tf.Tensor3D;
      expectTensorsClose(tfjsBlocksToTorch(torchBlocksToTfjs(w)), w, 0, 'round trip');
    });
  });

  it('has gradients matching finite differences of the float64 reference', () => {
    const x = tf.randomNormal([3, 8], 0, 1, 'float32', 1);
    const w = tf.randomNormal([2, 4, 3], 0, 1, 'float32', 2) as tf.Tensor3D;
    const probe = tf.randomNormal([3, 6], 0, 1, 'float32', 3);
    const [gx, gw] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(blockDiagMatmul(a, b as tf.Tensor3D), probe)))([x, w]);
    const p = toFloat64(probe).data;
    const wf = toFloat64(w);
    const xf = toFloat64(x);
    const loss = (xv: Float64Array, wv: Float64Array) =>
      blockDiagMatmulReference({ shape: [3, 8], data: xv }, { shape: [2, 4, 3], data: wv }).data.reduce((s, v, i) => s + v * p[i], 0);
    expectTensorsClose(gx, { shape: [3, 8], data: numericalGradient((v) => loss(v, wf.data), xf.data) }, 1e-5, 'dx');
    expectTensorsClose(gw, { shape: [2, 4, 3], data: numericalGradient((v) => loss(xf.data, v), wf.data) }, 1e-5, 'dw');
    tf.dispose([x, w, probe, gx, gw]);
  });

  it('does not leak tensors (block-diagonal, Monarch and DFT ops)', () => {
    const x = tf.ones([5, 8]);
    const w = tf.ones([4, 2, 3]) as tf.Tensor3D;
    const w1 = tf.ones([8, 8, 8]) as tf.Tensor3D;
    const x64 = tf.ones([2, 64]);
    const run = () => {
      tf.dispose(blockDiagMatmul(x, w));
      tf.dispose(monarchMatmul(x64, w1, w1));
      tf.dispose(monarchMatmulOrderP(x64, [w1, w1]));
      tf.dispose(fft(x, x));
      tf.dispose(rfft(x));
    };
    run();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) run();
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([x, w, w1, x64]);
  });

  it('rejects mismatched shapes with one line naming the tensor', () => {
    const x = tf.ones([2, 60]);
    const w = tf.ones([8, 8, 8]) as tf.Tensor3D;
    expect(() => blockDiagMatmul(x, w)).toThrow(ShapeError);
    expect(() => blockDiagMatmul(x, w)).toThrow('blockDiagMatmul: x last dim must be 64 (numBlocks 8 × blockIn 8), got 60 (shape [2, 60])');
    expect(() => blockDiagMatmul(x, tf.ones([8, 8]) as unknown as tf.Tensor3D)).toThrow(/blocks must have rank 3/);
    tf.dispose([x, w]);
  });
});

describe('blockdiagLinear', () => {
  it('pads, truncates and adds the bias like the original BlockdiagLinear', () => {
    tf.tidy(() => {
      const w = torchBlocksToTfjs(g('pad.weight') as tf.Tensor3D);
      const y = blockdiagLinear(g('pad.x'), w, { outFeatures: 150, bias: g('pad.bias') as tf.Tensor1D });
      expectTensorsClose(y, g('pad.y'), 1e-5, 'pad.y');
      const dense = tf.matMul(g('pad.x') as tf.Tensor2D, tf.transpose(g('pad.dense')) as tf.Tensor2D);
      expectTensorsClose(tf.add(dense, g('pad.bias')), g('pad.y'), 1e-5, 'pad.dense');
      expectTensorsClose(blockdiagLinearReference(g('pad.x'), w, 150, g('pad.bias')), g('pad.y'), 1e-6, 'reference');
    });
  });

  it('rejects bad widths and biases', () => {
    const w = tf.ones([4, 23, 38]) as tf.Tensor3D;
    const x = tf.ones([3, 93]);
    expect(() => blockdiagLinear(x, w, { outFeatures: 150 })).toThrow('blockdiagLinear: x last dim must be ≤ 92 (numBlocks 4 × blockIn 23), got 93');
    const x2 = tf.ones([3, 90]);
    expect(() => blockdiagLinear(x2, w, { outFeatures: 153 })).toThrow(/outFeatures must be ≤ 152/);
    const bias = tf.ones([149]) as tf.Tensor1D;
    expect(() => blockdiagLinear(x2, w, { outFeatures: 150, bias })).toThrow('blockdiagLinear: options.bias must have shape [150] (outFeatures), got [149]');
    tf.dispose([w, x, x2, bias]);
  });
});
