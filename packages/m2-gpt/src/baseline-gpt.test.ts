import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { BaselineGpt, baselineGptConfigFor, countBaselineGptParameters } from './baseline-gpt.js';
import type { BaselineGptConfig } from './baseline-gpt.js';
import { countM2GptParameters, resolveM2GptConfig } from './m2-gpt-config.js';

const small: BaselineGptConfig = { vocabSize: 11, maxLength: 6, modelDim: 8, numLayers: 2, numHeads: 2, mlpDim: 6,
  layerNormEps: 1e-5, initializerRange: 0.5 };

/** float64 reference of the whole forward pass, written with loops. */
function referenceLogits(model: BaselineGpt, ids: number[]): number[][] {
  const c = model.config;
  const W = (name: string) => Array.from(model.weights.get(name)!.dataSync());
  const d = c.modelDim, H = c.numHeads, dh = d / H, L = ids.length;
  const ln = (x: number[], g: number[], b: number[]) => {
    const mean = x.reduce((a, v) => a + v) / d;
    const variance = x.reduce((a, v) => a + (v - mean) ** 2, 0) / d;
    return x.map((v, i) => ((v - mean) / Math.sqrt(variance + c.layerNormEps)) * g[i] + b[i]);
  };
  const lin = (x: number[], w: number[], b: number[], out: number) =>
    Array.from({ length: out }, (_, j) => x.reduce((a, v, i) => a + v * w[i * out + j], b[j]));
  const gelu = (v: number) => 0.5 * v * (1 + erf(v / Math.SQRT2));
  const wte = W('wte.weight'), wpe = W('wpe.weight');
  let x = ids.map((id, t) => Array.from({ length: d }, (_, j) => wte[id * d + j] + wpe[t * d + j]));
  for (let l = 0; l < c.numLayers; l++) {
    const p = `h.${l}.`;
    const qkv = x.map((row) => lin(ln(row, W(`${p}ln_1.weight`), W(`${p}ln_1.bias`)), W(`${p}attn.c_attn.weight`), W(`${p}attn.c_attn.bias`), 3 * d));
    const merged = x.map(() => new Array<number>(d).fill(0));
    for (let h = 0; h < H; h++) {
      for (let t = 0; t < L; t++) {
        const s = Array.from({ length: t + 1 }, (_, u) => {
          let dot = 0;
          for (let e = 0; e < dh; e++) dot += qkv[t][h * dh + e] * qkv[u][d + h * dh + e];
          return dot / Math.sqrt(dh);
        });
        const m = Math.max(...s);
        const ex = s.map((v) => Math.exp(v - m));
        const z = ex.reduce((a, v) => a + v);
        for (let u = 0; u <= t; u++) for (let e = 0; e < dh; e++) merged[t][h * dh + e] += (ex[u] / z) * qkv[u][2 * d + h * dh + e];
      }
    }
    x = x.map((row, t) => lin(merged[t], W(`${p}attn.c_proj.weight`), W(`${p}attn.c_proj.bias`), d).map((v, j) => v + row[j]));
    x = x.map((row) => {
      const inner = lin(ln(row, W(`${p}ln_2.weight`), W(`${p}ln_2.bias`)), W(`${p}mlp.c_fc.weight`), W(`${p}mlp.c_fc.bias`), c.mlpDim).map(gelu);
      return lin(inner, W(`${p}mlp.c_proj.weight`), W(`${p}mlp.c_proj.bias`), d).map((v, j) => v + row[j]);
    });
  }
  return x.map((row) => {
    const h = ln(row, W('ln_f.weight'), W('ln_f.bias'));
    return Array.from({ length: c.vocabSize }, (_, v) => h.reduce((a, hv, j) => a + hv * wte[v * d + j], 0));
  });
}

