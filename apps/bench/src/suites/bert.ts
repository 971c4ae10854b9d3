// `m2 bench bert`: forward throughput (tokens/s) of M2-BERT-base (the 80M configuration: d 768, I 3072) against two
// attention BERT-bases of the same width, depth, vocabulary and MLM head on the same backend: the fastest
// attention we can write there ('fast': per-head 2-D matMuls, chunked queries) and HuggingFace-eager batched
// attention with the materialised [B, heads, L, L] softmax ('eager', the paper's baseline). Encoder + MLM head at
// every position, as the original benchmark_fwd.py times it.
import * as tf from '@tensorflow/tfjs-core';
import { M2Bert } from '@monarch-mixer/m2-bert';
import { AttentionBertBaseline, attentionBertFlops } from '../baselines/attention-bert.js';
import { timeInterleaved } from '../harness.js';

/** One row of the `bert` suite. */
export interface BertRow {
  backend: string;
  L: number;
  batch: number;
  layers: number;
  /** 'mlm' (encoder + MLM head) or 'none' (encoder only). */
  head: 'mlm' | 'none';
  m2_tokens_per_s: number;
  attention_tokens_per_s: number | null;
  attention_eager_tokens_per_s: number | null;
  /** Useful FLOPs of one M2 forward (see {@link m2BertForwardFlops}). */
  m2_flops: number;
  m2_gflops: number;
  m2_peak_bytes: number;
  /** Useful GFLOP/s of the fast attention BERT (its own FLOP count, {@link attentionBertFlops}). */
  attention_gflops: number | null;
  attention_peak_bytes: number | null;
}

/** Options of {@link runBertSuite}. */
export interface BertSuiteOptions {
  lengths: number[];
  layers: number;
  batch: number;
  /** 'mlm': encoder + MLM head at every position (default); 'none': encoder only (fewer layers then stay a fair proxy of 12). */
  head?: 'mlm' | 'none';
  /** Timed runs per measurement (median; one untimed warm-up first). Default 3. */
  repeats?: number;
  /** Time eager attention only up to this L (longer rows get null). Default: no limit. */
  eagerMaxLength?: number;
  /** Skip eager attention when its [B, 12, L, L] scores exceed this many bytes. Default 4 GiB. */
  eagerScoreLimitBytes?: number;
  /** Skip a model at a length once one forward takes longer than this (ms). Default 120 000. */
  slowLimitMs?: number;
  log?: (line: string) => void;
}

const BASE = { vocabSize: 30528, modelDim: 768, intermediateDim: 3072, numHeads: 12, filterOrder: 128, filterEmbDim: 5, numBlocks: 4 };

/**
 * Useful FLOPs of an M2-BERT forward with the MLM head (2 per multiply-add): in/out projections, block-diagonal GLU,
 * the implicit filter MLPs, the long convolutions counted as real FFTs of size 2L (3 transforms of 2.5·N·log₂N per
 * channel plus the complex product), gates, and the head.
 */
export function m2BertForwardFlops(batch: number, length: number, layers: number, withHead = true): number {
  const d = BASE.modelDim;
  const i = BASE.intermediateDim;
  const o = BASE.filterOrder;
  const tokens = batch * length;
  const projections = 2 * tokens * (3 * d * d + d * d);
  const glu = (2 * tokens * (d * 2 * i + i * d)) / BASE.numBlocks;
  const filterMlp = 4 * 2 * length * (BASE.filterEmbDim * o + 2 * o * o + o * d); // 2 filters × (fwd + rev)
  const n = 2 * length;
  const fftConv = 2 * batch * d * (3 * 2.5 * n * Math.log2(n) + 6 * n); // two long convolutions per layer
  const perLayer = projections + glu + filterMlp + fftConv;
  const head = 2 * tokens * (d * d + d * BASE.vocabSize);
  return layers * perLayer + (withHead ? head : 0);
}

