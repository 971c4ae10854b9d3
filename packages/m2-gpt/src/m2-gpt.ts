// M2-GPT: a causal language model with neither attention nor dense MLPs (Fu et al., "Monarch Mixer",
// NeurIPS 2023, arXiv:2310.12109, §3 and m2-architecture.md §3).
//
//   ids → token embedding (+ learned positions, optional) → N × M2CausalBlock → LayerNorm → tied LM head
//   M2CausalBlock(x) = h + GluMonarchMlp(LN2(h)),  h = x + M2SequenceMixer(LN1(x))
//
// The sequence mixer is the M2-BERT mixer with `bidirectional = false`: short causal conv, gates, and an implicit
// Hyena-filter long convolution zero-padded to 2L (so output t only sees inputs ≤ t), plus the residual long conv.
// The dimension mixer is the GLU MLP with block-diagonal (Monarch) matrices.
//
// Differs from the reference (no M2-GPT code or weights were ever released, issue #7):
// - Block layout, gating order, filter sizes and MLP expansion follow the golden causal block
//   (pre-LN; pre-gate x1, post-gate x2 as in M2-BERT; I = 4d; 4 blocks), not a released M2-GPT.
// - No learned positions by default: the implicit filter already carries position (`learnedPositions` adds them).
// - The LM head is tied to the token embedding and has no bias (GPT-2 convention).
// - The vocabulary is exactly 50257 (not padded to a multiple of 8 as in the safari Hyena config).
// - Initialisation (§2.11, "similar random init"): embeddings, in/out linears and filter-MLP linears N(0, 0.02),
//   zero biases, LayerNorms (1, 0), BlockdiagLinear U(±1/√blockIn), short conv U(±1/√3), D N(0, 1); drawn from our
//   seeded PRNG so that `seed` reproduces a model exactly.
// - Generation decodes incrementally: each layer keeps its short-conv state and its long-conv input history, and
//   the long convolution for the new token is the dot product y[t] = Σ_{m≤t} k[t−m]·u[m] (no FFT per token).
//
// Shape legend: B batch · L sequence · d model dim · V vocabulary.
import * as tf from '@tensorflow/tfjs-core';
import { layerNorm, M2CausalBlock } from '@monarch-mixer/m2-layers';
import { InvalidArgumentError } from '@monarch-mixer/monarch-core';
import type { CausalLanguageModel, GenerateOptions, GeneratedToken, GenerateResult, IncrementalDecoder } from './generate.js';
import { generate, generateStream } from './generate.js';
import { resolveM2GptConfig } from './m2-gpt-config.js';
import type { M2GptConfig } from './m2-gpt-config.js';
import {
  embeddingLookup, lastPositionLogits, nextTokenLossFromHidden, seededNormal, seededUniform, takeValues, takeValuesAsync, tiedHead,
  uniqueVariableName, variableFrom,
} from './nn.js';
import { SeededRandom } from './sampling.js';
import { checkIds, checkIdValues } from './checks.js';
import { checkpointFromBytes, loadCheckpoint, saveCheckpoint } from './checkpoint.js';
import type { CheckpointConfigFile } from './checkpoint.js';

const uniqueName = (name: string) => uniqueVariableName('m2gpt', name);

/** Options of the {@link M2Gpt} constructor. */
export interface M2GptOptions {
  /** Seed of the initial weights. Default 0. */
  seed?: number;
}

/** Options of {@link M2Gpt.hidden} and {@link M2Gpt.loss}. */
export interface M2GptRunOptions {
  /**
   * Gradient checkpointing: under a gradient tape each causal block keeps only its input [B, L, d], and the backward
   * pass runs the block again (monarch-core `recomputed`). Same loss and gradients; the tape's activations shrink
   * from every block's intermediates to N × [B, L, d], for about one more forward pass per step. Default false.
   */
  gradientCheckpointing?: boolean;
}

