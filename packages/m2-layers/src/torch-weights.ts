// Moving weights between an M2 layer and a PyTorch-layout state dict, by original key.
import type { Tensor } from '@tensorflow/tfjs-core';
import * as tf from '@tensorflow/tfjs-core';
import type { LayerVariable } from '@tensorflow/tfjs-layers';
import { ShapeError } from '@monarch-mixer/monarch-core';
import type { M2Layer } from './m2-layer.js';

/** What {@link loadTorchWeights} did. */
export interface LoadTorchWeightsResult {
  /** Keys that were found and written. */
  loaded: string[];
  /** Keys of the layer that the lookup did not have (aliases of a loaded shared tensor are not listed). */
  missing: string[];
}

/**
 * Writes PyTorch-layout tensors into a built layer by original key: block-diagonal weights are transposed from
 * (block, out, in) to [block, in, out], everything else is taken as is. A tensor shared under several keys (the
 * filters' `freq`) is written once. Missing keys are reported, not filled: a layer's buffers (`pos_emb.t`,
 * `modulation.deltas`) already hold their recomputed values, which is the loader rule for checkpoints that lack them.
 *
 * Shapes: each tensor must have the checkpoint shape of its key (for example `in_linear.weight` [3d, d]).
 * @param layer - A built M2 layer.
 * @param lookup - Returns the PyTorch tensor for a key relative to the layer, or undefined. The caller owns it.
 * @returns The loaded and missing keys.
 * @throws ShapeError naming every key whose tensor has the wrong shape.
 * @example
 * const { missing } = loadTorchWeights(layer, (key) => stateDict.get(`bert.encoder.layer.0.${key}`));
 */
export function loadTorchWeights(layer: M2Layer, lookup: (key: string) => Tensor | undefined): LoadTorchWeightsResult {
  if (!layer.built) throw new ShapeError(`loadTorchWeights: layer '${layer.name}' is not built; apply it to an input first.`);
  const blockKeys = layer.blockWeightKeys();
  const written = new Set<LayerVariable>();
  const loaded: string[] = [];
  const pending: { key: string; variable: LayerVariable; value: Tensor }[] = [];
  const wrong: string[] = [];
  const absent: { key: string; variable: LayerVariable }[] = [];
  for (const [key, variable] of layer.namedWeights()) {
    const value = lookup(key);
    if (value === undefined) {
      absent.push({ key, variable });
      continue;
    }
    const shape = variable.shape as number[];
    const expected = blockKeys.has(key) ? [shape[0]!, shape[2]!, shape[1]!] : shape;
    if (!tf.util.arraysEqual(expected, value.shape)) {
      wrong.push(`${key} expected [${expected.join(', ')}] got [${value.shape.join(', ')}]`);
      continue;
    }
    pending.push({ key, variable, value });
  }
  if (wrong.length > 0) throw new ShapeError(`loadTorchWeights '${layer.name}': wrong shapes: ${wrong.join('; ')}.`);
  for (const { key, variable, value } of pending) {
    loaded.push(key);
    if (written.has(variable)) continue;
    tf.tidy(() => {
      variable.write(tf.cast(blockKeys.has(key) ? tf.transpose(value, [0, 2, 1]) : value, 'float32'));
    });
    written.add(variable);
  }
  return { loaded, missing: absent.filter(({ variable }) => !written.has(variable)).map(({ key }) => key) };
}

/**
 * The layer's weights as a PyTorch-layout state dict (new tensors the caller disposes): block weights transposed
 * back to (block, out, in), shared tensors repeated under every key as separate copies (as safetensors needs).
 *
 * Shapes: each tensor has its key's PyTorch checkpoint shape.
 * @param layer - A built M2 layer.
 * @example
 * const state = torchWeights(block); // Map { 'norm1.weight' => Tensor, ... }
 */
export function torchWeights(layer: M2Layer): Map<string, Tensor> {
  const blockKeys = layer.blockWeightKeys();
  const out = new Map<string, Tensor>();
  for (const [key, variable] of layer.namedWeights()) {
    out.set(key, tf.tidy(() => (blockKeys.has(key) ? tf.transpose(variable.read(), [0, 2, 1]) : tf.clone(variable.read()))));
  }
  return out;
}
