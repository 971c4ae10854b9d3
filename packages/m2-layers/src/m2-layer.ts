// The common base of every M2 layer: weights named after the original PyTorch checkpoint keys, child layers
// whose weights belong to the parent (so a tfjs model saves and loads them), and `namedWeights()`.
import type { Tensor, Variable } from '@tensorflow/tfjs-core';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type { LayerVariable } from '@tensorflow/tfjs-layers';
import { ConfigError, recomputed, ShapeError, webGpuLayerNorm } from '@monarch-mixer/monarch-core';
import { clearInferenceCache, recordingGradients } from './inference-cache.js';

/** The shape of a layer input as tfjs-layers passes it to `build` (null = unknown). */
export type LayerShape = (number | null)[];

/** Initial value of a weight: a ready tensor (disposed by the layer) or a tfjs initializer. */
/** How a weight is first filled: a function returning its initial tensor, or a tfjs-layers initializer. */
export type InitialValue = (() => Tensor) | ReturnType<typeof tfl.initializers.zeros>;

/**
 * Base class of the M2 layers.
 *
 * Weights are created through {@link M2Layer.addOriginalWeight} under their original checkpoint key (for example
 * `in_linear.weight`), so `namedWeights()` maps every original key suffix to its variable and mapping a PyTorch
 * checkpoint is a lookup. Child layers (a mixer's filters, an MLP's block-diagonal linears) are built by the parent
 * with {@link M2Layer.buildChild}: their weights are prefixed with the child's role (`filter_fn.bias`) and are listed
 * in the parent's `trainableWeights` / `nonTrainableWeights`, so `model.save` / `loadLayersModel` and optimizers
 * see them without the children being model layers.
 */
export abstract class M2Layer extends tfl.layers.Layer {
  private weightKeyPrefix = '';
  private readonly ownWeights = new Map<string, LayerVariable>();
  private readonly aliases = new Map<string, string>();
  private readonly childLayers = new Map<string, M2Layer>();
  private readonly blockLayoutKeys = new Set<string>();
  private readonly buildOrder: (string | { role: string; child: M2Layer })[] = [];

  /**
   * Every weight under its original checkpoint key, children included (`filter_fn.implicit_filter.0.weight`).
   * A tensor shared under several keys (the Hyena filter's `freq`) appears under each key, as one variable.
   * Layouts are PyTorch's except block-diagonal weights, which are `[numBlocks, blockIn, blockOut]`.
   */
  namedWeights(): Map<string, LayerVariable> {
    const named = new Map<string, LayerVariable>();
    for (const entry of this.buildOrder) {
      if (typeof entry === 'string') {
        named.set(entry, this.ownWeights.get(entry) ?? this.ownWeights.get(this.aliases.get(entry)!)!);
      } else {
        for (const [key, variable] of entry.child.namedWeights()) named.set(`${entry.role}.${key}`, variable);
      }
    }
    return named;
  }

  /**
   * `forward(x)` with gradient checkpointing (monarch-core `recomputed` over this layer's weights): under a gradient
   * tape only x is kept and the backward pass runs `forward` again; outside a tape it is `forward(x)`. `forward` must
   * read no trainable weights but this layer's, and draw dropout through `replayableDropout`.
   *
   * Shapes: x → forward(x).
   */
  recomputed<T extends Tensor>(x: T, forward: (x: T) => T): T {
    return recomputed(forward, x, [...this.namedWeights().values()].map((v) => v.read() as Variable));
  }

  /**
   * The keys of {@link M2Layer.namedWeights} stored as blocks [numBlocks, blockIn, blockOut], where PyTorch stores
   * (block, out, in); every other weight has PyTorch's layout.
   */
  blockWeightKeys(): Set<string> {
    const keys = new Set(this.blockLayoutKeys);
    for (const [role, child] of this.childLayers) {
      for (const key of child.blockWeightKeys()) keys.add(`${role}.${key}`);
    }
    return keys;
  }

  override get trainableWeights(): LayerVariable[] {
    const own = super.trainableWeights;
    if (!this.trainable || this.childLayers === undefined) return own;
    return own.concat(...[...this.childLayers.values()].map((child) => child.trainableWeights));
  }

  override set trainableWeights(weights: LayerVariable[]) {
    super.trainableWeights = weights;
  }

