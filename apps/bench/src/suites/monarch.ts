// `m2 bench monarch`: block-diagonal and order-2 Monarch products at M2 shapes against a dense matMul of the
// same input/output shape, and the backend's best dense matMul GFLOP/s measured in the same run.
import * as tf from '@tensorflow/tfjs-core';
import { blockDiagMatmul, monarchMatmul } from '@monarch-mixer/monarch-core';
import { BlockdiagLinear } from '@monarch-mixer/m2-layers';
import { timeIt } from '../harness.js';

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

/** Times a dense [rows, k] × [k, n] matMul. */
async function denseGflops(rows: number, k: number, n: number, seed: number): Promise<{ ms: number; gflops: number }> {
  const a = tf.randomNormal([rows, k], 0, 1, 'float32', seed);
  const b = tf.randomNormal([k, n], 0, 1, 'float32', seed + 1);
  const t = await timeIt(`dense ${rows}x${k}x${n}`, () => tf.matMul(a, b));
  tf.dispose([a, b]);
  return { ms: t.medianMs, gflops: gflops(2 * rows * k * n, t.medianMs) };
}

/** Runs the suite at `tokens` rows of activations (B·L). */
export async function runMonarchSuite(options: { tokens: number; modelDim: number }): Promise<MonarchRow[]> {
  const backend = tf.getBackend();
  const { tokens, modelDim: d } = options;
  const best = Math.max(
    (await denseGflops(1024, 1024, 1024, 1)).gflops,
    (await denseGflops(tokens, d, d, 3)).gflops,
    (await denseGflops(tokens, d, 4 * d, 5)).gflops,
  );
  const rows: MonarchRow[] = [];
  const blockCases = [
    { op: 'blockdiag (GLU in: d → 2I, 4 blocks)', inDim: d, outDim: 8 * d, blocks: 4 },
    { op: 'blockdiag (GLU out: I → d, 4 blocks)', inDim: 4 * d, outDim: d, blocks: 4 },
  ];
  let seed = 10;
  for (const c of blockCases) {
    const x = tf.randomNormal([tokens, c.inDim], 0, 1, 'float32', seed++);
    const w = tf.randomNormal([c.blocks, c.inDim / c.blocks, c.outDim / c.blocks], 0, 1, 'float32', seed++) as tf.Tensor3D;
    const flops = (2 * tokens * c.inDim * c.outDim) / c.blocks;
    const t = await timeIt(c.op, () => blockDiagMatmul(x, w));
    const dense = await denseGflops(tokens, c.inDim, c.outDim, seed++);
    const shape = `[${tokens}, ${c.inDim}] → [${tokens}, ${c.outDim}]`;
    rows.push(row(backend, c.op, shape, flops, t.medianMs, dense.gflops, best));
    // Weights split once into 2-D blocks (what the issue asks for on wasm: per-block 2-D matMuls, no per-call split).
    const blocks = tf.unstack(w) as tf.Tensor2D[];
    const ts = await timeIt(`${c.op} pre-split`, () => blockDiagMatmul(x, blocks));
    rows.push(row(backend, c.op.replace('blockdiag', 'blockdiag, pre-split blocks'), shape, flops, ts.medianMs, dense.gflops, best));
    tf.dispose(blocks);
    // The library's layer path: BlockdiagLinear keeps its weight blocks split (and packed) between inference calls.
    const layer = new BlockdiagLinear({ inFeatures: c.inDim, outFeatures: c.outDim, numBlocks: c.blocks, useBias: false });
    layer.build([null, c.inDim]);
    const tl = await timeIt(`${c.op} layer`, () => layer.forward(x));
    rows.push(row(backend, c.op.replace('blockdiag', 'BlockdiagLinear layer'), shape, flops, tl.medianMs, dense.gflops, best));
    layer.dispose();
    tf.dispose([x, w]);
  }
  for (const m of [32, 64]) {
    const n = m * m;
    const x = tf.randomNormal([tokens, n], 0, 1, 'float32', seed++);
    const w1 = tf.randomNormal([m, m, m], 0, 1, 'float32', seed++) as tf.Tensor3D;
    const w2 = tf.randomNormal([m, m, m], 0, 1, 'float32', seed++) as tf.Tensor3D;
    const flops = 2 * 2 * tokens * n * m;
    const op = `Monarch order 2 (n = ${n}, ${m} blocks of ${m}×${m})`;
    const t = await timeIt(op, () => monarchMatmul(x, w1, w2));
    const dense = await denseGflops(tokens, n, n, seed++);
    rows.push(row(backend, op, `[${tokens}, ${n}] → [${tokens}, ${n}]`, flops, t.medianMs, dense.gflops, best));
    tf.dispose([x, w1, w2]);
  }
  return rows;
}

function row(backend: string, op: string, shape: string, flops: number, ms: number, denseSame: number, best: number): MonarchRow {
  const g = gflops(flops, ms);
  return { backend, op, shape, flops, ms, gflops: g, dense_same_shape_gflops: denseSame, best_dense_gflops: best, fraction_of_best_dense: g / best };
}
