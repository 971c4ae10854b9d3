// The wasm backend's heap is a 32-bit address space (at most 4 GiB). When it is full, emscripten's malloc returns 0
// and tfjs-backend-wasm does not check: it registers the new tensor at address 0 and copies the tensor's values
// there, over the heap's own bookkeeping; the process then dies later with "memory access out of bounds" in an
// unrelated dispose, or computes garbage. This guard turns a failed allocation into a one-line BackendError before
// anything is written.
import * as tf from '@tensorflow/tfjs-core';
import { BackendError } from '../errors.js';

/** The part of tfjs-backend-wasm's BackendWasm the guard wraps. */
export interface WasmAllocatingBackend {
  /** Allocates a tensor's memory (through `wasm._malloc`) and registers it. */
  move(dataId: object, values: unknown, shape: number[], dtype: tf.DataType, refCount: number): void;
  /** The emscripten module. */
  wasm: { _malloc(bytes: number): number; _free(pointer: number): void };
}

/** Thrown by the wrapped malloc; turned into a BackendError naming the tensor by the wrapped `move`. */
export class HeapFull extends Error {
  constructor(readonly bytes: number) {
    super(`malloc(${bytes}) failed`);
  }
}

const guarded = new WeakSet<object>();

/**
 * Makes every tensor allocation of a wasm backend fail with a one-line {@link BackendError} when the heap is full,
 * instead of silently corrupting the heap. Idempotent.
 *
 * @param backend - The wasm backend (default: the registered `wasm` backend).
 * @returns Whether the guard was installed by this call.
 * @example
 * guardWasmAllocations(); // → true the first time after the wasm backend is set up
 */
export function guardWasmAllocations(backend = tf.findBackend('wasm') as unknown as WasmAllocatingBackend | null): boolean {
  if (!backend || guarded.has(backend)) return false;
  const module = backend.wasm;
  module._free(module._malloc(8)); // emscripten's export stub replaces itself with the raw export on its first call
  const malloc = module._malloc.bind(module);
  module._malloc = (bytes: number) => {
    const pointer = malloc(bytes);
    if (pointer === 0 && bytes > 0) throw new HeapFull(bytes);
    return pointer >>> 0; // an int32 from emscripten: pointers past 2 GiB would read negative (tfjs applies >>> 0 too)
  };
  const move = backend.move.bind(backend);
  backend.move = (dataId, values, shape, dtype, refCount) => {
    try {
      move(dataId, values, shape, dtype, refCount);
    } catch (error) {
      if (!(error instanceof HeapFull)) throw error;
      throw new BackendError(
        `wasm backend out of memory: no room for a ${dtype} tensor of shape [${shape.join(', ')}] (${(error.bytes / 2 ** 20).toFixed(1)} MiB); ` +
          'the wasm heap is a 32-bit address space of at most 4 GiB. Use shorter sequences or smaller batches, or the webgpu/tensorflow backend.',
        { parameter: 'shape', value: shape },
      );
    }
  };
  guarded.add(backend);
  return true;
}
