// M2-BERT: the BERT of Monarch Mixer (Fu et al., "Monarch Mixer: A Simple Sub-Quadratic GEMM-Based Architecture",
// NeurIPS 2023, arXiv:2310.12109 §5.1), ported from HazyResearch/m2 `bert/src/bert_layers.py` (branch staging)
// through m2-architecture.md §2. Attention is replaced by a gated bidirectional long convolution with implicit
// Hyena filters, and the MLP's dense matrices by block-diagonal ones.
//
//   ids, token types → embeddings (word + type + position, LayerNorm, dropout)
//                    → N × M2EncoderLayer (s = mixer(h); h = LayerNorm(GLU-MLP(s) + s))
//                    → head: masked LM | pooler → classifier | pooler (retrieval embedding)
//
// Differs from the reference:
// - fp32 throughout; no bf16 autocast, no FlashFFTConv (its buffers are skipped at load time).
// - The long convolution is monarch-core's FFT-free real DFT (same linear convolution, size 2L).
// - The attention mask never enters the encoder, exactly as in the original: pad tokens are mixed into every
//   position. It is used only by mean pooling (`poolAll`) and by the tasks. Pad to the model's max length to
//   reproduce the released models (users.md §2).
//
// Shape legend: B batch · L sequence · d model dim · V vocabulary · n labels.
import type { Tensor, Tensor2D, Tensor3D, Variable } from '@tensorflow/tfjs-core';
import * as tf from '@tensorflow/tfjs-core';
import { BackendError, checkWebGpuBinding, InvalidArgumentError, recomputed, ShapeError } from '@monarch-mixer/monarch-core';
import { clearInferenceCache, derivedTensors, geluExact, layerNorm, linear, M2EncoderLayer, recordingGradients } from '@monarch-mixer/m2-layers';
import { maxSequenceLength, resolveM2BertConfig } from './m2-bert-config.js';
import type { M2BertConfig, M2BertConfigInput } from './m2-bert-config.js';
import { m2BertStateDict, originalKey } from './state-dict.js';

/**
 * Token ids (and optional segment ids / mask / labels) of a batch: int32 tensors or nested arrays, [B, L]. Arrays are
 * checked on the host; tensors are read back synchronously to check them, which webgpu in Node cannot do: there, give
 * arrays (tensor ids are then not value-checked, and masked-LM labels must be arrays).
 */
export interface M2BertInputs {
  /** Token ids in [0, V), [B, L] with L ≤ the model's max length. */
  inputIds: Tensor2D | number[][];
  /** Segment ids in [0, typeVocabSize); zeros when absent. [B, L] */
  tokenTypeIds?: Tensor2D | number[][];
  /** 1 = real token, 0 = padding; used only by mean pooling (`poolAll`), never by the encoder. [B, L] */
  attentionMask?: Tensor2D | number[][];
  /**
   * Training targets. Masked LM: token ids [B, L], positions with label ≤ 0 (e.g. −100) are ignored.
   * Classification: class ids [B] (int32), targets [B] (regression, 1 label) or multi-hot [B, n] (float32).
   */
  labels?: Tensor | number[] | number[][];
}

/** Options of {@link M2Bert.forward}. */
export interface M2BertForwardOptions {
  /** Enables dropout. Default false. */
  training?: boolean;
  /** Also return every layer's output (`hiddenStates[0]` = embeddings output). Default false. */
  outputHiddenStates?: boolean;
  /**
   * Gradient checkpointing: under a gradient tape each encoder layer keeps only its input, and the backward pass
   * runs the layer again (monarch-core `recomputed`). Same loss and gradients; the tape's activations shrink from
   * every layer's intermediates to N × [B, L, d], for one more forward pass per step. With labels and
   * `outputLogits: false`, the MLM head is recomputed too, in chunks of {@link HEAD_CHUNK_ROWS} labelled rows.
   * Default false.
   */
  gradientCheckpointing?: boolean;
  /**
   * Masked LM: return the [B, L, V] logits. Default true. With labels, false skips them (the head still runs on the
   * labelled rows for the loss): training needs only the loss, and at long L the full logits are large (2 GiB at
   * L = 16384, past a webgpu device's binding limit at 32768).
   */
  outputLogits?: boolean;
}

