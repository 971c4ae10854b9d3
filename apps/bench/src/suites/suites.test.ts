// The gpt suite at a tiny size (rows produced, numbers finite and positive) and the cost-exponent fit.
import { describe, expect, it } from 'vitest';
import { bertExponents, costExponent } from './bert.js';
import type { BertRow } from './bert.js';
import { runGptSuite } from './gpt.js';

describe('gpt suite', () => {
  it('times training and generation of M2-GPT and the attention baseline', async () => {
    const rows = await runGptSuite({
      preset: 'tiny',
      overrides: { vocabSize: 64, modelDim: 16, numLayers: 1, maxLength: 16, intermediateDim: 32, filterOrder: 8 },
      batch: 2,
      steps: 2,
      promptLength: 4,
      newTokens: 3,
    });
    expect(rows.map((r) => r.model)).toEqual(['M2-GPT', 'attention GPT']);
    for (const r of rows) {
      for (const v of [r.train_tokens_per_s, r.train_step_ms, r.generate_naive_tokens_per_s, r.train_peak_bytes]) {
        expect(Number.isFinite(v) && v > 0).toBe(true);
      }
      expect(r.L).toBe(16);
    }
    expect(rows[0]!.generate_incremental_tokens_per_s).toBeGreaterThan(0);
  });
});

describe('cost exponents', () => {
  it('recovers the exponent of an exact power law', () => {
    expect(costExponent([[512, 2 * 512 ** 1.2], [1024, 2 * 1024 ** 1.2], [4096, 2 * 4096 ** 1.2]])).toBeCloseTo(1.2, 10);
    expect(costExponent([[512, 1]])).toBeNull();
  });

  it('writes exponents and ratios for bert rows', () => {
    const row = (L: number, m2: number, fast: number | null): BertRow => ({
      backend: 'wasm', L, batch: 1, layers: 1, head: 'mlm', m2_tokens_per_s: m2, attention_tokens_per_s: fast, attention_eager_tokens_per_s: null,
      m2_flops: 1, m2_gflops: 1, m2_peak_bytes: 1, attention_gflops: null, attention_peak_bytes: null,
    });
    // Constant tokens/s → time ∝ L (exponent 1); tokens/s ∝ 1/L → time ∝ L² (exponent 2).
    const text = bertExponents([row(512, 1000, 2000), row(2048, 1000, 500)]);
    expect(text).toContain('M2 1.00, attention (fastest) 2.00, attention (eager) –');
    expect(text).toContain('| 2048 | 2.00× | – |');
  });
});

describe('timeInterleaved', () => {
  it('alternates candidates, reports each one\'s runs, and catches leaks', async () => {
    const { timeInterleaved } = await import('../harness.js');
    const tf = await import('@tensorflow/tfjs-core');
    const order: string[] = [];
    const x = tf.ones([4, 4]);
    const timings = await timeInterleaved(
      [
        { label: 'a', run: () => (order.push('a'), tf.matMul(x, x)) },
        { label: 'b', run: () => (order.push('b'), tf.add(x, 1)) },
      ],
      { warmup: 1, repeats: 3 },
    );
    expect(order).toEqual(['a', 'b', 'a', 'b', 'a', 'b', 'a', 'b']);
    expect(timings.map((t) => t.runsMs.length)).toEqual([3, 3]);
    timings.forEach((t) => expect(t.medianMs).toBeGreaterThanOrEqual(0));
    const kept: unknown[] = [];
    await expect(timeInterleaved([{ label: 'leaky', run: () => (kept.push(tf.add(x, 2)), tf.add(x, 1)) }], { repeats: 1 })).rejects.toThrow(/leaked/);
    tf.dispose([x, ...(kept as never[])]);
  });
});
