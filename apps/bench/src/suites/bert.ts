// `m2 bench bert`: forward throughput (tokens/s) of M2-BERT-base (the 80M configuration: d 768, I 3072) against two
// attention BERT-bases of the same width, depth, vocabulary and MLM head on the same backend: the fastest
// attention we can write there ('fast': per-head 2-D matMuls, chunked queries) and HuggingFace-eager batched
// attention with the materialised [B, heads, L, L] softmax ('eager', the paper's baseline). Encoder + MLM head at
// every position, as the original benchmark_fwd.py times it.
import * as tf from '@tensorflow/tfjs-core';
import { M2Bert } from '@monarch-mixer/m2-bert';
import { AttentionBertBaseline, attentionBertFlops } from '../baselines/attention-bert.js';
import { timeIt } from '../harness.js';

/** One row of the `bert` suite. */
export interface BertRow {
  backend: string;
  L: number;
  batch: number;
  layers: number;
  m2_tokens_per_s: number;
  attention_tokens_per_s: number | null;
  attention_eager_tokens_per_s: number | null;
  /** Useful FLOPs of one M2 forward (see {@link m2BertForwardFlops}). */
  m2_flops: number;
  m2_gflops: number;
  m2_peak_bytes: number;
}

/** Options of {@link runBertSuite}. */
export interface BertSuiteOptions {
  lengths: number[];
  layers: number;
  batch: number;
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
export function m2BertForwardFlops(batch: number, length: number, layers: number): number {
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
  return layers * perLayer + head;
}

/** Runs the suite: for each L, M2 then fast attention then eager attention, in one process. */
export async function runBertSuite(options: BertSuiteOptions): Promise<BertRow[]> {
  const { lengths, layers, batch, eagerScoreLimitBytes = 4 * 2 ** 30, slowLimitMs = 120_000, log = () => {} } = options;
  const backend = tf.getBackend();
  const rows: BertRow[] = [];
  let attentionTooSlow = false;
  let eagerTooSlow = false;
  for (const length of lengths) {
    const ids = tf.tidy(() => tf.cast(tf.floor(tf.mul(tf.randomUniform([batch, length], 0, 1, 'float32', length), 30000)), 'int32')) as tf.Tensor2D;
    const tokens = batch * length;
    const repeats = { warmup: 1, repeats: 3, budgetMs: slowLimitMs };

    const m2 = new M2Bert({ preset: 'm2-bert-80M-2k', maxPositionEmbeddings: length, longConvLMax: length, numLayers: layers, hiddenDropout: 0 });
    const m2Time = await timeIt(`M2-BERT L=${length}`, () => {
      const out = m2.forward({ inputIds: ids });
      const keep = out.logits!;
      tf.dispose([out.lastHiddenState, out.poolerOutput ?? []].flat());
      return keep;
    }, repeats);
    m2.dispose();
    log(`L=${length}: M2 ${(tokens / m2Time.medianMs * 1000).toFixed(0)} tokens/s`);

    const shape = { vocabSize: BASE.vocabSize, hiddenSize: BASE.modelDim, numLayers: layers, numHeads: BASE.numHeads, intermediateSize: BASE.intermediateDim, maxLength: length };
    const attention = new AttentionBertBaseline(shape, 1);
    let fast: number | null = null;
    if (!attentionTooSlow) {
      const t = await timeIt(`attention L=${length}`, () => attention.forward(ids, 'fast'), repeats);
      fast = (tokens / t.medianMs) * 1000;
      attentionTooSlow = t.medianMs > slowLimitMs;
      log(`L=${length}: attention (fast) ${fast.toFixed(0)} tokens/s`);
    }
    let eager: number | null = null;
    const scoreBytes = 4 * batch * BASE.numHeads * length * length;
    if (!eagerTooSlow && scoreBytes <= eagerScoreLimitBytes) {
      const t = await timeIt(`eager attention L=${length}`, () => attention.forward(ids, 'eager'), repeats);
      eager = (tokens / t.medianMs) * 1000;
      eagerTooSlow = t.medianMs > slowLimitMs;
      log(`L=${length}: attention (eager) ${eager.toFixed(0)} tokens/s`);
    }
    attention.dispose();
    ids.dispose();
    const flops = m2BertForwardFlops(batch, length, layers);
    rows.push({
      backend, L: length, batch, layers,
      m2_tokens_per_s: (tokens / m2Time.medianMs) * 1000,
      attention_tokens_per_s: fast,
      attention_eager_tokens_per_s: eager,
      m2_flops: flops,
      m2_gflops: flops / m2Time.medianMs / 1e6,
      m2_peak_bytes: m2Time.peakBytes,
    });
  }
  return rows;
}

export { attentionBertFlops };