/** Outputs of {@link M2Bert.forward}; the caller disposes them. */
export interface M2BertOutput {
  /** Encoder output h, [B, L, d]. */
  lastHiddenState: Tensor3D;
  /** tanh(W·h[:, 0] + b) (or the masked mean with `poolAll`), [B, d]; every head but masked-lm. */
  poolerOutput?: Tensor2D;
  /**
   * MLM logits [B, L, V] (with labels, as the original: computed at the labelled positions only, zeros elsewhere),
   * or classification logits [B, n].
   */
  logits?: Tensor;
  /** Mean loss (scalar) when labels were given. */
  loss?: Tensor;
  /** Embeddings output then each layer's output, [B, L, d] each (with `outputHiddenStates`). */
  hiddenStates?: Tensor3D[];
}

/** Labelled rows per chunk of the MLM head under gradient checkpointing ([1024, V] logits: 125 MB at V = 30528). */
export const HEAD_CHUNK_ROWS = 1024;

let modelCount = 0;

/**
 * M2-BERT with its head: masked LM, sequence classification, or the retrieval encoder (pooler output).
 *
 * Weights live in tf.Variables named after the original checkpoint keys ({@link M2Bert.namedWeights}), so
 * `tf.variableGrads` and optimizers see them; load released checkpoints with `fromPretrained` (checkpoint.ts).
 *
 * Shapes: inputIds [B, L] → lastHiddenState [B, L, d], poolerOutput [B, d], logits [B, L, V] or [B, n].
 * @see arXiv:2310.12109 §5.1; m2-architecture.md §2.
 * @example
 * const model = new M2Bert({ preset: 'tiny' });
 * model.forward({ inputIds: [[101, 7, 102]] }).logits?.shape; // → [1, 3, 1024]
 */
export class M2Bert {
  /** The resolved, frozen configuration. */
  readonly config: M2BertConfig;
  /** The encoder layers (`bert.encoder.layer.{i}`). */
  readonly layers: readonly M2EncoderLayer[];
  private readonly variables = new Map<string, Variable>();
  private disposed = false;

  /**
   * Builds a randomly initialised model (§2.11: N(0, initializerRange) for embeddings and dense weights, LayerNorms
   * at (1, 0), the layers' own PyTorch-style init).
   * @param config - A config, a partial config or `{ preset }`.
   * @throws ConfigError on an invalid configuration.
   */
  constructor(config: M2BertConfigInput | M2BertConfig = {}) {
    this.config = resolveM2BertConfig(config); // a resolved config resolves to an equal copy
    const c = this.config;
    const id = (modelCount += 1);
    this.layers = Array.from({ length: c.numLayers }, (_, i) => {
      const layer = new M2EncoderLayer({
        modelDim: c.modelDim,
        maxLength: c.longConvLMax,
        intermediateDim: c.intermediateDim,
        numBlocks: c.numBlocks,
        bidirectional: c.bidirectional,
        residualLongConv: c.residualLongConv,
        preNorm: c.hyenaTrainingAdditions,
        filterOrder: c.filterOrder,
        embDim: c.filterEmbDim,
        w: c.filterW,
        wMod: c.filterWMod,
        layerNormEps: c.layerNormEps,
        dropout: c.hiddenDropout,
        name: `m2bert${id}_layer_${i}`,
      });
      layer.build([null, c.longConvLMax, c.modelDim]);
      for (const [key, variable] of layer.namedWeights()) this.variables.set(`encoder.layer.${i}.${key}`, variable.read() as Variable);
      return layer;
    });
    // Embeddings and heads: plain variables under their normalised original keys.
    for (const entry of m2BertStateDict(c)) {
      if (entry.kind === 'index' || entry.aliasOf || entry.key.startsWith('encoder.')) continue;
      const initial = tf.tidy(() => initialValue(entry.key, entry.shape, c));
      this.variables.set(entry.key, tf.variable(initial, true, `m2bert${id}/${entry.key}`));
      initial.dispose();
    }
  }

