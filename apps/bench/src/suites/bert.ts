// `m2 bench bert`: forward throughput (tokens/s) of M2-BERT-base (the 80M configuration: d 768, I 3072) against two
// attention BERT-bases of the same width, depth, vocabulary and MLM head on the same backend: the fastest
// attention we can write there ('fast': per-head 2-D matMuls, chunked queries) and HuggingFace-eager batched
// attention with the materialised [B, heads, L, L] softmax ('eager', the paper's baseline). Encoder + MLM head at
// every position, as the original benchmark_fwd.py times it.
import * as tf from '@tensorflow/tfjs-core';
import { BackendError, releaseWebGpuBufferPool, withWebGpuErrors } from '@monarch-mixer/monarch-core';
import { M2Bert } from '@monarch-mixer/m2-bert';
import { geluExact, layerNorm } from '@monarch-mixer/m2-layers';
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
  /** Models that could not run at this L, with the reason (webgpu: a tensor over the 2 GiB binding limit), else null. */
  failures?: string | null;
  /** How the MLM head ran when its [B·L, V] logits exceed WebGPU's binding limit (row chunks), else null. */
  head_note?: string | null;
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
  /** Time both attention baselines only up to this L (longer rows time M2 alone). Default: no limit. */
  attentionMaxLength?: number;
  /**
   * Skip eager attention when its [B, 12, L, L] scores exceed this many bytes. Default 4 GiB; 1 GiB on wasm, whose
   * 32-bit heap (≤ 4 GiB in all) holds two score-sized tensors at a time during the eager softmax (scores and their
   * scaled copy, then those and the probabilities) next to both models' weights: L = 4096 (0.75 GiB) fits, 8192
   * (3 GiB) cannot. A run that still fills the heap fails with a one-line error (monarch-core's allocation guard).
   */
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
  const { lengths, layers, batch, head: headKind = 'mlm', repeats: timedRuns = 3, slowLimitMs = 120_000, log = () => {} } = options;
  const withHead = headKind === 'mlm';
  const backend = tf.getBackend();
  const eagerScoreLimitBytes = options.eagerScoreLimitBytes ?? (backend === 'wasm' ? 2 ** 30 : 4 * 2 ** 30);
  const rows: BertRow[] = [];
  let attentionTooSlow = false;
  let eagerTooSlow = false;
  const gpu = webGpuDevice();
  // webgpu: tfjs submits its command buffer every WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE dispatches (default 15);
  // M2_WEBGPU_SUBMIT_BATCH sets another batch (a forward of M2-BERT-base issues thousands of dispatches).
  const submitBatch = Number(process.env.M2_WEBGPU_SUBMIT_BATCH ?? Number.NaN);
  if (gpu !== undefined && Number.isInteger(submitBatch) && submitBatch > 0) {
    tf.env().set('WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE', submitBatch);
    log(`webgpu: WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE = ${submitBatch}`);
  }
  let eagerFailedAt: string | undefined;
  for (const length of lengths) {
    // Token ids as plain arrays: M2Bert checks array ids without reading a tensor back (no dataSync on Node's WebGPU).
    const idRows = randomIds(batch, length, 30000, length);
    const ids = tf.tensor2d(idRows, [batch, length], 'int32');
    const tokens = batch * length;
    // On webgpu and wasm every model first runs once under the failure checks below: that run is the warm-up.
    const repeats = { warmup: gpu !== undefined || backend === 'wasm' ? 0 : 1, repeats: timedRuns, budgetMs: slowLimitMs };
    // On webgpu one [B·L, V] logits tensor over the 2 GiB storage-binding limit cannot be bound: both models then run
    // encoder-only and the same MLM head in row chunks (same FLOPs). Elsewhere the models' own heads run.
    const chunkHead = withHead && gpu !== undefined && 4 * batch * length * BASE.vocabSize > gpu.limits.maxStorageBufferBindingSize;
    const head = chunkHead ? new ChunkedMlmHead(gpu!.limits.maxStorageBufferBindingSize) : undefined;

    // Both models stay resident and their runs alternate (M2, attention, eager, M2, …): load swings on a shared
    // machine then hit all of them alike. Peak bytes therefore include both models' weights.
    const m2 = new M2Bert({ preset: 'm2-bert-80M-2k', maxPositionEmbeddings: length, longConvLMax: length, numLayers: layers, hiddenDropout: 0, head: withHead && !chunkHead ? 'masked-lm' : 'none' });
    const shape = { vocabSize: BASE.vocabSize, hiddenSize: BASE.modelDim, numLayers: layers, numHeads: BASE.numHeads, intermediateSize: BASE.intermediateDim, maxLength: length };
    const attention = new AttentionBertBaseline(shape, 1);
    // On webgpu a run synchronises on one element of its result (ops run in order): reading GBs of logits back would
    // dominate the time. Elsewhere the whole result is read back, as before.
    const sync = (t: tf.Tensor): tf.Tensor => {
      if (gpu === undefined) return t;
      const probe = tf.tidy(() => tf.slice(tf.reshape(t, [-1]), [0], [1]));
      t.dispose();
      return probe;
    };
    const candidates: Array<{ label: string; key: 'm2' | 'fast' | 'eager'; largestBytes: number; run: () => tf.Tensor | tf.Tensor[] }> = [
      {
        label: `M2-BERT L=${length}`,
        key: 'm2',
        largestBytes: withHead && !chunkHead ? 4 * batch * length * BASE.vocabSize : 0,
        run: () => {
          const out = m2.forward({ inputIds: idRows });
          const keep = withHead && !chunkHead ? out.logits! : out.lastHiddenState;
          tf.dispose([out.lastHiddenState, out.poolerOutput ?? [], out.logits ?? []].flat().filter((t) => t !== keep));
          return sync(head ? head.apply(keep) : keep);
        },
      },
    ];
    const attentionRun = (mode: 'fast' | 'eager') => () => {
      const out = attention.forward(ids, mode, withHead && !chunkHead);
      return sync(head ? head.apply(out) : out);
    };
    const scoreBytes = 4 * batch * BASE.numHeads * length * length;
    const withAttention = length <= (options.attentionMaxLength ?? Infinity);
    if (!attentionTooSlow && withAttention) candidates.push({ label: `attention L=${length}`, key: 'fast', largestBytes: 0, run: attentionRun('fast') });
    const eagerWanted = withAttention && !eagerTooSlow && length <= (options.eagerMaxLength ?? Infinity);
    const eagerFits = gpu !== undefined || scoreBytes <= eagerScoreLimitBytes; // webgpu: tried under an error scope below
    const runEager = eagerWanted && eagerFits;
    if (runEager && eagerFailedAt === undefined) candidates.push({ label: `eager attention L=${length}`, key: 'eager', largestBytes: scoreBytes, run: attentionRun('eager') });
    // webgpu: a model with a tensor over the binding limit runs once under an error scope first; if WebGPU rejects it
    // (the error would otherwise only be printed, with garbage results), it is recorded as failed and not timed.
    const failures: string[] = [];
    if (eagerWanted && !eagerFits) {
      failures.push(`eager attention not run: its [${batch}, ${BASE.numHeads}, ${length}, ${length}] scores (${(scoreBytes / 2 ** 30).toFixed(2)} GiB) exceed the ${(eagerScoreLimitBytes / 2 ** 30).toFixed(2)} GiB this backend's heap allows`);
    }
    if (runEager && eagerFailedAt !== undefined) {
      failures.push(`eager attention not run: its [${batch}, ${BASE.numHeads}, ${length}, ${length}] scores (${(scoreBytes / 2 ** 30).toFixed(1)} GiB) are larger than at ${eagerFailedAt}, where it failed`);
    }
    const runnable: typeof candidates = [];
    for (const candidate of candidates) {
      // Every model runs once under the error scopes on webgpu (a silently failed run would time garbage).
      const error = gpu !== undefined ? await webGpuFailure(candidate.run) : backend === 'wasm' ? heapFailure(candidate.run) : undefined;
      if (error === undefined) runnable.push(candidate);
      else {
        const what = candidate.key === 'eager' ? `[${batch}, ${BASE.numHeads}, ${length}, ${length}] scores` : `[${batch * length}, ${BASE.vocabSize}] logits`;
        const tooLarge = gpu !== undefined && candidate.largestBytes > gpu.limits.maxStorageBufferBindingSize;
        failures.push(`${candidate.label.split(' L=')[0]} fails${tooLarge ? `: ${what} = ${(candidate.largestBytes / 2 ** 30).toFixed(1)} GiB > maxStorageBufferBindingSize ${(gpu!.limits.maxStorageBufferBindingSize / 2 ** 30).toFixed(1)} GiB` : ''} (${error})`);
        log(`L=${length}: ${failures[failures.length - 1]}`);
        if (candidate.key === 'eager' && tooLarge) eagerFailedAt = `L=${length}`;
        // A failed run's buffers (invalid ones included) went back to tfjs-webgpu's pool: drop them, or the next
        // model would be handed the invalid buffers and fail as well.
        if (gpu !== undefined) await releaseWebGpuBufferPool();
      }
    }
    const timed = await timeInterleaved(runnable, repeats);
    const timingOf = (key: 'm2' | 'fast' | 'eager') => {
      const index = runnable.findIndex((c) => c.key === key);
      return index < 0 ? undefined : timed[index];
    };
    m2.dispose();
    head?.dispose();
    const m2Time = timingOf('m2');
    if (m2Time === undefined) {
      attention.dispose();
      ids.dispose();
      if (gpu !== undefined) await releaseWebGpuBufferPool();
      rows.push({
        backend, L: length, batch, layers, head: headKind, m2_tokens_per_s: Number.NaN, attention_tokens_per_s: null, attention_eager_tokens_per_s: null,
        m2_flops: m2BertForwardFlops(batch, length, layers, withHead), m2_gflops: Number.NaN, m2_peak_bytes: Number.NaN,
        attention_gflops: null, attention_peak_bytes: null, failures: failures.join('; '), head_note: null,
      });
      continue;
    }
    log(`L=${length}: M2 ${(tokens / m2Time.medianMs * 1000).toFixed(0)} tokens/s`);
    let fast: number | null = null;
    const fastTiming = timingOf('fast') ?? null;
    if (fastTiming !== null) {
      fast = (tokens / fastTiming.medianMs) * 1000;
      attentionTooSlow = fastTiming.medianMs > slowLimitMs;
      log(`L=${length}: attention (fast) ${fast.toFixed(0)} tokens/s`);
    }
    let eager: number | null = null;
    const eagerTiming = timingOf('eager');
    if (eagerTiming !== undefined) {
      const t = eagerTiming;
      eager = (tokens / t.medianMs) * 1000;
      eagerTooSlow = t.medianMs > slowLimitMs;
      log(`L=${length}: attention (eager) ${eager.toFixed(0)} tokens/s`);
    }
    attention.dispose();
    ids.dispose();
    if (gpu !== undefined) await releaseWebGpuBufferPool();
    const flops = m2BertForwardFlops(batch, length, layers, withHead);
    rows.push({
      backend, L: length, batch, layers, head: headKind,
      m2_tokens_per_s: (tokens / m2Time.medianMs) * 1000,
      attention_tokens_per_s: fast,
      attention_eager_tokens_per_s: eager,
      m2_flops: flops,
      m2_gflops: flops / m2Time.medianMs / 1e6,
      m2_peak_bytes: m2Time.peakBytes,
      attention_gflops: fastTiming === null ? null : attentionBertFlops(shape, batch, length, withHead) / fastTiming.medianMs / 1e6,
      attention_peak_bytes: fastTiming?.peakBytes ?? null,
      failures: failures.length > 0 ? failures.join('; ') : null,
      head_note: head ? `MLM head in row chunks of ${head.rowsPerChunk(BASE.vocabSize)} ([B·L, V] logits over the binding limit)` : null,
    });
  }
  return rows;
}

