// `m2 bench monarch`: block-diagonal and order-2 Monarch products at M2 shapes against a dense matMul of the
// same input/output shape, and the backend's best dense matMul GFLOP/s measured in the same run (all interleaved).
// Every timed run reads back ONE element of its product (which still waits for asynchronous backends to finish):
// reading a whole [2048, 6144] product out of threaded wasm's shared heap costs 250–330 ms on the 2-core VM, more
// than the product itself, and would rank products by output size rather than speed. On wasm the products also run
// with the SIMD kernels switched off (M2_WASM_MONARCH_KERNEL=0: per-block XNNPACK matMuls), interleaved, for a
// paired before/after.
import * as tf from '@tensorflow/tfjs-core';
import { blockDiagMatmul, clearMonarchCache, monarchMatmul } from '@monarch-mixer/monarch-core';
import { BlockdiagLinear } from '@monarch-mixer/m2-layers';
import { timeInterleaved } from '../harness.js';

/** One row of the `monarch` suite. */
export interface MonarchRow {
  backend: string;
  op: string;
  shape: string;
  /** Useful FLOPs per call (2 per multiply-add of the structured product). */
  flops: number;
  ms: number;
  gflops: number;
  /** The same input → output map as one dense matMul. */
  dense_same_shape_gflops: number;
  /** The backend's best dense matMul GFLOP/s in this run. */
  best_dense_gflops: number;
  /** gflops / best_dense_gflops. */
  fraction_of_best_dense: number;
}

const gflops = (flops: number, ms: number) => flops / ms / 1e6;

type Candidate = { label: string; run: () => tf.Tensor | tf.Tensor[] };

/** The first element of `make()`'s product (the product is computed whole, then freed). */
const firstElement = (make: () => tf.Tensor) => () => tf.tidy(() => tf.slice(tf.reshape(make(), [-1]), [0], [1]));

/** `make` with the wasm SIMD block/Monarch kernels switched off (the per-block matMul path). */
const kernelOff = (make: () => tf.Tensor) => () => {
  const before = process.env.M2_WASM_MONARCH_KERNEL;
  process.env.M2_WASM_MONARCH_KERNEL = '0';
  try {
    return make();
  } finally {
    if (before === undefined) delete process.env.M2_WASM_MONARCH_KERNEL;
    else process.env.M2_WASM_MONARCH_KERNEL = before;
  }
};

/**
 * Runs the suite at `tokens` rows of activations (B·L). Every product and every dense matMul it is compared with runs
 * INTERLEAVED in one timing loop (run 1 of each, run 2 of each, …), so load swings on a shared machine hit them alike.
 */
export async function runMonarchSuite(options: { tokens: number; modelDim: number; repeats?: number }): Promise<MonarchRow[]> {
  const backend = tf.getBackend();
  const { tokens, modelDim: d, repeats = 5 } = options;
  const held: tf.Tensor[] = [];
  const disposers: Array<() => void> = [];
  const candidates: Candidate[] = [];
  let seed = 1;
  const normal = (shape: number[]) => {
    const t = tf.randomNormal(shape, 0, 1, 'float32', seed++);
    held.push(t);
    return t;
  };
  /** Adds a dense [rows, k] × [k, n] matMul; returns its index and FLOPs. */
  const dense = (rows: number, k: number, n: number) => {
    const a = normal([rows, k]) as tf.Tensor2D;
    const b = normal([k, n]) as tf.Tensor2D;
    candidates.push({ label: `dense ${rows}x${k}x${n}`, run: firstElement(() => tf.matMul(a, b)) });
    return { index: candidates.length - 1, flops: 2 * rows * k * n };
  };
  const bestDense = [dense(1024, 1024, 1024), dense(tokens, d, d), dense(tokens, d, 4 * d)];
  const structured: Array<{ op: string; shape: string; flops: number; index: number; dense: { index: number; flops: number } }> = [];
  /** Adds a structured product (and on wasm the same with the SIMD kernels off). */
  const product = (op: string, shape: string, flops: number, same: { index: number; flops: number }, make: () => tf.Tensor) => {
    candidates.push({ label: op, run: firstElement(make) });
    structured.push({ op, shape, flops, index: candidates.length - 1, dense: same });
    if (backend !== 'wasm') return;
    candidates.push({ label: `${op} kernel off`, run: firstElement(kernelOff(make)) });
    structured.push({ op: `${op} [M2_WASM_MONARCH_KERNEL=0]`, shape, flops, index: candidates.length - 1, dense: same });
  };
  const blockCases = [
    { op: 'blockdiag (GLU in: d → 2I, 4 blocks)', inDim: d, outDim: 8 * d, blocks: 4 },
    { op: 'blockdiag (GLU out: I → d, 4 blocks)', inDim: 4 * d, outDim: d, blocks: 4 },
  ];
  for (const c of blockCases) {
    const x = normal([tokens, c.inDim]);
    const w = normal([c.blocks, c.inDim / c.blocks, c.outDim / c.blocks]) as tf.Tensor3D;
    const flops = (2 * tokens * c.inDim * c.outDim) / c.blocks;
    const shape = `[${tokens}, ${c.inDim}] → [${tokens}, ${c.outDim}]`;
    const same = dense(tokens, c.inDim, c.outDim);
    product(c.op, shape, flops, same, () => blockDiagMatmul(x, w));
    // Weights split once into 2-D blocks (what the issue asks for on wasm: per-block 2-D matMuls, no per-call split).
    const blocks = tf.unstack(w) as tf.Tensor2D[];
    held.push(...blocks);
    product(c.op.replace('blockdiag', 'blockdiag, pre-split blocks'), shape, flops, same, () => blockDiagMatmul(x, blocks));
    // The library's layer path: BlockdiagLinear keeps its weight blocks split (and packed) between inference calls.
    const layer = new BlockdiagLinear({ inFeatures: c.inDim, outFeatures: c.outDim, numBlocks: c.blocks, useBias: false });
    layer.build([null, c.inDim]);
    disposers.push(() => layer.dispose());
    candidates.push({ label: `${c.op} layer`, run: firstElement(() => layer.forward(x)) });
    structured.push({ op: c.op.replace('blockdiag', 'BlockdiagLinear layer'), shape, flops, index: candidates.length - 1, dense: same });
  }
  for (const m of [32, 64]) {
    const n = m * m;
    const x = normal([tokens, n]);
    const w1 = normal([m, m, m]) as tf.Tensor3D;
    const w2 = normal([m, m, m]) as tf.Tensor3D;
    const op = `Monarch order 2 (n = ${n}, ${m} blocks of ${m}×${m})`;
    const same = dense(tokens, n, n);
    product(op, `[${tokens}, ${n}] → [${tokens}, ${n}]`, 2 * 2 * tokens * n * m, same, () => monarchMatmul(x, w1, w2));
  }
  const timings = await timeInterleaved(candidates, { warmup: 1, repeats });
  clearMonarchCache();
  disposers.forEach((f) => f());
  tf.dispose(held);
  const rate = (c: { index: number; flops: number }) => gflops(c.flops, timings[c.index]!.medianMs);
  const best = Math.max(...bestDense.map(rate));
  return structured.map((s) => row(backend, s.op, s.shape, s.flops, timings[s.index]!.medianMs, rate(s.dense), best));
}

function row(backend: string, op: string, shape: string, flops: number, ms: number, denseSame: number, best: number): MonarchRow {
  const g = gflops(flops, ms);
  return { backend, op, shape, flops, ms, gflops: g, dense_same_shape_gflops: denseSame, best_dense_gflops: best, fraction_of_best_dense: g / best };
}