  /**
   * Every weight under its original state_dict key (`bert.encoder.layer.0.attention.in_linear.weight`, …), aliases
   * included: `cls.predictions.decoder.weight` and the 6 `freq` keys per filter map to their one shared variable.
   * Layouts are PyTorch's except BlockdiagLinear weights ([numBlocks, blockIn, blockOut]).
   */
  namedWeights(): Map<string, Variable> {
    const named = new Map<string, Variable>();
    for (const entry of m2BertStateDict(this.config)) {
      if (entry.kind === 'index') continue;
      const variable = this.variables.get(entry.aliasOf ?? entry.key);
      if (variable) named.set(originalKey(this.config, entry.key), variable);
    }
    return named;
  }

  /** The trainable variables, each once (shared tensors are not repeated). */
  trainableVariables(): Variable[] {
    return [...new Set(this.variables.values())].filter((v) => v.trainable);
  }

  /** The variable under a normalised key (no `bert.` prefix). @internal */
  weight(key: string): Variable {
    const variable = this.variables.get(key);
    if (!variable) throw new InvalidArgumentError(`M2Bert: no weight "${key}" in a ${this.config.head} model.`);
    return variable;
  }

  /**
   * Runs the model. Validates shapes and id ranges first (one-line errors), then computes inside `tf.tidy`.
   *
   * Shapes: inputIds [B, L] → see {@link M2BertOutput}.
   * @param inputs - Ids, optional token types, attention mask and labels.
   * @param options - `training` (dropout), `outputHiddenStates`, `gradientCheckpointing`, `outputLogits`.
   * @returns Typed outputs; dispose them when done.
   * @throws ShapeError if L exceeds the max length or the tensors disagree in shape.
   * @throws InvalidArgumentError if a token id is outside [0, V) or a token type outside [0, typeVocabSize).
   */
  forward(inputs: M2BertInputs, options: M2BertForwardOptions = {}): M2BertOutput {
    if (this.disposed) throw new InvalidArgumentError('M2Bert: the model was disposed.');
    const c = this.config;
    const ids = this.checkedIds(inputs.inputIds, 'inputIds', c.vocabSize);
    const [B, L] = ids.shape;
    let types: Tensor2D | undefined;
    let mask: Tensor2D | undefined;
    try {
      if (inputs.tokenTypeIds !== undefined) types = this.checkedIds(inputs.tokenTypeIds, 'tokenTypeIds', c.typeVocabSize, [B, L]);
      if (inputs.attentionMask !== undefined) mask = this.checkedIds(inputs.attentionMask, 'attentionMask', 2, [B, L]);
    } catch (error) {
      for (const t of [ids, types]) if (t && !isCallerTensor(t, inputs)) t.dispose();
      throw error;
    }
    const training = options.training ?? false;
    const outputLogits = options.outputLogits ?? true;
    try {
      if (c.head === 'masked-lm' && outputLogits) {
        checkWebGpuBinding('M2Bert', 'MLM logits', [B * L, c.vocabSize], `use a shorter input${inputs.labels === undefined ? '' : ', or outputLogits: false (the loss needs the labelled rows only)'}`);
      }
      return tf.tidy(() => {
        const hiddenStates: Tensor3D[] = [];
        // The embeddings' temporaries and each layer's input are freed as soon as they are used (a long input's
        // activations would otherwise pile up until the end of this tidy; a gradient tape keeps what it needs).
        let h = tf.tidy(() => this.embed(ids, types, training));
        hiddenStates.push(h);
        for (const layer of this.layers) {
          const next = options.gradientCheckpointing ? layer.recomputed(h, (x) => layer.forward(x, training)) : layer.forward(h, training);
          if (!options.outputHiddenStates) h.dispose();
          h = next;
          hiddenStates.push(h);
        }
        const output: M2BertOutput = { lastHiddenState: h };
        if (options.outputHiddenStates) output.hiddenStates = hiddenStates;
        if (c.head === 'masked-lm') {
          if (inputs.labels === undefined) {
            if (outputLogits) output.logits = this.maskedLmLogits(h);
          } else {
            // As the original: the head runs on the labelled positions only (~15 %: the [B·L, V] logits of a
            // 2048-token row are 96 GFLOP), the loss is their mean cross-entropy, and the logits come back as
            // [B, L, V] with zeros at the unlabelled positions.
            const { positions, targets } = labelledPositions(inputs.labels, B, L, c.vocabSize);
            const M = positions.length;
            const rows = tf.gather(tf.reshape(h, [B * L, c.modelDim]), M > 0 ? positions : [0]) as Tensor2D; // [M, d]
            if (options.gradientCheckpointing && !outputLogits && M > HEAD_CHUNK_ROWS) {
              output.loss = this.recomputedMaskedLmLoss(rows, targets);
              return output as unknown as tf.TensorContainer;
            }
            const logits = tf.reshape(this.maskedLmLogits(tf.expandDims(rows, 0) as Tensor3D), [-1, c.vocabSize]); // [M, V]
            const loss = maskedLmLoss(tf.expandDims(logits, 0) as Tensor3D, tf.tensor2d(M > 0 ? targets : [0], [1, Math.max(M, 1)], 'int32'));
            output.loss = M > 0 ? loss : tf.mul(loss, 0); // nothing labelled: 0, still connected to every weight
            if (outputLogits) output.logits = tf.reshape(
              M > 0 ? tf.scatterND(tf.tensor2d(positions, [M, 1], 'int32'), logits, [B * L, c.vocabSize]) : tf.zeros([B * L, c.vocabSize]),
              [B, L, c.vocabSize],
            );
          }
        } else {
          output.poolerOutput = this.pool(h, mask);
          if (c.head === 'sequence-classification') {
            const rate = c.classifierDropout ?? c.hiddenDropout;
            const pooled = training && rate > 0 ? tf.dropout(output.poolerOutput, rate) : output.poolerOutput;
            output.logits = linear(pooled, this.weight('classifier.weight'), this.weight('classifier.bias'));
            if (inputs.labels !== undefined) output.loss = this.classificationLoss(output.logits as Tensor2D, inputs.labels);
          }
        }
        return output as unknown as tf.TensorContainer;
      }) as unknown as M2BertOutput;
    } finally {
      for (const t of [ids, types, mask]) if (t && !isCallerTensor(t, inputs)) t.dispose();
    }
  }