export { attentionBertFlops };

/** Seeded token ids in [0, vocab) as [batch][length] plain arrays (a 32-bit LCG: the same ids on every backend). */
function randomIds(batch: number, length: number, vocab: number, seed: number): number[][] {
  let s = (seed * 2654435761) >>> 0;
  return Array.from({ length: batch }, () => Array.from({ length }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return Math.floor((s / 2 ** 32) * vocab);
  }));
}

/** The webgpu backend's GPUDevice when webgpu is active, else undefined. */
function webGpuDevice(): GPUDevice | undefined {
  return tf.getBackend() === 'webgpu' ? (tf.backend() as unknown as { device: GPUDevice }).device : undefined;
}

/**
 * Runs a model once on wasm: the message of the BackendError it throws when the 4 GiB heap is full (monarch-core's
 * allocation guard), else undefined. Any other error propagates.
 */
function heapFailure(run: () => tf.Tensor | tf.Tensor[]): string | undefined {
  try {
    tf.dispose(run());
    return undefined;
  } catch (error) {
    if (error instanceof BackendError) return error.message;
    throw error;
  }
}

/** Runs a model once under WebGPU's error scopes (monarch-core `withWebGpuErrors`): its one-line error, else undefined. */
async function webGpuFailure(run: () => tf.Tensor | tf.Tensor[]): Promise<string | undefined> {
  const { error } = await withWebGpuErrors(async () => {
    const out = run();
    const outs = Array.isArray(out) ? out : [out];
    await Promise.all(outs.map((t) => t.data()));
    tf.dispose(outs);
  });
  return error;
}