/** erf to ~1e-12 (series / continued fraction split). */
function erf(x: number): number {
  const sign = Math.sign(x);
  const a = Math.abs(x);
  if (a < 3) {
    let sum = a, term = a;
    for (let n = 1; n < 80; n++) {
      term *= (-a * a) / n;
      sum += term / (2 * n + 1);
    }
    return (sign * 2 * sum) / Math.sqrt(Math.PI);
  }
  return sign * (1 - Math.exp(-a * a) / (a * Math.sqrt(Math.PI)) * (1 - 1 / (2 * a * a) + 3 / (4 * a ** 4)));
}

describe('BaselineGpt', () => {
  it('matches a float64 loop reference, and its loss is the mean next-token NLL of those logits', () => {
    const model = new BaselineGpt(small, { seed: 3 });
    const ids = [1, 5, 10, 0, 5, 7];
    const { logits, loss } = model.forward(tf.tensor2d([ids], undefined, 'int32'), { computeLoss: true });
    const ref = referenceLogits(model, ids);
    const got = logits.arraySync()[0];
    let err = 0, norm = 0;
    ref.forEach((row, t) => row.forEach((v, j) => { err += (got[t][j] - v) ** 2; norm += v * v; }));
    expect(Math.sqrt(err / norm)).toBeLessThan(1e-5);
    let nll = 0;
    for (let t = 0; t < ids.length - 1; t++) {
      const m = Math.max(...ref[t]);
      const lse = m + Math.log(ref[t].reduce((a, v) => a + Math.exp(v - m), 0));
      nll += lse - ref[t][ids[t + 1]];
    }
    expect(loss!.dataSync()[0]).toBeCloseTo(nll / (ids.length - 1), 4);
    tf.dispose([logits, loss!]);
    model.dispose();
  });

  it('is causal: changing tokens ≥ t leaves logits < t unchanged', () => {
    const model = new BaselineGpt(small, { seed: 4 });
    const a = tf.tensor2d([[1, 2, 3, 4, 5, 6]], undefined, 'int32');
    const b = tf.tensor2d([[1, 2, 3, 9, 0, 10]], undefined, 'int32');
    const [la, lb] = [model.forward(a).logits, model.forward(b).logits];
    const diff = tf.tidy(() => tf.abs(tf.sub(la, lb)).arraySync() as number[][][]);
    expect(Math.max(...diff[0].slice(0, 3).flat())).toBeLessThanOrEqual(1e-5);
    expect(Math.max(...diff[0][3])).toBeGreaterThan(1e-3);
    tf.dispose([a, b, la, lb]);
    model.dispose();
  });

  it('key/value-cache decoding equals the full forward at every step and keeps a constant tensor count', async () => {
    const model = new BaselineGpt(small, { seed: 6 });
    const ids = [4, 8, 10, 1, 2, 9];
    const decoder = model.createIncrementalDecoder();
    const stepped = [decoder.step(ids[0]!)];
    const before = tf.memory().numTensors;
    for (const id of ids.slice(1)) stepped.push(decoder.step(id));
    expect(tf.memory().numTensors).toBe(before);
    decoder.dispose();
    const full = referenceLogits(model, ids);
    stepped.forEach((row, t) => row.forEach((v, j) => expect(Math.abs(v - full[t]![j]!)).toBeLessThan(1e-4)));
    model.dispose();
  });

  it('counts parameters like GPT-2 small, and matches an M2-GPT config', () => {
    expect(countBaselineGptParameters({ vocabSize: 50257, maxLength: 1024, modelDim: 768, numLayers: 12, numHeads: 12,
      mlpDim: 3072, layerNormEps: 1e-5, initializerRange: 0.02 })).toBe(124_439_808); // HF GPT2LMHeadModel
    for (const preset of ['tiny', 'small', 'medium'] as const) {
      const m2 = resolveM2GptConfig({ preset });
      const baseline = baselineGptConfigFor(m2);
      const diff = Math.abs(countBaselineGptParameters(baseline) - countM2GptParameters(m2).total);
      expect(diff).toBeLessThanOrEqual(m2.numLayers * (2 * m2.modelDim + 1));
    }
    const model = new BaselineGpt(small);
    expect(model.countParameters()).toBe(countBaselineGptParameters(small));
    model.dispose();
  });
});