  /** Embeddings: LayerNorm(word[ids] + type[tt] + pos[0..L−1]), then dropout. Shapes: [B, L] → [B, L, d]. */
  private embed(ids: Tensor2D, types: Tensor2D | undefined, training: boolean): Tensor3D {
    const [, L] = ids.shape;
    const c = this.config;
    // nn.Embedding(padding_idx = 0): the [PAD] row is used as stored but receives no gradient through the lookup.
    const words = this.weight('embeddings.word_embeddings.weight');
    const isPad = tf.expandDims(tf.cast(tf.equal(ids, 0), 'float32'), 2); // [B, L, 1]
    const padRow = stopGradient(tf.slice(words, [0, 0], [1, c.modelDim])); // [1, d]
    let x = tf.add(tf.mul(tf.gather(words, ids), tf.sub(1, isPad)), tf.mul(padRow, isPad)); // [B, L, d]
    const typeTable = this.weight('embeddings.token_type_embeddings.weight');
    x = tf.add(x, types ? tf.gather(typeTable, types) : tf.slice(typeTable, [0, 0], [1, c.modelDim]));
    if (c.usePositionalEncodings) x = tf.add(x, tf.slice(this.weight('embeddings.position_embeddings.weight'), [0, 0], [L, c.modelDim]));
    x = layerNorm(x, this.weight('embeddings.LayerNorm.weight'), this.weight('embeddings.LayerNorm.bias'), c.layerNormEps);
    return (training && c.hiddenDropout > 0 ? tf.dropout(x, c.hiddenDropout) : x) as Tensor3D;
  }

