// The wasm backend's heap is a 32-bit address space (at most 4 GiB). When it is full, emscripten's malloc returns 0
// and tfjs-backend-wasm does not check: it registers the new tensor at address 0 and copies the tensor's values
// there, over the heap's own bookkeeping; the process then dies later with "memory access out of bounds" in an
// unrelated dispose, or computes garbage. This guard turns a failed allocation into a one-line BackendError before
// anything is written. It also counts the bytes allocated and not yet freed, and their high-water mark, which the
// bench reads as a run's true peak memory.
import * as tf from '@tensorflow/tfjs-core';
import { BackendError } from '../errors.js';

/** The part of tfjs-backend-wasm's BackendWasm the guard wraps. */
export interface WasmAllocatingBackend {
  /** Allocates a tensor's memory (through `wasm._malloc`) and registers it. */
  move(dataId: object, values: unknown, shape: number[], dtype: tf.DataType, refCount: number): void;
  /** The emscripten module. */
  wasm: { _malloc(bytes: number): number; _free(pointer: number): void };
}

/** Where a full heap leaves the user: its limit and what to do. */
const HEAP_LIMIT_HINT = 'the wasm heap is a 32-bit address space of at most 4 GiB. Use shorter sequences or smaller batches, or the webgpu/tensorflow backend.';

/**
 * Thrown by the wrapped malloc: a one-line BackendError naming the size and the heap's limit (kernel scratch and
 * tables let it through); the wrapped `move` re-words it to name the tensor.
 */
export class HeapFull extends BackendError {
  /** @param bytes - The allocation that failed. */
  constructor(readonly bytes: number) {
    super(`wasm backend out of memory: no room for ${(bytes / 2 ** 20).toFixed(1)} MiB (malloc(${bytes}) failed); ${HEAP_LIMIT_HINT}`, { parameter: 'bytes', value: bytes });
    this.name = 'HeapFull';
  }
}

/** Bytes a guarded backend holds through malloc (tensor data and kernel scratch): now, and the most since a reset. */
export interface WasmHeapUsage {
  /** Allocated and not yet freed. */
  liveBytes: number;
  /** The most that was live at once since the guard was installed or {@link resetWasmHeapPeak} was called. */
  peakBytes: number;
}

/** Per guarded backend: the size of every live allocation by pointer, and the running totals. */
const usage = new WeakMap<object, WasmHeapUsage & { sizes: Map<number, number> }>();

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
  if (!backend || usage.has(backend)) return false;
  const module = backend.wasm;
  module._free(module._malloc(8)); // emscripten's export stubs replace themselves with the raw exports on their first call
  const malloc = module._malloc.bind(module);
  const free = module._free.bind(module);
  const state = { liveBytes: 0, peakBytes: 0, sizes: new Map<number, number>() };
  module._malloc = (bytes: number) => {
    const pointer = malloc(bytes);
    if (pointer === 0 && bytes > 0) throw new HeapFull(bytes);
    const unsigned = pointer >>> 0; // an int32 from emscripten: pointers past 2 GiB would read negative (tfjs applies >>> 0 too)
    state.sizes.set(unsigned, bytes);
    state.liveBytes += bytes;
    state.peakBytes = Math.max(state.peakBytes, state.liveBytes);
    return unsigned;
  };
  module._free = (pointer: number) => {
    const bytes = state.sizes.get(pointer >>> 0);
    if (bytes !== undefined) { // allocations from before the guard are not counted
      state.sizes.delete(pointer >>> 0);
      state.liveBytes -= bytes;
    }
    free(pointer);
  };
  const move = backend.move.bind(backend);
  backend.move = (dataId, values, shape, dtype, refCount) => {
    try {
      move(dataId, values, shape, dtype, refCount);
    } catch (error) {
      if (!(error instanceof HeapFull)) throw error;
      throw new BackendError(
        `wasm backend out of memory: no room for a ${dtype} tensor of shape [${shape.join(', ')}] (${(error.bytes / 2 ** 20).toFixed(1)} MiB); ${HEAP_LIMIT_HINT}`,
        { parameter: 'shape', value: shape },
      );
    }
  };
  usage.set(backend, state);
  return true;
}

/**
 * What a guarded wasm backend holds on its heap through malloc (tensor data and kernel scratch), counted by the
 * guard at every allocation and free.
 *
 * @param backend - The wasm backend (default: the registered `wasm` backend).
 * @returns `{ liveBytes, peakBytes }`, or undefined when {@link guardWasmAllocations} did not guard it.
 * @example
 * resetWasmHeapPeak(); run(); wasmHeapUsage()?.peakBytes; // → the most bytes live at once during run()
 */
export function wasmHeapUsage(backend: object | null = tf.findBackend('wasm')): WasmHeapUsage | undefined {
  const state = backend === null ? undefined : usage.get(backend);
  return state === undefined ? undefined : { liveBytes: state.liveBytes, peakBytes: state.peakBytes };
}

/**
 * Starts a new high-water mark for {@link wasmHeapUsage}: the peak becomes what is live now.
 *
 * @param backend - The wasm backend (default: the registered `wasm` backend).
 * @example
 * resetWasmHeapPeak();
 */
export function resetWasmHeapPeak(backend: object | null = tf.findBackend('wasm')): void {
  const state = backend === null ? undefined : usage.get(backend);
  if (state !== undefined) state.peakBytes = state.liveBytes;
}
