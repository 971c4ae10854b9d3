// An attention GPT baseline of the same shape as an M2-GPT, for the quality comparison of issue 4 (the paper's
// claim: M2-GPT matches a Transformer of the same size). GPT-2 layout: token + learned position embeddings →
// N × pre-LN blocks (causal softmax attention, then a dense GELU MLP, each with its residual) → final LN →
// tied LM head. Weight names follow HuggingFace GPT-2 (`h.{i}.attn.c_attn.weight`, [in, out] layout).
//
// Shape legend: B batch · L sequence · d model dim · H heads · dh = d/H · m MLP width · V vocabulary.
import * as tf from '@tensorflow/tfjs-core';
import { ConfigError } from '@monarch-mixer/monarch-core';
import { InvalidArgumentError } from '@monarch-mixer/monarch-core';
import type { CausalLanguageModel, IncrementalDecoder } from './generate.js';
import { countM2GptParameters } from './m2-gpt-config.js';
import type { M2GptConfig } from './m2-gpt-config.js';
import { geluExact as gelu, layerNorm } from '@monarch-mixer/m2-layers';
import { embeddingLookup, nextTokenLossFromHidden, seededNormal, takeValues, takeValuesAsync, tiedHead, uniqueVariableName, variableFrom, lastPositionLogits } from './nn.js';
import { SeededRandom } from './sampling.js';
import { checkIds } from './checks.js';
import { loadCheckpoint, saveCheckpoint } from './checkpoint.js';

/** Configuration of a {@link BaselineGpt}. */
export interface BaselineGptConfig {
  /** Vocabulary size V. */
  readonly vocabSize: number;
  /** Maximum sequence length L (learned positions). */
  readonly maxLength: number;
  /** Model width d. */
  readonly modelDim: number;
  /** Number of transformer blocks. */
  readonly numLayers: number;
  /** Attention heads H (d must be divisible by H). */
  readonly numHeads: number;
  /** Width m of the dense MLP (GPT-2 uses 4d). */
  readonly mlpDim: number;
  /** LayerNorm epsilon. */
  readonly layerNormEps: number;
  /** Std of the N(0, σ) initialisation. */
  readonly initializerRange: number;
}

/**
 * Parameters of a baseline GPT: V·d + L·d + N·(12d² + 13d − 8d² + 2dm + m … ) — spelled out in the code below.
 * @example
 * countBaselineGptParameters({ vocabSize: 50257, maxLength: 1024, modelDim: 768, numLayers: 12, numHeads: 12,
 *   mlpDim: 3072, layerNormEps: 1e-5, initializerRange: 0.02 }); // → 124,439,808 (GPT-2 small)
 */
export function countBaselineGptParameters(config: BaselineGptConfig): number {
  const { vocabSize: V, maxLength: L, modelDim: d, numLayers: n, mlpDim: m } = config;
  const attention = d * 3 * d + 3 * d + d * d + d;
  const mlp = d * m + m + m * d + d;
  const block = 2 * d + attention + 2 * d + mlp;
  return V * d + L * d + n * block + 2 * d;
}

/**
 * The attention baseline with the same V, L, d and depth as an M2-GPT, and the MLP width chosen so that the
 * parameter counts match (to within one MLP unit per layer). Heads of 64 dims (GPT-2), or 32 when d < 128.
 *
 * @param m2 - A resolved M2-GPT config.
 * @returns The baseline config; compare `countBaselineGptParameters` with `countM2GptParameters(m2).total`.
 * @throws ConfigError when the attention alone already has more parameters than the M2 model.
 * @example
 * baselineGptConfigFor(resolveM2GptConfig({ preset: 'tiny' })).mlpDim; // → 212
 */
export function baselineGptConfigFor(m2: M2GptConfig): BaselineGptConfig {
  const d = m2.modelDim;
  const headDim = d >= 128 && d % 64 === 0 ? 64 : d % 32 === 0 ? 32 : d;
  const base = { vocabSize: m2.vocabSize, maxLength: m2.maxLength, modelDim: d, numLayers: m2.numLayers,
    numHeads: d / headDim, layerNormEps: m2.layerNormEps, initializerRange: m2.initializerRange };
  const target = countM2GptParameters(m2).total;
  const withoutMlp = countBaselineGptParameters({ ...base, mlpDim: 0 });
  const perUnit = (countBaselineGptParameters({ ...base, mlpDim: 1 }) - withoutMlp) / m2.numLayers; // 2d + 1
  const mlpDim = Math.round((target - withoutMlp) / m2.numLayers / perUnit);
  if (mlpDim < 1) {
    throw new ConfigError(`baselineGptConfigFor: attention alone (${withoutMlp}) exceeds the M2 model's ${target} parameters.`);
  }
  return Object.freeze({ ...base, mlpDim });
}