  /** MLM head: LayerNorm(GELU(h·Wtᵀ + bt))·Wwordᵀ + b (decoder tied to the word embeddings). [B, L, d] → [B, L, V]. */
  private maskedLmLogits(h: Tensor3D): Tensor3D {
    const [B, L, d] = h.shape;
    const p = 'cls.predictions.';
    const t = layerNorm(
      geluExact(this.cachedLinear(h, `${p}transform.dense`)),
      this.weight(`${p}transform.LayerNorm.weight`),
      this.weight(`${p}transform.LayerNorm.bias`),
      this.config.layerNormEps,
    );
    const words = this.weight('embeddings.word_embeddings.weight');
    if (!recordingGradients()) {
      // Inference: t · Wwordᵀ with Wwordᵀ [d, V] transposed once and cached (a constant B operand, no [V, B·L] transpose).
      const [wordsT] = derivedTensors(this, 'decoder', [words], '', () => [tf.transpose(words)]);
      return tf.reshape(tf.add(tf.matMul(tf.reshape(t, [B * L, d]), wordsT!), this.weight(`${p}decoder.bias`)), [B, L, this.config.vocabSize]);
    }
    // W·tᵀ then transpose: wasm's matMul leaves its fast path with transposeB (7× slower at V 30528, d 768).
    const wordsByT = tf.matMul(this.weight('embeddings.word_embeddings.weight'), tf.transpose(tf.reshape(t, [B * L, d]))); // [V, B·L]
    const logits = tf.transpose(wordsByT); // [B·L, V]
    return tf.reshape(tf.add(logits, this.weight(`${p}decoder.bias`)), [B, L, this.config.vocabSize]);
  }

  /**
   * Mean MLM cross-entropy of the labelled rows with gradient checkpointing: the head runs on chunks of
   * {@link HEAD_CHUNK_ROWS} rows, each recomputed in the backward pass, so the tape never holds more than one
   * chunk's [rows, V] logits (the [M, V] logits of a long batch are the largest activation of a training step).
   * Shapes: rows [M, d], targets [M] → scalar.
   */
  private recomputedMaskedLmLoss(rows: Tensor2D, targets: Int32Array): Tensor {
    const [M, d] = rows.shape;
    const p = 'cls.predictions.';
    const headWeights = [
      `${p}transform.dense.weight`, `${p}transform.dense.bias`, `${p}transform.LayerNorm.weight`, `${p}transform.LayerNorm.bias`,
      'embeddings.word_embeddings.weight', `${p}decoder.bias`,
    ].map((key) => this.weight(key));
    const sums: Tensor[] = [];
    for (let start = 0; start < M; start += HEAD_CHUNK_ROWS) {
      const n = Math.min(HEAD_CHUNK_ROWS, M - start);
      const chunkTargets = targets.subarray(start, start + n); // plain ints: the block must not capture a tensor
      // Σ CE over the chunk = mean CE × n.
      const chunkSum = (chunk: Tensor2D) => tf.mul(maskedLmLoss(this.maskedLmLogits(tf.expandDims(chunk, 0) as Tensor3D), tf.tensor2d(chunkTargets, [1, n], 'int32')), n);
      sums.push(recomputed(chunkSum, tf.slice(rows, [start, 0], [n, d]) as Tensor2D, headWeights));
    }
    return tf.div(tf.addN(sums), M); // on webgpu, setupBackend's AddN guard splits long input lists
  }