  override get nonTrainableWeights(): LayerVariable[] {
    const own = super.nonTrainableWeights;
    if (this.childLayers === undefined) return own;
    const children = [...this.childLayers.values()];
    return own.concat(
      ...children.map((child) => (this.trainable ? child.nonTrainableWeights : child.weights)),
    );
  }

  override set nonTrainableWeights(weights: LayerVariable[]) {
    super.nonTrainableWeights = weights;
  }

  /**
   * Frees the weights (children's included) and their cached inference tensors once the last user lets go. Unlike the
   * tfjs base, a layer built with `build()` rather than a first `apply()` can be disposed too.
   */
  override dispose(): ReturnType<tfl.layers.Layer['dispose']> {
    const self = this as unknown as { _refCount: number | null };
    if (this.built && self._refCount === null) self._refCount = 1;
    const result = super.dispose();
    if (result.refCountAfterDispose === 0) this.forEachLayer((layer) => clearInferenceCache(layer));
    return result;
  }

  /** Calls `visit` on this layer and every descendant. */
  private forEachLayer(visit: (layer: M2Layer) => void): void {
    visit(this);
    for (const child of this.childLayers.values()) child.forEachLayer(visit);
  }

  /**
   * Creates a weight named after its original checkpoint key.
   * @param key - The key relative to this layer, e.g. `in_linear.weight`.
   * @param shape - Its shape (PyTorch layout unless documented otherwise).
   * @param initialValue - A function returning the initial tensor (disposed here), or a tfjs initializer.
   * @param trainable - False for buffers (`pos_emb.t`, `modulation.deltas`): saved and loaded, never trained.
   */
  protected addOriginalWeight(key: string, shape: number[], initialValue: InitialValue, trainable = true): LayerVariable {
    const initializer =
      typeof initialValue === 'function' ? tfl.initializers.zeros() : initialValue;
    const variable = this.addWeight(this.weightKeyPrefix + key, shape, 'float32', initializer, undefined, trainable);
    if (typeof initialValue === 'function') {
      const value = tf.tidy(initialValue);
      variable.write(value);
      value.dispose();
    }
    this.ownWeights.set(key, variable);
    this.buildOrder.push(key);
    return variable;
  }

  /** Marks `key` as a block-diagonal weight in [numBlocks, blockIn, blockOut] layout (see blockWeightKeys). */
  protected markBlockLayout(key: string): void {
    this.blockLayoutKeys.add(key);
  }

  /** Lists `key`'s variable also under `alias` in {@link M2Layer.namedWeights} (shared tensors). */
  protected addWeightAlias(alias: string, key: string): void {
    this.aliases.set(alias, key);
    this.buildOrder.push(alias);
  }

  /**
   * Builds a child layer whose weights belong to this layer, under the key prefix `role.`.
   * @param role - The child's original module name (`filter_fn`, `mlp`, `gated_layers`).
   * @param child - The child layer (not built yet).
   * @param inputShape - The child's input shape.
   */
  protected buildChild<T extends M2Layer>(role: string, child: T, inputShape: LayerShape): T {
    child.weightKeyPrefix = `${this.weightKeyPrefix}${role}.`;
    child.build(inputShape);
    child.built = true;
    this.childLayers.set(role, child);
    this.buildOrder.push({ role, child });
    return child;
  }

  /** The one input tensor of `call` (tfjs passes a tensor or a one-element list). */
  protected singleInput(inputs: Tensor | Tensor[]): Tensor {
    const list = Array.isArray(inputs) ? inputs : [inputs];
    if (list.length !== 1) {
      throw new ShapeError(`${this.getClassName()} '${this.name}': expected exactly one input tensor, got ${list.length}.`);
    }
    return list[0]!;
  }

  /**
   * `computeOutputShape` of a layer that maps [B, L, modelDim] to the same shape: checks the (first) input shape
   * with {@link M2Layer.checkSequenceInput} and returns it.
   */
  protected sequenceOutputShape(inputShape: LayerShape | LayerShape[], modelDim: number, maxLength?: number): LayerShape {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as LayerShape;
    this.checkSequenceInput({ shape }, modelDim, maxLength);
    return shape;
  }