/** Runs the suite: for each L, M2 then fast attention then eager attention, in one process. */
export async function runBertSuite(options: BertSuiteOptions): Promise<BertRow[]> {
  const { lengths, layers, batch, head = 'mlm', repeats: timedRuns = 3, eagerScoreLimitBytes = 4 * 2 ** 30, slowLimitMs = 120_000, log = () => {} } = options;
  const withHead = head === 'mlm';
  const backend = tf.getBackend();
  const rows: BertRow[] = [];
  let attentionTooSlow = false;
  let eagerTooSlow = false;
  for (const length of lengths) {
    const ids = tf.tidy(() => tf.cast(tf.floor(tf.mul(tf.randomUniform([batch, length], 0, 1, 'float32', length), 30000)), 'int32')) as tf.Tensor2D;
    const tokens = batch * length;
    const repeats = { warmup: 1, repeats: timedRuns, budgetMs: slowLimitMs };

    // Both models stay resident and their runs alternate (M2, attention, eager, M2, …): load swings on a shared
    // machine then hit all of them alike. Peak bytes therefore include both models' weights.
    const m2 = new M2Bert({ preset: 'm2-bert-80M-2k', maxPositionEmbeddings: length, longConvLMax: length, numLayers: layers, hiddenDropout: 0, head: withHead ? 'masked-lm' : 'none' });
    const shape = { vocabSize: BASE.vocabSize, hiddenSize: BASE.modelDim, numLayers: layers, numHeads: BASE.numHeads, intermediateSize: BASE.intermediateDim, maxLength: length };
    const attention = new AttentionBertBaseline(shape, 1);
    const candidates: Array<{ label: string; run: () => tf.Tensor | tf.Tensor[] }> = [
      {
        label: `M2-BERT L=${length}`,
        run: () => {
          const out = m2.forward({ inputIds: ids });
          const keep = withHead ? out.logits! : out.lastHiddenState;
          tf.dispose([out.lastHiddenState, out.poolerOutput ?? [], out.logits ?? []].flat().filter((t) => t !== keep));
          return keep;
        },
      },
    ];
    const runFast = !attentionTooSlow;
    if (runFast) candidates.push({ label: `attention L=${length}`, run: () => attention.forward(ids, 'fast', withHead) });
    const scoreBytes = 4 * batch * BASE.numHeads * length * length;
    const runEager = !eagerTooSlow && scoreBytes <= eagerScoreLimitBytes && length <= (options.eagerMaxLength ?? Infinity);
    if (runEager) candidates.push({ label: `eager attention L=${length}`, run: () => attention.forward(ids, 'eager', withHead) });
    const timings = await timeInterleaved(candidates, repeats);
    m2.dispose();
    const m2Time = timings[0]!;
    log(`L=${length}: M2 ${(tokens / m2Time.medianMs * 1000).toFixed(0)} tokens/s`);
    let fast: number | null = null;
    let fastTiming: { medianMs: number; peakBytes: number } | null = null;
    if (runFast) {
      fastTiming = timings[1]!;
      fast = (tokens / fastTiming.medianMs) * 1000;
      attentionTooSlow = fastTiming.medianMs > slowLimitMs;
      log(`L=${length}: attention (fast) ${fast.toFixed(0)} tokens/s`);
    }
    let eager: number | null = null;
    if (runEager) {
      const t = timings[runFast ? 2 : 1]!;
      eager = (tokens / t.medianMs) * 1000;
      eagerTooSlow = t.medianMs > slowLimitMs;
      log(`L=${length}: attention (eager) ${eager.toFixed(0)} tokens/s`);
    }
    attention.dispose();
    ids.dispose();
    const flops = m2BertForwardFlops(batch, length, layers, withHead);
    rows.push({
      backend, L: length, batch, layers, head,
      m2_tokens_per_s: (tokens / m2Time.medianMs) * 1000,
      attention_tokens_per_s: fast,
      attention_eager_tokens_per_s: eager,
      m2_flops: flops,
      m2_gflops: flops / m2Time.medianMs / 1e6,
      m2_peak_bytes: m2Time.peakBytes,
      attention_gflops: fastTiming === null ? null : attentionBertFlops(shape, batch, length, withHead) / fastTiming.medianMs / 1e6,
      attention_peak_bytes: fastTiming?.peakBytes ?? null,
    });
  }
  return rows;
}

export { attentionBertFlops };

/**
 * Least-squares slope of ln(time) against ln(L): time ∝ L^slope. Null with fewer than two points.
 *
 * @param points - [L, seconds] pairs.
 * @returns The fitted exponent.
 */
export function costExponent(points: Array<[number, number]>): number | null {
  if (points.length < 2) return null;
  const xs = points.map(([l]) => Math.log(l));
  const ys = points.map(([, t]) => Math.log(t));
  const mx = xs.reduce((a, b) => a + b, 0) / xs.length;
  const my = ys.reduce((a, b) => a + b, 0) / ys.length;
  let num = 0;
  let den = 0;
  xs.forEach((x, i) => {
    num += (x - mx) * (ys[i]! - my);
    den += (x - mx) ** 2;
  });
  return den === 0 ? null : num / den;
}

/** A markdown section with the fitted cost exponents (time per forward ∝ L^e) and the M2/attention ratios. */
export function bertExponents(rows: BertRow[]): string {
  const fit = (column: 'm2_tokens_per_s' | 'attention_tokens_per_s' | 'attention_eager_tokens_per_s') =>
    costExponent(rows.filter((r) => r[column] !== null).map((r) => [r.L, (r.batch * r.L) / r[column]!]));
  const text = (e: number | null) => (e === null ? '–' : e.toFixed(2));
  const ratio = (a: number, b: number | null) => (b === null ? '–' : `${(a / b).toFixed(2)}×`);
  return [
    '',
    `Fitted cost exponents (forward time ∝ L^e over L = ${rows.map((r) => r.L).join(', ')}): M2 ${text(fit('m2_tokens_per_s'))}, ` +
      `attention (fastest) ${text(fit('attention_tokens_per_s'))}, attention (eager) ${text(fit('attention_eager_tokens_per_s'))}.`,
    '',
    '| L | M2 / attention (fastest) | M2 / attention (eager) |',
    '| --- | --- | --- |',
    ...rows.map((r) => `| ${r.L} | ${ratio(r.m2_tokens_per_s, r.attention_tokens_per_s)} | ${ratio(r.m2_tokens_per_s, r.attention_eager_tokens_per_s)} |`),
    '',
  ].join('\n');
}