/**
 * The MLM head of both models (LayerNorm(GELU(h·Wt + bt))·Wwordᵀ + b), applied in row chunks whose [rows, V] logits
 * stay under WebGPU's storage-binding limit. Each chunk's logits are reduced to one element and disposed, so the
 * full logits are computed but never held at once. Shapes: h [B, L, d] → [chunks] (one value per chunk).
 */
class ChunkedMlmHead {
  private readonly dense = tf.mul(tf.randomNormal([BASE.modelDim, BASE.modelDim], 0, 1, 'float32', 1), 0.02) as tf.Tensor2D;
  private readonly denseBias = tf.zeros([BASE.modelDim]);
  private readonly lnGamma = tf.ones([BASE.modelDim]);
  private readonly lnBeta = tf.zeros([BASE.modelDim]);
  private readonly bias = tf.zeros([BASE.vocabSize]);
  // The decoder (tied to the word embeddings in both models): one random [d, V] table here, the same FLOPs.
  private readonly wordsT = tf.mul(tf.randomNormal([BASE.modelDim, BASE.vocabSize], 0, 1, 'float32', 2), 0.02) as tf.Tensor2D;

  constructor(private readonly limitBytes: number) {}

  /** Rows per chunk: the largest power of two whose [rows, vocab] float32 logits fit the limit. */
  rowsPerChunk(vocab: number): number {
    return 2 ** Math.floor(Math.log2(this.limitBytes / (4 * vocab)));
  }

