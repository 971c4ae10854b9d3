// The wasm kernels of this package with tensors above 2 GiB of the heap: emscripten's malloc then returns pointers
// that are negative as int32 (M2-BERT-base training on wasm fills more than 2 GiB; the Transpose kernel once threw
// "RangeError: Start offset -2135909856 is outside the bounds of the buffer" there). Its own file: a fresh heap.
import * as tf from '@tensorflow/tfjs-core';
import type { TensorInfo } from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setupBackend } from './setup-backend.js';

const previous = tf.getBackend();
beforeAll(async () => {
  await setupBackend('wasm', { threads: 1 });
});
afterAll(async () => {
  await tf.setBackend(previous);
});

interface Allocating {
  makeOutput(shape: number[], dtype: 'float32'): TensorInfo;
  disposeData(dataId: object, force?: boolean): boolean;
}

describe('wasm kernels above 2 GiB of heap', () => {
  it('transpose (with its scratch block) copies correctly past the signed 32-bit pointer range', () => {
    const backend = tf.backend() as unknown as Allocating;
    // 2.1 GB reserved without writing it: later allocations land above 2^31 bytes.
    const filler = backend.makeOutput([540_000_000], 'float32');
    try {
      const shape = [3, 70, 37]; // tiled: 3 planes, rows and columns past one tile
      const n = shape[0]! * shape[1]! * shape[2]!;
      const values = Float32Array.from({ length: n }, (_, i) => (i * 7919) % 1013);
      const x = tf.tensor3d(values, shape as [number, number, number]);
      const y = tf.transpose(x, [0, 2, 1]);
      const got = y.dataSync();
      let mismatches = 0;
      for (let a = 0; a < shape[0]!; a++)
        for (let b = 0; b < shape[1]!; b++)
          for (let c = 0; c < shape[2]!; c++)
            if (got[(a * shape[2]! + c) * shape[1]! + b] !== values[(a * shape[1]! + b) * shape[2]! + c]) mismatches++;
      expect(mismatches).toBe(0);
      tf.dispose([x, y]);
    } finally {
      backend.disposeData(filler.dataId, true);
    }
  });
});
