import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { GluMonarchMlp } from './index.js';
import { setMlpChunkBytes } from './glu-monarch-mlp.js';
import { relativeL2 } from '../test/read-fixture.js';

/** erf by Abramowitz–Stegun 7.1.26 (|error| ≤ 1.5e-7), in float64. */
function erf(x: number): number {
  const t = 1 / (1 + 0.3275911 * Math.abs(x));
  const y = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-x * x);
  return x >= 0 ? y : -y;
}

/** float64 reference: dense block-diagonal matrices from the blocks, then wo(gelu(g[:I]) ⊙ g[I:]) + bias. */
function gluReference(s: number[][], gated: number[][][], wo: number[][][], woBias: number[], d: number, I: number): number[][] {
  const dense = (blocks: number[][][], inF: number, outF: number) => {
    const [nb, bi, bo] = [blocks.length, blocks[0]!.length, blocks[0]![0]!.length];
    const m = Array.from({ length: inF }, () => new Array<number>(outF).fill(0));
    for (let k = 0; k < nb; k++) for (let i = 0; i < bi; i++) for (let j = 0; j < bo; j++) {
      if (k * bi + i < inF && k * bo + j < outF) m[k * bi + i]![k * bo + j] = blocks[k]![i]![j]!;
    }
    return m;
  };
  const G = dense(gated, d, 2 * I);
  const W = dense(wo, I, d);
  return s.map((row) => {
    const g = Array.from({ length: 2 * I }, (_, j) => row.reduce((acc, x, i) => acc + x * G[i]![j]!, 0));
    const a = Array.from({ length: I }, (_, j) => 0.5 * g[j]! * (1 + erf(g[j]! / Math.SQRT2)) * g[I + j]!);
    return Array.from({ length: d }, (_, j) => a.reduce((acc, x, i) => acc + x * W[i]![j]!, woBias[j]!));
  });
}

describe('GluMonarchMlp', () => {
  it.each([
    [16, 64, 4], // gate = 2 whole blocks (the original's sizes)
    [12, 10, 4], // gate = 2 whole blocks of 5
    [10, 7, 4], // padded input, gate not a whole number of blocks: split path
  ])('matches a float64 reference (d %i, I %i, %i blocks)', (d, I, numBlocks) => {
    const mlp = new GluMonarchMlp({ modelDim: d, intermediateDim: I, numBlocks });
    const s = tf.randomNormal([5, d]);
    const y = mlp.apply(s) as tf.Tensor;
    expect(y.shape).toEqual([5, d]);
    const w = mlp.namedWeights();
    const expected = gluReference(
      s.arraySync() as number[][],
      w.get('gated_layers.weight')!.read().arraySync() as number[][][],
      w.get('wo.weight')!.read().arraySync() as number[][][],
      w.get('wo.bias')!.read().arraySync() as number[],
      d,
      I,
    );
    expect(relativeL2(y, tf.tensor2d(expected))).toBeLessThan(1e-5);
    expect([...w.keys()]).toEqual(['gated_layers.weight', 'wo.weight', 'wo.bias']);
    expect(mlp.blockWeightKeys()).toEqual(new Set(['gated_layers.weight', 'wo.weight']));
  });

  it('runs long inputs in row chunks in inference: same float64 reference, no leaked tensors', () => {
    const [d, I] = [16, 64];
    const mlp = new GluMonarchMlp({ modelDim: d, intermediateDim: I, numBlocks: 4 });
    const s = tf.randomNormal([2, 11, d]); // 22 rows
    tf.dispose(mlp.apply(s) as tf.Tensor); // builds the weights and caches
    const previous = setMlpChunkBytes(4 * 2 * I * 5); // 5 rows per chunk → 5 chunks (the last one 2 rows)
    try {
      const w = mlp.namedWeights();
      const expected = gluReference(
        tf.tidy(() => tf.reshape(s, [22, d]).arraySync() as number[][]),
        w.get('gated_layers.weight')!.read().arraySync() as number[][][],
        w.get('wo.weight')!.read().arraySync() as number[][][],
        w.get('wo.bias')!.read().arraySync() as number[],
        d,
        I,
      );
      const before = tf.memory().numTensors;
      tf.tidy(() => {
        const y = mlp.forward(s);
        expect(y.shape).toEqual([2, 11, d]);
        expect(relativeL2(tf.reshape(y, [22, d]), tf.tensor2d(expected))).toBeLessThan(1e-5);
      });
      expect(tf.memory().numTensors).toBe(before);
    } finally {
      setMlpChunkBytes(previous);
    }
  });

  it('applies dropout only in training', () => {
    const mlp = new GluMonarchMlp({ modelDim: 8, intermediateDim: 32, dropout: 0.5 });
    const s = tf.randomNormal([4, 3, 8]);
    const a = mlp.apply(s) as tf.Tensor;
    expect(relativeL2(mlp.apply(s) as tf.Tensor, a)).toBe(0);
    expect(relativeL2(mlp.apply(s, { training: true }) as tf.Tensor, a)).toBeGreaterThan(1e-2);
  });
});