  /** `x · Wᵀ + b` for the Linear `name`, with Wᵀ cached between inference calls. Shapes: [..., in] → [..., out]. */
  private cachedLinear(x: Tensor, name: string): Tensor {
    const weight = this.weight(`${name}.weight`);
    if (recordingGradients()) return linear(x, weight, this.weight(`${name}.bias`));
    const [weightT] = derivedTensors(this, name, [weight], '', () => [tf.transpose(weight)]); // [in, out]
    const inDim = x.shape[x.shape.length - 1]!;
    const y = tf.add(tf.matMul(tf.reshape(x, [-1, inDim]), weightT!), this.weight(`${name}.bias`)); // [N, out]
    return tf.reshape(y, [...x.shape.slice(0, -1), weight.shape[0]!]);
  }

  /** Pooler: tanh(dense(h[:, 0])) or, with poolAll, tanh(dense(Σ h·mask / Σ mask)). [B, L, d] → [B, d]. */
  private pool(h: Tensor3D, mask: Tensor2D | undefined): Tensor2D {
    const [B, L, d] = h.shape;
    let first: Tensor2D;
    if (this.config.poolAll) {
      const m = tf.expandDims(tf.cast(mask ?? tf.ones([B, L], 'int32'), 'float32'), 2); // [B, L, 1]
      first = tf.div(tf.sum(tf.mul(h, m), 1), tf.sum(m, 1)) as Tensor2D;
    } else {
      first = tf.reshape(tf.slice(h, [0, 0, 0], [B, 1, d]), [B, d]);
    }
    return tf.tanh(linear(first, this.weight('pooler.dense.weight'), this.weight('pooler.dense.bias'))) as Tensor2D;
  }

  /** §2.6: MSE for one label, cross-entropy for integer labels, BCE-with-logits otherwise (or as `problemType`). */
  private classificationLoss(logits: Tensor2D, labels: M2BertInputs['labels']): Tensor {
    const n = this.config.labels.length;
    const given = labels instanceof tf.Tensor ? labels : toTensor(labels!, n === 1 ? 'float32' : 'int32');
    const problem =
      this.config.problemType ??
      (n === 1 ? 'regression' : given.dtype === 'int32' ? 'single_label_classification' : 'multi_label_classification');
    if (problem === 'regression') return tf.mean(tf.square(tf.sub(tf.reshape(logits, [-1]), tf.reshape(tf.cast(given, 'float32'), [-1]))));
    if (problem === 'single_label_classification') {
      const target = tf.oneHot(tf.cast(tf.reshape(given, [-1]), 'int32'), n);
      return tf.neg(tf.mean(tf.sum(tf.mul(target, tf.logSoftmax(logits)), -1)));
    }
    // Numerically stable BCE with logits: max(x, 0) − x·y + log(1 + e^−|x|).
    const y = tf.cast(given, 'float32');
    return tf.mean(tf.add(tf.sub(tf.relu(logits), tf.mul(logits, y)), tf.log1p(tf.exp(tf.neg(tf.abs(logits))))));
  }