/**
 * A GPT-2-style causal transformer (softmax attention + dense GELU MLP, pre-LN, tied head).
 * Weights are plain `tf.Variable`s named like HuggingFace GPT-2, initialised from a seeded PRNG.
 *
 * @example
 * const model = new BaselineGpt(baselineGptConfigFor(resolveM2GptConfig({ preset: 'tiny' })), { seed: 0 });
 * const { logits, loss } = model.forward(ids, { computeLoss: true });
 */
export class BaselineGpt implements CausalLanguageModel {
  /** The configuration. */
  readonly config: BaselineGptConfig;
  /** All weights by name. */
  readonly weights: Map<string, tf.Variable>;

  /**
   * @param config - A {@link BaselineGptConfig} (see {@link baselineGptConfigFor}).
   * @param options - `seed` of the initialisation (default 0).
   * @throws ConfigError if d is not divisible by the number of heads.
   */
  constructor(config: BaselineGptConfig, options: { seed?: number } = {}) {
    if (config.modelDim % config.numHeads !== 0) {
      throw new ConfigError(`BaselineGptConfig.modelDim (${config.modelDim}) must be divisible by numHeads (${config.numHeads}).`);
    }
    this.config = Object.freeze({ ...config });
    const rng = new SeededRandom(options.seed ?? 0);
    const { vocabSize: V, maxLength: L, modelDim: d, mlpDim: m, initializerRange: std } = config;
    const projStd = std / Math.sqrt(2 * config.numLayers); // GPT-2's scaled init of residual projections
    const weights = new Map<string, tf.Variable>();
    const add = (name: string, shape: number[], init: 'normal' | 'proj' | 'zeros' | 'ones') => {
      const size = shape.reduce((a, b) => a * b, 1);
      const values = init === 'zeros' ? new Float32Array(size) : init === 'ones' ? new Float32Array(size).fill(1)
        : seededNormal(rng, size, init === 'proj' ? projStd : std);
      weights.set(name, variableFrom(values, shape, uniqueVariableName('baseline', name)));
    };
    add('wte.weight', [V, d], 'normal');
    add('wpe.weight', [L, d], 'normal');
    for (let i = 0; i < config.numLayers; i++) {
      const p = `h.${i}.`;
      add(`${p}ln_1.weight`, [d], 'ones');
      add(`${p}ln_1.bias`, [d], 'zeros');
      add(`${p}attn.c_attn.weight`, [d, 3 * d], 'normal');
      add(`${p}attn.c_attn.bias`, [3 * d], 'zeros');
      add(`${p}attn.c_proj.weight`, [d, d], 'proj');
      add(`${p}attn.c_proj.bias`, [d], 'zeros');
      add(`${p}ln_2.weight`, [d], 'ones');
      add(`${p}ln_2.bias`, [d], 'zeros');
      add(`${p}mlp.c_fc.weight`, [d, m], 'normal');
      add(`${p}mlp.c_fc.bias`, [m], 'zeros');
      add(`${p}mlp.c_proj.weight`, [m, d], 'proj');
      add(`${p}mlp.c_proj.bias`, [d], 'zeros');
    }
    add('ln_f.weight', [d], 'ones');
    add('ln_f.bias', [d], 'zeros');
    this.weights = weights;
  }

  /** Vocabulary size V. */
  get vocabSize(): number {
    return this.config.vocabSize;
  }

  /** Longest accepted sequence. */
  get maxLength(): number {
    return this.config.maxLength;
  }

  /** Every weight by its checkpoint name (HuggingFace GPT-2 names). */
  namedWeights(): Map<string, tf.Variable> {
    return new Map(this.weights);
  }

  /** Every trainable variable (for `optimizer.minimize(f, true, model.trainableVariables())`). */
  trainableVariables(): tf.Variable[] {
    return [...this.weights.values()];
  }

  /** Number of parameters (equals {@link countBaselineGptParameters}). */
  countParameters(): number {
    let total = 0;
    for (const w of this.weights.values()) total += w.size;
    return total;
  }