  /** Throws a one-line ShapeError unless `x` is [B, L, modelDim] with L ≤ maxLength (when given). */
  protected checkSequenceInput(x: { shape: readonly (number | null)[] }, modelDim: number, maxLength?: number): void {
    const who = `${this.getClassName()} '${this.name}'`;
    if (x.shape.length !== 3) {
      throw new ShapeError(`${who}: input must be [batch, length, ${modelDim}], got shape [${x.shape.join(', ')}].`, {
        parameter: 'input',
        value: x.shape,
      });
    }
    const [, length, dim] = x.shape;
    if (dim !== null && dim !== modelDim) {
      throw new ShapeError(`${who}: input last dim must be modelDim ${modelDim}, got ${dim}.`, { parameter: 'input', value: x.shape });
    }
    if (maxLength !== undefined && length !== null && length > maxLength) {
      throw new ShapeError(
        `${who}: input length ${length} is longer than maxLength ${maxLength}; truncate the input or build the layer with a larger maxLength.`,
        { parameter: 'input', value: x.shape },
      );
    }
  }

  /** Throws if the layer has no weights yet. */
  protected assertBuilt(what: string): void {
    if (!this.built) {
      throw new ShapeError(`${this.getClassName()} '${this.name}': ${what} needs a built layer; apply it to an input first.`);
    }
  }
}

/** Reads a weight's current value (a tf.Variable, usable in gradients). */
export function read(variable: LayerVariable): Tensor {
  return variable.read();
}

/** `x · Wᵀ + b` for a PyTorch `nn.Linear` weight W [out, in]. Shapes: x [..., in] → [..., out]. */
export function linear(x: Tensor, weight: Tensor, bias?: Tensor): Tensor {
  return tf.tidy(() => {
    const inDim = x.shape[x.shape.length - 1]!;
    const lead = x.shape.slice(0, -1);
    const outDim = weight.shape[0]!;
    // Transposing the small weight once beats matMul(transposeB) on wasm, which leaves the fast path.
    let y = tf.matMul(tf.reshape(x, [-1, inDim]), tf.transpose(weight)); // [N, out]
    if (bias) y = tf.add(y, bias);
    return tf.reshape(y, [...lead, outDim]);
  });
}

/**
 * LayerNorm over the last axis: (x − mean) / √(var + eps) · weight + bias. Pure tensor math, shared by the
 * blocks here and by the m2-gpt / m2-vision models and their attention baselines.
 *
 * Shapes: x [..., d], weight/bias [d] → [..., d].
 * @example
 * layerNorm(tf.tensor2d([[1, 3]]), tf.ones([2]), tf.zeros([2]), 1e-5); // → ≈ [[-1, 1]]
 */
export function layerNorm(x: Tensor, weight: Tensor, bias: Tensor, eps: number): Tensor {
  const fused = webGpuLayerNorm(x, weight, bias, eps, recordingGradients()); // webgpu inference: one WGSL dispatch
  if (fused !== undefined) return fused;
  return tf.tidy(() => {
    const { mean, variance } = tf.moments(x, -1, true);
    return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps))), weight), bias);
  });
}

/**
 * Exact GELU, 0.5·x·(1 + erf(x/√2)), built from Erf (no backend has a Gelu kernel).
 *
 * Shapes: any → same.
 * @example
 * geluExact(tf.tensor1d([0, 1])); // → ≈ [0, 0.8413]
 */
export function geluExact(x: Tensor): Tensor {
  return tf.tidy(() => tf.mul(tf.mul(x, 0.5), tf.add(1, tf.erf(tf.mul(x, Math.SQRT1_2)))));
}

/**
 * Initial values of an `nn.Linear` weight [out, in] and bias: PyTorch's module default U(±1/√in) for both, or, with
 * `initializerRange`, HuggingFace `post_init`'s N(0, initializerRange) weight and zero bias (m2-architecture.md §2.11).
 */
export function linearInit(
  out: number,
  inFeatures: number,
  initializerRange: number | undefined,
): { weight: () => Tensor; bias: () => Tensor } {
  if (initializerRange === undefined) {
    const bound = 1 / Math.sqrt(inFeatures);
    return { weight: uniform([out, inFeatures], bound), bias: uniform([out], bound) };
  }
  return { weight: () => tf.randomNormal([out, inFeatures], 0, initializerRange), bias: () => tf.zeros([out]) };
}

/** Reads an optional positive number from a config (null and undefined mean absent). */
export function optionalPositive(who: string, parameter: string, value: unknown): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !(value > 0)) {
    throw new ConfigError(`${who}: ${parameter} must be a positive number, got ${JSON.stringify(value)}.`, { parameter, value });
  }
  return value;
}

/** U(−bound, bound) initial values. */
export function uniform(shape: number[], bound: number): () => Tensor {
  return () => tf.randomUniform(shape, -bound, bound);
}
