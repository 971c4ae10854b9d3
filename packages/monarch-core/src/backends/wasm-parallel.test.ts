// The helper-thread loops (wasm-parallel.ts) on a shared WebAssembly.Memory, against plain references: the GELU gate
// and erf against the float64 formulas, the tiled transpose against a naive index map; split over a real helper
// thread, also after the memory grew (helpers must see the new buffer).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHelperPool, PARALLEL_KERNELS, parallelLoops } from './wasm-parallel.js';
import type { ParallelPool } from './wasm-parallel.js';
import { erf64 } from '../testing.js';

describe('wasm helper-thread loops', () => {
  let memory: WebAssembly.Memory;
  let pool: ParallelPool;
  beforeAll(async () => {
    memory = new WebAssembly.Memory({ initial: 64, maximum: 256, shared: true }); // 4 MiB, growable
    pool = await createHelperPool(memory, 2);
  });
  afterAll(async () => {
    await pool.close();
  });

  it('GELU gate and erf split over a helper equal the float64 formulas (also after the memory grew)', () => {
    for (const grow of [false, true]) {
      if (grow) memory.grow(64);
      const count = 200_000; // above the parallel threshold
      const base = grow ? 1_200_000 : 0; // floats; past the old end after growing
      const heap = new Float32Array(memory.buffer);
      for (let i = 0; i < count; i++) {
        heap[base + i] = Math.sin(i) * 4; // gate
        heap[base + count + i] = Math.cos(i); // value
      }
      pool.run(PARALLEL_KERNELS.geluGate, [base, base + count, base + 2 * count], count, count);
      pool.run(PARALLEL_KERNELS.erf, [base, base + 3 * count], count, count);
      const after = new Float32Array(memory.buffer);
      let gelu = 0;
      let erf = 0;
      for (let i = 0; i < count; i += 97) {
        const x = Math.fround(Math.sin(i) * 4);
        const e = erf64(x);
        gelu = Math.max(gelu, Math.abs(after[base + 2 * count + i]! - 0.5 * x * (1 + erf64(x / Math.SQRT2)) * Math.fround(Math.cos(i))));
        erf = Math.max(erf, Math.abs(after[base + 3 * count + i]! - e));
      }
      expect(gelu).toBeLessThan(2e-6);
      expect(erf).toBeLessThan(5e-7);
    }
  });

  it('the tiled transpose over (plane, row tile) units equals the naive transpose', () => {
    // x [planes = 3, cols = 70, rows = 1000] → out [3, rows, cols]: out[p, r, c] = x[p, c, r].
    const [planes, cols, rows] = [3, 70, 1000];
    const size = planes * cols * rows;
    const src = 0;
    const dst = size;
    const heap = new Float32Array(memory.buffer);
    for (let i = 0; i < size; i++) heap[src + i] = i;
    const tile = 32;
    const rowTiles = Math.ceil(rows / tile);
    const bases = Array.from({ length: planes }, (_, p) => [p * cols * rows, p * rows * cols]).flat();
    pool.run(PARALLEL_KERNELS.transpose, [src, dst, rows, cols, cols, rows, tile, rowTiles, 0, ...bases], planes * rowTiles, size);
    const out = new Float32Array(memory.buffer);
    let wrong = 0;
    for (let p = 0; p < planes; p++) for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) {
      if (out[dst + (p * rows + r) * cols + c] !== p * cols * rows + c * rows + r) wrong++;
    }
    expect(wrong).toBe(0);
  });

  it('the fused twiddle-and-transpose (WebAssembly, split over a helper) equals the index formula, forward and inverse', () => {
    const [O, A, B, R] = [5, 6, 70, 8]; // units O·B = 350; work 2·O·A·B·R above the helper threshold
    const size = O * A * B * R;
    const heap = new Float32Array(memory.buffer);
    const [xr, xi, tr, ti, yr, yi] = [0, 1, 2, 3, 4, 5].map((i) => i * size);
    for (let i = 0; i < size; i++) {
      heap[xr + i] = Math.sin(i);
      heap[xi + i] = Math.cos(3 * i);
    }
    for (let i = 0; i < A * B * R; i++) {
      heap[tr + i] = Math.cos(0.01 * i);
      heap[ti + i] = -Math.sin(0.01 * i);
    }
    for (const inverse of [0, 1]) {
      pool.run(PARALLEL_KERNELS.twiddleTranspose, [xr, xi, tr, ti, yr, yi, A, B, R, inverse], O * B, 2 * size);
      const h = new Float32Array(memory.buffer);
      let err = 0;
      for (let o = 0; o < O; o++) for (let a = 0; a < A; a++) for (let b = 0; b < B; b++) for (let k = 0; k < R; k++) {
        const near = ((o * A + a) * B + b) * R + k; // [O, A, B, R]
        const far = ((o * R + k) * B + b) * A + a; // [O, R, B, A]
        const t = (a * B + b) * R + k;
        const [from, to] = inverse ? [far, near] : [near, far];
        const [re, im, c, s] = [h[xr + from]!, h[xi + from]!, h[tr + t]!, inverse ? -h[ti + t]! : h[ti + t]!];
        err = Math.max(err, Math.abs(h[yr + to]! - (re * c - im * s)), Math.abs(h[yi + to]! - (re * s + im * c)));
      }
      expect(err).toBeLessThan(1e-6);
    }
  });

  it('the same loops run on the calling thread alone (no helpers)', () => {
    const heap = new Float32Array(8);
    heap.set([0.5, -1, 2, 0, 1, 1, 1, 1]);
    parallelLoops[PARALLEL_KERNELS.geluGate]!(heap, [0, 4, 4], 0, 4); // in place over the values
    expect(heap[4]).toBeCloseTo(0.5 * 0.5 * (1 + erf64(0.5 / Math.SQRT2)), 6);
    expect(heap[5]).toBeCloseTo(-0.5 * (1 + erf64(-1 / Math.SQRT2)), 6);
    expect(heap[7]).toBe(0);
  });
});