/** Options of {@link M2Gpt.forward}. */
export interface M2GptForwardOptions extends M2GptRunOptions {
  /** Also return the mean next-token cross-entropy. Default false. */
  computeLoss?: boolean;
}

/** Output of {@link M2Gpt.forward}. */
export interface M2GptOutput {
  /** Next-token logits. Shapes: [B, L, V]. */
  logits: tf.Tensor3D;
  /** Mean next-token cross-entropy (nats), when `computeLoss` was set. */
  loss?: tf.Scalar;
}

/**
 * The M2-GPT causal language model.
 *
 * Weights are named `wte.weight` (token embedding, tied LM head), `wpe.weight` (only with `learnedPositions`),
 * `blocks.{i}.<suffix>` with the causal block's original suffixes (`norm1.weight`, `mixer.in_linear.weight`,
 * `mixer.filter_fn.implicit_filter.0.weight`, `mlp.gated_layers.weight`, …) and `ln_f.{weight,bias}`.
 *
 * @example
 * const model = new M2Gpt({ preset: 'tiny' }, { seed: 0 });
 * const { logits, loss } = model.forward(tf.tensor2d([[464, 3290, 318]], undefined, 'int32'), { computeLoss: true });
 * const { text } = await model.generate('The', { maxNewTokens: 10, seed: 1 });
 */
export class M2Gpt implements CausalLanguageModel {
  /** The resolved, frozen configuration. */
  readonly config: M2GptConfig;
  /** The N pre-LN causal blocks. */
  readonly blocks: M2CausalBlock[];
  private readonly tokenEmbedding: tf.Variable; // [V, d], also the LM head
  private readonly positionEmbedding: tf.Variable | undefined; // [L, d]
  private readonly finalNormGamma: tf.Variable; // [d]
  private readonly finalNormBeta: tf.Variable; // [d]

  /**
   * Builds a randomly initialised model.
   * @param config - A config, a partial config, or `{ preset: 'tiny' | 'small' | 'medium', ...overrides }`.
   * @param options - `seed` of the initialisation (default 0).
   * @throws ConfigError on a bad config.
   */
  constructor(config: Partial<M2GptConfig> & { preset?: string } = {}, options: M2GptOptions = {}) {
    this.config = resolveM2GptConfig(config);
    const { vocabSize: V, modelDim: d, maxLength: L, initializerRange: std } = this.config;
    const rng = new SeededRandom(options.seed ?? 0);
    this.tokenEmbedding = variableFrom(seededNormal(rng, V * d, std), [V, d], uniqueName('wte'));
    this.positionEmbedding = this.config.learnedPositions
      ? variableFrom(seededNormal(rng, L * d, std), [L, d], uniqueName('wpe'))
      : undefined;
    this.blocks = Array.from({ length: this.config.numLayers }, (_, i) => {
      const block = new M2CausalBlock({
        modelDim: d,
        maxLength: L,
        intermediateDim: this.config.intermediateDim,
        numBlocks: this.config.numBlocks,
        filterOrder: this.config.filterOrder,
        embDim: this.config.filterEmbDim,
        w: this.config.filterW,
        wMod: this.config.filterWMod,
        residualLongConv: this.config.residualLongConv,
        layerNormEps: this.config.layerNormEps,
        name: uniqueName(`block_${i}`),
      });
      tf.tidy(() => void block.apply(tf.zeros([1, 1, d]))); // builds the weights
      initializeBlock(block, rng, std);
      return block;
    });
    this.finalNormGamma = variableFrom(new Float32Array(d).fill(1), [d], uniqueName('ln_f_weight'));
    this.finalNormBeta = variableFrom(new Float32Array(d), [d], uniqueName('ln_f_bias'));
  }

  /** Vocabulary size V. */
  get vocabSize(): number {
    return this.config.vocabSize;
  }

  /** Longest accepted sequence (the filters' `l_max`). */
  get maxLength(): number {
    return this.config.maxLength;
  }

