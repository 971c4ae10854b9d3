// Tensors derived from weights only (transposed or per-block weights, the implicit filters' kernel spectra at a
// length), kept between forward passes in inference and rebuilt when a weight changes. Under a gradient tape
// (tf.grad, tf.variableGrads, model.fit) nothing is cached, so gradients reach the weights as before.
import type { Tensor } from '@tensorflow/tfjs-core';
import * as tf from '@tensorflow/tfjs-core';

interface Entry {
  /** The weights the tensors came from, and their data ids when cached (Variable.assign swaps the data id). */
  sources: Tensor[];
  dataIds: object[];
  tag: string;
  backend: string;
  tensors: Tensor[];
}

const entries = new Map<object, Map<string, Entry>>();

/** True inside tf.grad / tf.variableGrads (and so model.fit / optimizer.minimize). */
export function recordingGradients(): boolean {
  return (tf.engine().state as unknown as { gradientDepth: number }).gradientDepth > 0;
}

function dataIdOf(t: Tensor): object {
  return (t as unknown as { dataId: object }).dataId;
}

function sweep(): void {
  for (const [owner, byKey] of entries) {
    for (const [key, entry] of byKey) {
      if (entry.sources.some((s) => s.isDisposed) || entry.tensors.some((t) => t.isDisposed)) {
        tf.dispose(entry.tensors.filter((t) => !t.isDisposed));
        byKey.delete(key);
      }
    }
    if (byKey.size === 0) entries.delete(owner);
  }
}

/**
 * Returns `make()`'s tensors, computed once per (owner, key) and reused while the `sources` weights keep their values
 * (same data ids), the `tag` (e.g. the sequence length) and the backend are unchanged. One entry per (owner, key):
 * a new tag replaces the old tensors. Under a gradient tape, `make()` runs every time and nothing is kept.
 *
 * @param owner - The layer the tensors belong to.
 * @param key - Which derived tensors.
 * @param sources - The weights they are computed from.
 * @param tag - Anything else they depend on.
 * @param make - Computes them (from `sources` only).
 * @returns The tensors; owned by the cache in inference (do not dispose them), by the caller's tidy under a tape.
 */
export function derivedTensors<T extends Tensor[]>(owner: object, key: string, sources: Tensor[], tag: string, make: () => T): T {
  if (recordingGradients()) return make();
  const backend = tf.getBackend();
  let byKey = entries.get(owner);
  const hit = byKey?.get(key);
  if (
    hit !== undefined &&
    hit.tag === tag &&
    hit.backend === backend &&
    hit.sources.length === sources.length &&
    hit.sources.every((s, i) => s === sources[i] && dataIdOf(s) === hit.dataIds[i] && !s.isDisposed) &&
    hit.tensors.every((t) => !t.isDisposed)
  ) {
    return hit.tensors as T;
  }
  if (hit !== undefined) {
    tf.dispose(hit.tensors.filter((t) => !t.isDisposed));
    byKey!.delete(key);
  }
  sweep();
  const tensors = tf.tidy(() => make());
  tensors.forEach((t) => tf.keep(t));
  if (byKey === undefined || !entries.has(owner)) {
    byKey = new Map();
    entries.set(owner, byKey);
  }
  byKey.set(key, { sources: [...sources], dataIds: sources.map(dataIdOf), tag, backend, tensors });
  return tensors;
}

/**
 * Frees every cached derived tensor (of one owner, or all). Entries whose weights were disposed are also freed on
 * the next cache miss.
 *
 * @param owner - Only this layer's entries. Default: all.
 * @example
 * clearInferenceCache();
 */
export function clearInferenceCache(owner?: object): void {
  const owners = owner === undefined ? [...entries.keys()] : [owner];
  for (const o of owners) {
    for (const entry of entries.get(o)?.values() ?? []) tf.dispose(entry.tensors.filter((t) => !t.isDisposed));
    entries.delete(o);
  }
}
