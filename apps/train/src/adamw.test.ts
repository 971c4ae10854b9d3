import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { AdamW, clipByGlobalNorm, m2FilterGroups } from './adamw.js';
import { linearWarmupDecay } from './schedule.js';

/** AdamW written out in float64 by hand (the textbook update, no tfjs). */
function adamwReference(
  p0: number[], grads: number[][], multipliers: number[],
  o: { lr: number; wd: number; b1: number; b2: number; eps: number; mode: 'torch' | 'composer' },
): number[] {
  const p = [...p0];
  const m = p.map(() => 0);
  const v = p.map(() => 0);
  grads.forEach((g, k) => {
    const t = k + 1;
    const lrT = o.lr * multipliers[k];
    const decay = o.mode === 'torch' ? lrT * o.wd : multipliers[k] * o.wd;
    for (let i = 0; i < p.length; i++) {
      p[i] *= 1 - decay;
      m[i] = o.b1 * m[i] + (1 - o.b1) * g[i];
      v[i] = o.b2 * v[i] + (1 - o.b2) * g[i] * g[i];
      const mHat = m[i] / (1 - o.b1 ** t);
      const vHat = v[i] / (1 - o.b2 ** t);
      p[i] -= lrT * mHat / (Math.sqrt(vHat) + o.eps);
    }
  });
  return p;
}

describe('AdamW', () => {
  const p0 = [0.5, -1.25, 2, 0.01];
  const grads = [[0.1, -0.2, 0.3, 1e-3], [-0.05, 0.4, 0.2, -2e-3], [0.3, 0.1, -0.6, 5e-4]];
  const multipliers = [0.5, 1, 0.75];

  for (const mode of ['torch', 'composer'] as const) {
    it(`matches a float64 hand computation over 3 steps (${mode} decay)`, () => {
      const w = tf.variable(tf.tensor1d(p0));
      const opt = new AdamW(new Map([['w', w]]), { lr: 0.01, weightDecay: 0.1, beta1: 0.9, beta2: 0.98, epsilon: 1e-6, weightDecayMode: mode });
      for (let k = 0; k < 3; k++) {
        const g = tf.tensor1d(grads[k]);
        opt.applyGradients(new Map([['w', g]]), multipliers[k]);
        g.dispose();
      }
      const expected = adamwReference(p0, grads, multipliers, { lr: 0.01, wd: 0.1, b1: 0.9, b2: 0.98, eps: 1e-6, mode });
      const actual = w.dataSync();
      for (let i = 0; i < 4; i++) expect(Math.abs(actual[i] - expected[i])).toBeLessThan(2e-6 * Math.max(1, Math.abs(expected[i])));
      opt.dispose();
      w.dispose();
    });
  }

  it('puts the M2 filter parameters in their groups (§2.11) and uses their lr and wd', () => {
    const names = [
      'blocks.0.mixer.filter_fn.implicit_filter.0.weight',
      'blocks.0.mixer.filter_fn.implicit_filter.1.freq',
      'blocks.0.mixer.filter_fn.pos_emb.z',
      'bert.encoder.layer.0.attention.filter_fn.implicit_filter_rev.0.weight',
      'blocks.0.mixer.in_linear.weight',
    ];
    const vars = new Map(names.map((n) => [n, tf.variable(tf.ones([2]))]));
    const opt = new AdamW(vars, { lr: 0.5, weightDecay: 0.01, groups: m2FilterGroups() });
    expect(names.map((n) => opt.groupOf(n))).toEqual(['implicit-filter', 'implicit-filter', 'filter-z', 'default', 'default']);
    const g = tf.ones([2]);
    opt.applyGradients(new Map(names.map((n) => [n, g])), 1);
    // First step: p·(1 − lr·wd) − lr·m̂/(√v̂ + ε) with m̂ = 1, v̂ = 1.
    const expectedFor = (lr: number, wd: number) => 1 * (1 - lr * wd) - lr / (1 + 1e-6);
    expect(vars.get(names[0])!.dataSync()[0]).toBeCloseTo(expectedFor(1e-3, 0.1), 6);
    expect(vars.get(names[2])!.dataSync()[0]).toBeCloseTo(expectedFor(1e-5, 0), 7);
    expect(vars.get(names[4])!.dataSync()[0]).toBeCloseTo(expectedFor(0.5, 0.01), 6);
    g.dispose();
    opt.dispose();
    for (const v of vars.values()) v.dispose();
  });

  it('leaves no tensor or byte behind once disposed (the zero moments it starts from included)', () => {
    const w = tf.variable(tf.tensor2d([[1, 2, 3], [4, 5, 6]]));
    const g = tf.ones([2, 3]);
    const before = tf.memory();
    const opt = new AdamW(new Map([['w', w]]), { lr: 0.01 });
    // Two moment variables of w's size, nothing else.
    expect(tf.memory().numTensors - before.numTensors).toBe(2);
    expect(tf.memory().numBytes - before.numBytes).toBe(2 * 6 * 4);
    opt.applyGradients(new Map([['w', g]]), 1);
    const state = opt.getState();
    opt.setState(state);
    tf.dispose([...state.firstMoments.values(), ...state.secondMoments.values()]);
    opt.dispose();
    expect(tf.memory().numTensors).toBe(before.numTensors);
    expect(tf.memory().numBytes).toBe(before.numBytes);
    tf.dispose([g, w]);
  });

  it('round-trips its state and does not leak tensors per step', () => {
    const w = tf.variable(tf.tensor1d(p0));
    const opt = new AdamW(new Map([['w', w]]), { lr: 0.01 });
    const g = tf.tensor1d(grads[0]);
    opt.applyGradients(new Map([['w', g]]), 1);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) opt.applyGradients(new Map([['w', g]]), 1);
    expect(tf.memory().numTensors).toBe(before);
    const state = opt.getState();
    const other = new AdamW(new Map([['w', w]]), { lr: 0.01 });
    other.setState(state);
    expect(other.step).toBe(6);
    expect(Array.from(other.getState().firstMoments.get('w')!.dataSync())).toEqual(Array.from(state.firstMoments.get('w')!.dataSync()));
    for (const t of [...state.firstMoments.values(), ...state.secondMoments.values()]) t.dispose();
    opt.dispose();
    other.dispose();
    g.dispose();
    w.dispose();
  });
});