  apply(h: tf.Tensor): tf.Tensor {
    const out = tf.tidy(() => {
      const rows = h.size / BASE.modelDim;
      const h2 = tf.reshape(h, [rows, BASE.modelDim]); // [B·L, d]
      const chunk = this.rowsPerChunk(BASE.vocabSize);
      const parts: tf.Tensor[] = [];
      for (let start = 0; start < rows; start += chunk) {
        const x = tf.slice(h2, [start, 0], [Math.min(chunk, rows - start), BASE.modelDim]); // [chunk, d]
        const t = layerNorm(geluExact(tf.add(tf.matMul(x, this.dense), this.denseBias)), this.lnGamma, this.lnBeta, 1e-12);
        const logits = tf.add(tf.matMul(t, this.wordsT), this.bias); // [chunk, V]
        parts.push(tf.slice(tf.reshape(logits, [-1]), [0], [1]));
        logits.dispose();
      }
      return tf.concat(parts);
    });
    h.dispose();
    return out;
  }

  dispose(): void {
    tf.dispose([this.dense, this.denseBias, this.lnGamma, this.lnBeta, this.bias, this.wordsT]);
  }
}

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
    costExponent(rows.filter((r) => r[column] !== null && Number.isFinite(r[column])).map((r) => [r.L, (r.batch * r.L) / r[column]!])); // failed rows (NaN) left out
  const text = (e: number | null) => (e === null ? '–' : e.toFixed(2));
  const ratio = (a: number, b: number | null) => (b === null || !Number.isFinite(a) ? '–' : `${(a / b).toFixed(2)}×`);
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