  /** Converts and validates an id tensor: int32 [B, L], L ≤ max length, values in [0, limit). */
  private checkedIds(value: Tensor2D | number[][], name: string, limit: number, shape?: [number, number]): Tensor2D {
    const t = (value instanceof tf.Tensor ? value : tf.tensor2d(value as number[][], undefined, 'int32')) as Tensor2D;
    const fail = (message: string) => {
      if (t !== value) t.dispose();
      throw new ShapeError(`M2Bert.forward: ${message}`, { parameter: name, value: t.shape });
    };
    if (t.rank !== 2) fail(`${name} must be [batch, length], got shape [${t.shape.join(', ')}].`);
    if (t.dtype !== 'int32') fail(`${name} must be int32, got ${t.dtype}.`);
    const maxLength = maxSequenceLength(this.config);
    if (!shape && t.shape[1] > maxLength) {
      fail(`input length ${t.shape[1]} is longer than the model's max length ${maxLength} (max_position_embeddings); truncate the input.`);
    }
    if (!shape && (t.shape[0] < 1 || t.shape[1] < 1)) fail(`${name} is empty (shape [${t.shape.join(', ')}]); give at least one token.`);
    if (shape && (t.shape[0] !== shape[0] || t.shape[1] !== shape[1])) {
      fail(`${name} must have the shape of inputIds [${shape.join(', ')}], got [${t.shape.join(', ')}].`);
    }
    // Arrays are checked as given; tensors are read back once, except on webgpu, where Node has no synchronous read
    // (there the caller gives arrays to have the values checked).
    if (value instanceof tf.Tensor && tf.getBackend() === 'webgpu') return t;
    const data = value instanceof tf.Tensor ? t.dataSync() : (value as number[][]).flat();
    for (let i = 0; i < data.length; i += 1) {
      if (!Number.isInteger(data[i]) || data[i]! < 0 || data[i]! >= limit) {
        if (t !== value) t.dispose();
        const what = name === 'inputIds' ? `token id ${data[i]} at position ${i % t.shape[1]} of row ${Math.floor(i / t.shape[1])} is ${Number.isInteger(data[i]) ? 'outside' : 'not an integer in'} the vocabulary [0, ${limit})` : `${name} value ${data[i]} is ${Number.isInteger(data[i]) ? 'outside' : 'not an integer in'} [0, ${limit})`;
        throw new InvalidArgumentError(`M2Bert.forward: ${what}.`, { parameter: name, value: data[i] });
      }
    }
    return t;
  }

  /**
   * Loads a HuggingFace-layout M2-BERT folder (config.json + model.safetensors / pytorch_model.bin / composer *.pt).
   * Node only. See `fromPretrained` in checkpoint.ts for the loader rules.
   * @param dir - The folder.
   * @param options - `weightsFile`: a weights file in the folder to use instead of the default search.
   * @throws ConfigError / FileFormatError (one line) for a bad config, missing, corrupt or mismatched weights.
   */
  static async fromPretrained(dir: string, options: { weightsFile?: string } = {}): Promise<M2Bert> {
    const { fromPretrained } = await import('./checkpoint.js');
    return fromPretrained(dir, options);
  }

  /**
   * Writes config.json + model.safetensors with the original key names and layouts (loads in the original PyTorch
   * code). Node only.
   * @param dir - Target folder (created if needed).
   */
  async save(dir: string): Promise<void> {
    const { savePretrained } = await import('./checkpoint.js');
    await savePretrained(this, dir);
  }