  /**
   * Final-LN hidden states: embed → N × block → LayerNorm.
   * Shapes: ids [B, L] (int32, L ≤ maxLength) → [B, L, d].
   * @param ids - Token ids. Their values are read back and checked, except on webgpu, where Node has no synchronous
   *   read: there the caller checks ids it made on the host.
   * @param options - `gradientCheckpointing` (see {@link M2GptRunOptions}).
   * @throws ShapeError / InvalidArgumentError on bad ids.
   */
  hidden(ids: tf.Tensor2D, options: M2GptRunOptions = {}): tf.Tensor3D {
    checkIds('M2Gpt', ids, this.config.vocabSize, this.config.maxLength);
    return tf.tidy(() => {
      let x = this.embed(ids); // [B, L, d]
      for (const block of this.blocks) {
        x = options.gradientCheckpointing ? block.recomputed(x, (h) => blockForward(block, h)) : blockForward(block, x);
      }
      return layerNorm(x, this.finalNormGamma, this.finalNormBeta, this.config.layerNormEps) as tf.Tensor3D;
    });
  }

  /**
   * Logits through the tied head (h · wteᵀ) and, with `computeLoss`, the mean next-token cross-entropy
   * (position t predicts ids[t + 1]).
   * Shapes: ids [B, L] → logits [B, L, V], loss scalar.
   * @param ids - Token ids.
   * @param options - `computeLoss`, `gradientCheckpointing` (see {@link M2GptForwardOptions}).
   * @example
   * const { logits } = model.forward(ids); // [B, L, 50257]
   */
  forward(ids: tf.Tensor2D, options: M2GptForwardOptions = {}): M2GptOutput {
    return tf.tidy(() => {
      const h = this.hidden(ids, options);
      const [batch, length, d] = h.shape;
      const embedding = this.tokenEmbedding as tf.Tensor2D;
      const logits = tf.reshape(tiedHead(tf.reshape(h, [-1, d]), embedding), [batch, length, this.config.vocabSize]) as tf.Tensor3D; // [B, L, V]
      return options.computeLoss ? { logits, loss: nextTokenLossFromHidden(h, embedding, ids) } : { logits };
    });
  }

  /**
   * Mean next-token cross-entropy, for `optimizer.minimize(() => model.loss(ids), true, model.trainableVariables())`.
   * Shapes: ids [B, L] → scalar.
   * @param ids - Token ids.
   * @param options - `gradientCheckpointing` (see {@link M2GptRunOptions}).
   * @example
   * optimizer.minimize(() => model.loss(ids, { gradientCheckpointing: true }), true, model.trainableVariables());
   */
  loss(ids: tf.Tensor2D, options: M2GptRunOptions = {}): tf.Scalar {
    return tf.tidy(() => nextTokenLossFromHidden(this.hidden(ids, options), this.tokenEmbedding as tf.Tensor2D, ids));
  }

  /** Every weight by its checkpoint name (trainable parameters and the filters' fixed buffers). */
  namedWeights(): Map<string, tf.Variable> {
    const weights = new Map<string, tf.Variable>([['wte.weight', this.tokenEmbedding]]);
    if (this.positionEmbedding) weights.set('wpe.weight', this.positionEmbedding);
    this.blocks.forEach((block, i) => {
      for (const [suffix, variable] of block.namedWeights()) weights.set(`blocks.${i}.${suffix}`, variable.read() as tf.Variable);
    });
    weights.set('ln_f.weight', this.finalNormGamma);
    weights.set('ln_f.bias', this.finalNormBeta);
    return weights;
  }

  /** The trainable variables (for an optimizer's `varList`); shared tensors appear once. */
  trainableVariables(): tf.Variable[] {
    return [...new Set([...this.namedWeights().values()].filter((v) => v.trainable))];
  }

  /** Number of trainable parameters (equals `countM2GptParameters(config).total`). */
  countParameters(): number {
    return this.trainableVariables().reduce((total, v) => total + v.size, 0);
  }