describe('linearWarmupDecay', () => {
  it('ramps up linearly, then decays linearly to the floor and stays there', () => {
    const s = { warmupSteps: 10, totalSteps: 110, floor: 0.02 };
    expect(linearWarmupDecay(1, s)).toBeCloseTo(0.1, 12);
    expect(linearWarmupDecay(10, s)).toBeCloseTo(1, 12);
    expect(linearWarmupDecay(60, s)).toBeCloseTo(1 - 0.98 * 0.5, 12);
    expect(linearWarmupDecay(110, s)).toBeCloseTo(0.02, 12);
    expect(linearWarmupDecay(500, s)).toBeCloseTo(0.02, 12);
    expect(linearWarmupDecay(50, { warmupSteps: 0, totalSteps: 100, floor: 0 })).toBeCloseTo(0.5, 12);
    expect(linearWarmupDecay(1000, { warmupSteps: 20, totalSteps: Infinity })).toBe(1);
    // A time-budgeted run decays with the clock: half the budget used → halfway to the floor.
    expect(linearWarmupDecay(1000, { warmupSteps: 20, totalSteps: Infinity, timeFraction: 0.5, floor: 0 })).toBeCloseTo(0.5, 12);
    expect(linearWarmupDecay(1000, { warmupSteps: 20, totalSteps: Infinity, timeFraction: 1.3 })).toBeCloseTo(0.02, 12);
  });
});

describe('clipByGlobalNorm', () => {
  it('scales by maxNorm / (norm + 1e-6) across all gradients, and leaves small ones alone', async () => {
    const grads = new Map<string, tf.Tensor>([['a', tf.tensor1d([3, 0])], ['b', tf.tensor2d([[0, 4]])]]);
    const { norm, clipped } = await clipByGlobalNorm(grads, 1);
    expect(norm).toBeCloseTo(5, 6);
    const c = 1 / (5 + 1e-6);
    expect(Array.from(clipped.get('a')!.dataSync())).toEqual([Math.fround(3 * c), 0].map((x) => expect.closeTo(x, 6)) as never);
    expect(clipped.get('b')!.dataSync()[1]).toBeCloseTo(4 * c, 6);
    const loose = await clipByGlobalNorm(grads, 10);
    expect(loose.clipped.get('b')!.dataSync()[1]).toBe(4);
    for (const m of [grads, clipped, loose.clipped]) for (const t of m.values()) t.dispose();
  });
});