  /** Frees every variable (the layers' and the model's own) and every cached inference tensor derived from them. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    clearInferenceCache(this); // the transposed head weights
    for (const layer of this.layers) layer.dispose(); // its weights and its (and its sublayers') cached tensors
    for (const variable of new Set(this.variables.values())) if (!variable.isDisposed) variable.dispose();
  }
}

/** Initial value of an embedding/head weight (§2.11). */
function initialValue(key: string, shape: readonly number[], c: M2BertConfig): Tensor {
  if (/LayerNorm\.weight$/.test(key)) return tf.ones(shape as number[]);
  if (/bias$/.test(key)) return tf.zeros(shape as number[]);
  const w = tf.truncatedNormal(shape as number[], 0, c.initializerRange);
  if (key === 'embeddings.word_embeddings.weight') {
    // padding_idx 0: the [PAD] row starts at zero.
    return tf.concat([tf.zeros([1, shape[1]!]), tf.slice(w, [1, 0], [shape[0]! - 1, shape[1]!])]);
  }
  return w;
}

/** Identity in the forward pass, zero gradient (tfjs has no stop-gradient op). */
const stopGradient = tf.customGrad((...args: (Tensor | tf.GradSaveFunc)[]) => {
  const x = args[0] as Tensor;
  return { value: tf.clone(x), gradFunc: (dy: Tensor) => tf.zerosLike(dy) };
}) as (x: Tensor) => Tensor;

/**
 * The labelled positions of masked-LM labels [B, L] (label > 0; −100 and 0 are ignored), as flat indices into
 * B·L, with their target ids.
 * @throws ShapeError / InvalidArgumentError (one line) for another shape, a non-integer or an id ≥ V.
 */
function labelledPositions(labels: Tensor | number[] | number[][], B: number, L: number, V: number): { positions: Int32Array; targets: Int32Array } {
  const shape = labels instanceof tf.Tensor ? labels.shape : Array.isArray(labels[0]) ? [labels.length, (labels[0] as number[]).length] : [labels.length];
  const rows = labels instanceof tf.Tensor ? [] : (labels as number[][]);
  if (shape.length !== 2 || shape[0] !== B || shape[1] !== L || rows.some((row) => !Array.isArray(row) || row.length !== L)) {
    throw new ShapeError(`M2Bert.forward: masked-LM labels must have the shape of inputIds [${B}, ${L}], got [${shape.join(', ')}].`, { parameter: 'labels', value: shape });
  }
  const data = labels instanceof tf.Tensor ? readLabels(labels) : rows.flat();
  const positions: number[] = [];
  const targets: number[] = [];
  for (let i = 0; i < data.length; i++) {
    const label = data[i]!;
    if (!Number.isInteger(label) || label >= V) {
      throw new InvalidArgumentError(`M2Bert.forward: masked-LM label ${label} is not a token id in [0, ${V}) (use -100 to ignore a position).`, { parameter: 'labels', value: label });
    }
    if (label > 0) {
      positions.push(i);
      targets.push(label);
    }
  }
  return { positions: Int32Array.from(positions), targets: Int32Array.from(targets) };
}

/**
 * Masked-LM labels given as a tensor, read back synchronously (their positions shape the loss).
 * @throws BackendError (one line) where that is impossible: webgpu in Node, for labels already on the GPU.
 */
function readLabels(labels: Tensor): ArrayLike<number> {
  try {
    return labels.dataSync();
  } catch (error) {
    if (tf.getBackend() !== 'webgpu') throw error;
    throw new BackendError(`M2Bert.forward: masked-LM labels on the GPU cannot be read back synchronously on webgpu in Node (${(error as Error).message.split('\n')[0]}); give them as number[][].`, { parameter: 'labels' });
  }
}

function isCallerTensor(t: Tensor, inputs: M2BertInputs): boolean {
  return t === inputs.inputIds || t === inputs.tokenTypeIds || t === inputs.attentionMask;
}

function toTensor(value: Tensor | number[] | number[][], dtype: 'int32' | 'float32'): Tensor {
  return value instanceof tf.Tensor ? value : tf.tensor(value as number[], undefined, dtype);
}

/**
 * Masked-LM loss as the original computes it: mean cross-entropy over positions whose label is > 0 (so −100 and 0
 * are both ignored). Shapes: logits [B, L, V], labels [B, L] → scalar.
 */
export function maskedLmLoss(logits: Tensor3D, labels: Tensor): Tensor {
  return tf.tidy(() => {
    const V = logits.shape[2];
    const flatLabels = tf.reshape(tf.cast(labels, 'int32'), [-1]); // [B·L]
    const selected = tf.cast(tf.greater(flatLabels, 0), 'float32');
    const target = tf.oneHot(tf.maximum(flatLabels, tf.zerosLike(flatLabels)), V); // [B·L, V]
    const logProbs = tf.logSoftmax(tf.reshape(logits, [-1, V]));
    const picked = tf.sum(tf.mul(target, logProbs), -1); // [B·L]
    return tf.div(tf.neg(tf.sum(tf.mul(picked, selected))), tf.maximum(tf.sum(selected), 1));
  });
}