  /** Naive next-token logits: full forward of the prefix, head on the last position. Shapes: ids [t] → [V]. */
  nextTokenLogits(ids: readonly number[]): Float32Array {
    checkIdValues('M2Gpt.nextTokenLogits', ids, this.config.vocabSize);
    return takeValues(lastPositionLogits(this.hidden.bind(this), this.tokenEmbedding, ids));
  }

  /** {@link M2Gpt.nextTokenLogits} read back asynchronously (every backend, webgpu in Node included). */
  async nextTokenLogitsAsync(ids: readonly number[]): Promise<Float32Array> {
    checkIdValues('M2Gpt.nextTokenLogits', ids, this.config.vocabSize);
    return takeValuesAsync(lastPositionLogits(this.hidden.bind(this), this.tokenEmbedding, ids));
  }

  /**
   * An incremental decoder: each block keeps its short-conv state and long-conv input history, so a new token
   * costs O(t·d) for the convolutions instead of a full-sequence FFT. It snapshots the filter kernels and the
   * head: create a new decoder after changing the weights. Call `dispose()` when done.
   */
  createIncrementalDecoder(): IncrementalDecoder {
    const states = this.blocks.map((block) => block.createStepState(1));
    const head = tf.transpose(this.tokenEmbedding) as tf.Tensor2D; // [d, V], once per decoder (wasm's fast matMul path)
    let position = 0;
    /** Feeds one token; returns the next token's logits [V], a tensor the caller reads and disposes. */
    const advance = (id: number): tf.Tensor1D => {
      if (position >= this.config.maxLength) {
        throw new InvalidArgumentError(`M2Gpt decoder: position ${position} is past maxLength ${this.config.maxLength}.`, { parameter: 'position', value: position });
      }
      if (!Number.isInteger(id) || id < 0 || id >= this.config.vocabSize) {
        throw new InvalidArgumentError(`M2Gpt decoder: token id ${id} is not an integer in the vocabulary [0, ${this.config.vocabSize}).`, { parameter: 'id', value: id });
      }
      const logits = tf.tidy(() => {
        const ids = tf.tensor2d([[id]], [1, 1], 'int32');
        let x: tf.Tensor = tf.reshape(this.embed(ids, position), [1, this.config.modelDim]); // [1, d]
        this.blocks.forEach((block, i) => {
          x = block.step(x as tf.Tensor2D, states[i]);
        });
        const h = layerNorm(x, this.finalNormGamma, this.finalNormBeta, this.config.layerNormEps);
        return tf.reshape(tf.matMul(h, head), [-1]) as tf.Tensor1D; // [V]
      });
      position += 1;
      return logits;
    };
    return {
      get position() {
        return position;
      },
      step: (id: number) => takeValues(advance(id)),
      stepAsync: async (id: number) => takeValuesAsync(advance(id)),
      dispose: () => {
        states.forEach((state) => state.dispose());
        head.dispose();
      },
    };
  }

  /** Generates text (see {@link generate}). */
  generate(prompt: string | readonly number[], options: GenerateOptions = {}): Promise<GenerateResult> {
    return generate(this, prompt, options);
  }

  /** Streams generated tokens as `{ token, text }` (see {@link generateStream}). */
  stream(prompt: string | readonly number[], options: GenerateOptions = {}): AsyncGenerator<GeneratedToken, GenerateResult, void> {
    return generateStream(this, prompt, options);
  }

  /**
   * Writes `config.json` and `model.safetensors` (F32, names from {@link namedWeights}) into `dir`.
   * @example
   * await model.save('out/tiny');
   */
  async save(dir: string): Promise<void> {
    await saveCheckpoint(dir, 'm2-gpt', this.config, this.namedWeights());
  }

  /**
   * Loads a model saved with {@link save}.
   * @throws FileFormatError (one line) listing missing, unexpected or misshapen tensors, or a bad config.json.
   * @example
   * const model = await M2Gpt.load('out/tiny');
   */
  static async load(dir: string): Promise<M2Gpt> {
    return loadCheckpoint(dir, 'm2-gpt', (config) => new M2Gpt(config as Partial<M2GptConfig>), (model) => model.namedWeights());
  }