  /**
   * Final-LN hidden states. Shapes: ids [B, L] → [B, L, d].
   * @throws ShapeError / InvalidArgumentError on a bad ids tensor.
   */
  hidden(ids: tf.Tensor2D): tf.Tensor3D {
    checkIds('BaselineGpt', ids, this.config.vocabSize, this.config.maxLength);
    return tf.tidy(() => {
      const w = (name: string) => this.weights.get(name)!;
      const [batch, length] = ids.shape;
      const { modelDim: d, numHeads: H, layerNormEps: eps } = this.config;
      const dh = d / H;
      const positions = tf.slice(w('wpe.weight'), [0, 0], [length, d]); // [L, d]
      let x: tf.Tensor = tf.add(embeddingLookup(w('wte.weight') as tf.Tensor2D, ids), positions); // [B, L, d]
      // Causal mask: 0 on and below the diagonal, −1e9 above.
      const mask = tf.mul(tf.sub(1, tf.linalg.bandPart(tf.ones([length, length]), -1, 0)), -1e9); // [L, L]
      for (let i = 0; i < this.config.numLayers; i++) {
        const p = `h.${i}.`;
        // Attention: x + proj(softmax(q kᵀ/√dh + mask) v)
        const a = layerNorm(x, w(`${p}ln_1.weight`), w(`${p}ln_1.bias`), eps);
        const qkv = tf.add(tf.matMul(tf.reshape(a, [-1, d]), w(`${p}attn.c_attn.weight`)), w(`${p}attn.c_attn.bias`)); // [B·L, 3d]
        const heads = tf.transpose(tf.reshape(qkv, [batch, length, 3, H, dh]), [2, 0, 3, 1, 4]); // [3, B, H, L, dh]
        const [q, k, v] = tf.unstack(heads).map((t) => tf.reshape(t, [batch * H, length, dh])); // [B·H, L, dh]
        const scores = tf.add(tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(dh)), mask); // [B·H, L, L]
        const context = tf.matMul(tf.softmax(scores), v); // [B·H, L, dh]
        const merged = tf.reshape(tf.transpose(tf.reshape(context, [batch, H, length, dh]), [0, 2, 1, 3]), [-1, d]); // [B·L, d]
        const attended = tf.add(tf.matMul(merged, w(`${p}attn.c_proj.weight`)), w(`${p}attn.c_proj.bias`));
        x = tf.add(x, tf.reshape(attended, [batch, length, d]));
        // MLP: x + W2 gelu(W1 LN(x))
        const b = tf.reshape(layerNorm(x, w(`${p}ln_2.weight`), w(`${p}ln_2.bias`), eps), [-1, d]); // [B·L, d]
        const inner = gelu(tf.add(tf.matMul(b, w(`${p}mlp.c_fc.weight`)), w(`${p}mlp.c_fc.bias`))); // [B·L, m]
        const out = tf.add(tf.matMul(inner, w(`${p}mlp.c_proj.weight`)), w(`${p}mlp.c_proj.bias`));
        x = tf.add(x, tf.reshape(out, [batch, length, d]));
      }
      return layerNorm(x, w('ln_f.weight'), w('ln_f.bias'), eps) as tf.Tensor3D;
    });
  }

  /**
   * Logits (tied head: h · wteᵀ) and, with `computeLoss`, the mean next-token cross-entropy.
   * Shapes: ids [B, L] → logits [B, L, V], loss scalar.
   */
  forward(ids: tf.Tensor2D, options: { computeLoss?: boolean } = {}): { logits: tf.Tensor3D; loss?: tf.Scalar } {
    return tf.tidy(() => {
      const h = this.hidden(ids);
      const [batch, length, d] = h.shape;
      const embedding = this.weights.get('wte.weight')! as tf.Tensor2D;
      const logits = tf.reshape(tiedHead(tf.reshape(h, [-1, d]), embedding), [batch, length, this.config.vocabSize]) as tf.Tensor3D; // [B, L, V]
      return options.computeLoss ? { logits, loss: nextTokenLossFromHidden(h, embedding, ids) } : { logits };
    });
  }

  /** Mean next-token cross-entropy (for `optimizer.minimize`). Shapes: ids [B, L] → scalar. */
  loss(ids: tf.Tensor2D): tf.Scalar {
    return tf.tidy(() => nextTokenLossFromHidden(this.hidden(ids), this.weights.get('wte.weight')! as tf.Tensor2D, ids));
  }

  /** Naive next-token logits: full forward of the prefix, head on the last position only. Shapes: [t] → [V]. */
  nextTokenLogits(ids: readonly number[]): Float32Array {
    return takeValues(lastPositionLogits(this.hidden.bind(this), this.weights.get('wte.weight')!, ids));
  }

  /** {@link BaselineGpt.nextTokenLogits} read back asynchronously (every backend, webgpu in Node included). */
  async nextTokenLogitsAsync(ids: readonly number[]): Promise<Float32Array> {
    return takeValuesAsync(lastPositionLogits(this.hidden.bind(this), this.weights.get('wte.weight')!, ids));
  }

  /**
   * A key/value-cache decoder: each layer keeps K and V of the tokens so far, so a new token costs one query
   * against t keys. Snapshots the head: create a new decoder after changing the weights; `dispose()` when done.
   */
  createIncrementalDecoder(): IncrementalDecoder {
    const w = (name: string) => this.weights.get(name)!;
    const { modelDim: d, numHeads: H, layerNormEps: eps, numLayers, maxLength } = this.config;
    const dh = d / H;
    const head = tf.transpose(w('wte.weight')); // [d, V]
    let keys: tf.Tensor3D[] = []; // per layer [H, t, dh]
    let values: tf.Tensor3D[] = [];
    let position = 0;
    /** Feeds one token; returns the next token's logits [V], a tensor the caller reads and disposes. */
    const advance = (id: number): tf.Tensor1D => {
      if (position >= maxLength) {
        throw new InvalidArgumentError(`BaselineGpt decoder: position ${position} is past maxLength ${maxLength}.`);
      }
      const newKeys: tf.Tensor3D[] = [];
      const newValues: tf.Tensor3D[] = [];
      const logits = tf.tidy(() => {
        const token = tf.reshape(tf.gather(w('wte.weight'), tf.tensor1d([id], 'int32')), [1, d]);
        let x: tf.Tensor = tf.add(token, tf.slice(w('wpe.weight'), [position, 0], [1, d])); // [1, d]
        for (let i = 0; i < numLayers; i++) {
          const p = `h.${i}.`;
          const a = layerNorm(x, w(`${p}ln_1.weight`), w(`${p}ln_1.bias`), eps);
          const qkv = tf.add(tf.matMul(a, w(`${p}attn.c_attn.weight`)), w(`${p}attn.c_attn.bias`)); // [1, 3d]
          const [q, k, v] = tf.split(qkv, 3, 1).map((t) => tf.transpose(tf.reshape(t, [1, H, dh]), [1, 0, 2])); // [H, 1, dh]
          const K = tf.keep(position === 0 ? k! : tf.concat([keys[i]!, k!], 1)) as tf.Tensor3D; // [H, t+1, dh]
          const V = tf.keep(position === 0 ? v! : tf.concat([values[i]!, v!], 1)) as tf.Tensor3D;
          newKeys.push(K);
          newValues.push(V);
          const scores = tf.mul(tf.matMul(q!, K, false, true), 1 / Math.sqrt(dh)); // [H, 1, t+1]
          const context = tf.reshape(tf.transpose(tf.matMul(tf.softmax(scores), V), [1, 0, 2]), [1, d]); // [1, d]
          x = tf.add(x, tf.add(tf.matMul(context, w(`${p}attn.c_proj.weight`)), w(`${p}attn.c_proj.bias`)));
          const b = layerNorm(x, w(`${p}ln_2.weight`), w(`${p}ln_2.bias`), eps);
          const inner = gelu(tf.add(tf.matMul(b, w(`${p}mlp.c_fc.weight`)), w(`${p}mlp.c_fc.bias`)));
          x = tf.add(x, tf.add(tf.matMul(inner, w(`${p}mlp.c_proj.weight`)), w(`${p}mlp.c_proj.bias`)));
        }
        const h = layerNorm(x, w('ln_f.weight'), w('ln_f.bias'), eps);
        return tf.reshape(tf.matMul(h, head), [-1]); // [V]
      });
      tf.dispose([...keys, ...values]);
      keys = newKeys;
      values = newValues;
      position += 1;
      return logits as tf.Tensor1D;
    };
    return {
      get position() {
        return position;
      },
      step: (id: number) => takeValues(advance(id)),
      stepAsync: async (id: number) => takeValuesAsync(advance(id)),
      dispose: () => {
        tf.dispose([...keys, ...values, head]);
        keys = [];
        values = [];
      },
    };
  }

  /** Writes `config.json` (modelType `baseline-gpt`) and `model.safetensors` into `dir`. */
  async save(dir: string): Promise<void> {
    await saveCheckpoint(dir, 'baseline-gpt', this.config, this.weights);
  }

  /**
   * Loads a model saved with {@link BaselineGpt.save}.
   * @throws FileFormatError (one line) listing missing, unexpected or misshapen tensors.
   */
  static async load(dir: string): Promise<BaselineGpt> {
    return loadCheckpoint(dir, 'baseline-gpt', (config) => new BaselineGpt(config as unknown as BaselineGptConfig), (m) => m.weights);
  }

  /** Frees every weight. */
  dispose(): void {
    for (const w of this.weights.values()) w.dispose();
  }
}
