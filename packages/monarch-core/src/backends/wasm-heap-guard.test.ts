import { describe, expect, it } from 'vitest';
import { BackendError } from '../errors.js';
import { guardWasmAllocations, resetWasmHeapPeak, wasmHeapUsage } from './wasm-heap-guard.js';
import type { WasmAllocatingBackend } from './wasm-heap-guard.js';

/**
 * A stand-in for BackendWasm: a heap of `capacity` bytes whose malloc returns 0 when full (as emscripten's does),
 * and a `move` that, like tfjs-backend-wasm's, allocates and then writes the values at the returned address.
 */
function fakeBackend(capacity: number) {
  let used = 8;
  const writes: number[] = [];
  const backend: WasmAllocatingBackend = {
    wasm: {
      _malloc: (bytes) => {
        if (used + bytes > capacity) return 0;
        used += bytes;
        return used - bytes;
      },
      _free: () => {},
    },
    move(_dataId, values, shape) {
      const pointer = this.wasm._malloc(shape.reduce((a, b) => a * b, 1) * 4);
      if (values != null) writes.push(pointer);
    },
  };
  return { backend, writes };
}

describe('guardWasmAllocations', () => {
  it('turns a failed heap allocation into a one-line BackendError before anything is written', () => {
    const { backend, writes } = fakeBackend(2 ** 20);
    expect(guardWasmAllocations(backend)).toBe(true);
    expect(guardWasmAllocations(backend)).toBe(false); // idempotent
    backend.move({}, new Float32Array(4), [2, 2], 'float32', 1);
    expect(writes).toHaveLength(1);
    let error: unknown;
    try {
      backend.move({}, new Float32Array(1), [12, 4096, 4096], 'float32', 1);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(BackendError);
    expect((error as Error).message).toMatch(/^wasm backend out of memory: no room for a float32 tensor of shape \[12, 4096, 4096\] \(768\.0 MiB\)/);
    expect((error as Error).message).not.toContain('\n');
    expect(writes).toHaveLength(1); // nothing was written at address 0
  });

  it('counts live bytes and their high-water mark through every malloc and free, resettable', () => {
    const { backend } = fakeBackend(2 ** 20);
    expect(wasmHeapUsage(backend)).toBeUndefined(); // not guarded yet
    guardWasmAllocations(backend);
    const a = backend.wasm._malloc(400);
    const b = backend.wasm._malloc(100);
    expect(wasmHeapUsage(backend)).toEqual({ liveBytes: 500, peakBytes: 500 });
    backend.wasm._free(a);
    backend.wasm._free(12345); // not allocated through the guard: ignored
    expect(wasmHeapUsage(backend)).toEqual({ liveBytes: 100, peakBytes: 500 });
    resetWasmHeapPeak(backend);
    expect(wasmHeapUsage(backend)).toEqual({ liveBytes: 100, peakBytes: 100 });
    backend.move({}, null, [10, 5], 'float32', 1); // 200 bytes
    backend.wasm._free(b);
    expect(wasmHeapUsage(backend)).toEqual({ liveBytes: 200, peakBytes: 300 });
  });

  it('fails a raw allocation (kernel scratch, tables) with a one-line BackendError naming the size and the limit', () => {
    const { backend } = fakeBackend(2 ** 20);
    guardWasmAllocations(backend);
    let error: unknown;
    try {
      backend.wasm._malloc(3 * 2 ** 20);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(BackendError);
    expect((error as Error).message).toMatch(/^wasm backend out of memory: no room for 3\.0 MiB .*at most 4 GiB/);
    expect((error as Error).message).not.toContain('\n');
  });

  it('leaves empty allocations alone', () => {
    const { backend } = fakeBackend(8);
    guardWasmAllocations(backend);
    expect(() => backend.move({}, null, [0, 3], 'float32', 1)).not.toThrow();
  });
});