  /**
   * Builds a model from the parsed `config.json` and the bytes of `model.safetensors` of a folder written by
   * {@link save} — for browsers, which fetch the two files instead of reading a folder.
   * @throws FileFormatError (one line) listing missing, unexpected or misshapen tensors, or a wrong modelType.
   * @example
   * const model = M2Gpt.fromBytes(await (await fetch('m/config.json')).json(), new Uint8Array(await (await fetch('m/model.safetensors')).arrayBuffer()));
   */
  static fromBytes(configFile: CheckpointConfigFile, weights: Uint8Array, source = 'model'): M2Gpt {
    return checkpointFromBytes(configFile, weights, {
      modelType: 'm2-gpt', create: (config) => new M2Gpt(config as Partial<M2GptConfig>), weightsOf: (model) => model.namedWeights(), source,
    });
  }

  /** Frees every weight. */
  dispose(): void {
    this.tokenEmbedding.dispose();
    this.positionEmbedding?.dispose();
    for (const block of this.blocks) block.dispose();
    this.finalNormGamma.dispose();
    this.finalNormBeta.dispose();
  }

  /** Token (+ position) embedding. Shapes: ids [B, L] → [B, L, d]; positions start at `offset`. */
  private embed(ids: tf.Tensor2D, offset = 0): tf.Tensor3D {
    const x = embeddingLookup(this.tokenEmbedding as tf.Tensor2D, ids);
    if (!this.positionEmbedding) return x;
    const length = ids.shape[1];
    return tf.add(x, tf.slice(this.positionEmbedding, [offset, 0], [length, this.config.modelDim])) as tf.Tensor3D;
  }
}

/**
 * One causal block on the full sequence (tfjs-layers `apply`: input checks, then the block's forward, which draws
 * dropout through replayableDropout, so it may be recomputed). Shapes: x [B, L, d] → [B, L, d].
 */
function blockForward(block: M2CausalBlock, x: tf.Tensor3D): tf.Tensor3D {
  return block.apply(x) as tf.Tensor3D;
}

/**
 * Re-draws a block's trainable weights from the seeded PRNG by their original names (§2.11), so that a seed
 * reproduces a model. Fixed values (`pos_emb.z`, `*.freq`, buffers) keep the layer's deterministic init.
 */
function initializeBlock(block: M2CausalBlock, rng: SeededRandom, std: number): void {
  for (const [name, variable] of block.namedWeights()) {
    const value = variable.read();
    const size = value.size;
    let values: Float32Array | undefined;
    if (/(^|\.)norm\d*\.weight$/.test(name)) values = new Float32Array(size).fill(1);
    else if (/(^|\.)norm\d*\.bias$/.test(name)) values = new Float32Array(size);
    else if (/filter_fn2?\.bias$/.test(name)) values = seededNormal(rng, size, 1); // D skip
    else if (/short_filter\.(weight|bias)$/.test(name)) values = seededUniform(rng, size, 1 / Math.sqrt(3));
    else if (/(gated_layers|wo)\.weight$/.test(name)) {
      const [, blockIn] = value.shape; // [nb, in_blk, out_blk]; the original's √nb·U(±1/√(nb·in_blk)) (§1.3)
      values = seededUniform(rng, size, 1 / Math.sqrt(blockIn!));
    } else if (/wo\.bias$/.test(name)) values = seededUniform(rng, size, 1 / Math.sqrt(size));
    else if (/(in_linear|out_linear|implicit_filter\.\d+)\.weight$/.test(name)) values = seededNormal(rng, size, std);
    else if (/(in_linear|out_linear|implicit_filter\.\d+)\.bias$/.test(name)) values = new Float32Array(size);
    if (values) {
      const initial = tf.tensor(values, value.shape);
      variable.write(initial);
      initial.dispose();
    }
  }
}
