// Attention BERT-base baselines for the `bert` bench suite: the same width, depth, vocabulary and MLM head as
// M2-BERT, with softmax attention and a dense GELU MLP. Two attention implementations:
//  - 'eager': HuggingFace-eager style, batched [B, heads, L, L] scores materialised (the paper's baseline);
//  - 'fast':  the fastest we can write with stock tfjs ops on wasm/cpu: per-(batch, head) 2-D matMuls with
//             weights pre-split per head and K pre-transposed, queries processed in chunks so memory stays O(L·chunk).
// Random weights (N(0, 0.02)): this is a speed baseline, not a model.
import * as tf from '@tensorflow/tfjs-core';

/** Shape of an attention BERT. */
export interface AttentionBertShape {
  vocabSize: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  intermediateSize: number;
  maxLength: number;
}

interface LayerWeights {
  wq: tf.Tensor2D[]; // per head [d, dh]
  wkT: tf.Tensor2D[]; // per head [dh, d]
  wv: tf.Tensor2D[]; // per head [d, dh]
  wqAll: tf.Tensor2D; wkAll: tf.Tensor2D; wvAll: tf.Tensor2D; // [d, d] for the eager path
  bq: tf.Tensor1D; bk: tf.Tensor1D; bv: tf.Tensor1D;
  wo: tf.Tensor2D; bo: tf.Tensor1D;
  ln1g: tf.Tensor1D; ln1b: tf.Tensor1D;
  w1: tf.Tensor2D; b1: tf.Tensor1D; w2: tf.Tensor2D; b2: tf.Tensor1D;
  ln2g: tf.Tensor1D; ln2b: tf.Tensor1D;
}


/** Exact (erf) GELU from primitive ops; no backend has a Gelu kernel. */
export function gelu(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => tf.mul(tf.mul(x, 0.5), tf.add(1, tf.erf(tf.mul(x, Math.SQRT1_2)))));
}

/** LayerNorm over the last axis. */
export function layerNorm(x: tf.Tensor, gamma: tf.Tensor1D, beta: tf.Tensor1D, eps = 1e-12): tf.Tensor {
  return tf.tidy(() => {
    const { mean, variance } = tf.moments(x, -1, true);
    return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps))), gamma), beta);
  });
}

/** Parameters of an attention BERT with an MLM head (decoder tied to the word embeddings). */
export function attentionBertParameters(s: AttentionBertShape): number {
  const d = s.hiddenSize;
  const embeddings = s.vocabSize * d + s.maxLength * d + 2 * d + 2 * d;
  const layer = 4 * (d * d + d) + 2 * d + (d * s.intermediateSize + s.intermediateSize) + (s.intermediateSize * d + d) + 2 * d;
  const head = d * d + d + 2 * d + s.vocabSize;
  return embeddings + s.numLayers * layer + head;
}

/** Forward FLOPs of an attention BERT (2 per multiply-add) at batch B and length L, MLM head included. */
export function attentionBertFlops(s: AttentionBertShape, batch: number, length: number, withHead = true): number {
  const d = s.hiddenSize;
  const tokens = batch * length;
  const perLayer = 2 * tokens * (4 * d * d + 2 * d * s.intermediateSize) + 2 * 2 * batch * length * length * d;
  return s.numLayers * perLayer + (withHead ? 2 * tokens * (d * d + d * s.vocabSize) : 0);
}

/** Splits `length` into pieces of `chunk` (the last one shorter). */
function chunkSizes(length: number, chunk: number): number[] {
  const sizes = Array<number>(Math.floor(length / chunk)).fill(chunk);
  if (length % chunk) sizes.push(length % chunk);
  return sizes;
}

/** A random-weight attention BERT-base for timing. Call {@link dispose} when done. */
export class AttentionBertBaseline {
  readonly shape: AttentionBertShape;
  private readonly words: tf.Tensor2D;
  private readonly wordsT: tf.Tensor2D;
  private readonly positions: tf.Tensor2D;
  private readonly embLnG: tf.Tensor1D;
  private readonly embLnB: tf.Tensor1D;
  private readonly layers: LayerWeights[];
  private readonly head: { w: tf.Tensor2D; b: tf.Tensor1D; lnG: tf.Tensor1D; lnB: tf.Tensor1D; bias: tf.Tensor1D };

  /** Queries per chunk in the 'fast' path. */
  readonly queryChunk: number;

  constructor(shape: AttentionBertShape, seed = 0, queryChunk = 1024) {
    this.shape = shape;
    this.queryChunk = queryChunk;
    const d = shape.hiddenSize;
    let s = seed;
    const normal = (dims: number[]) => tf.randomNormal(dims, 0, 0.02, 'float32', s++);
    this.words = normal([shape.vocabSize, d]) as tf.Tensor2D;
    this.wordsT = tf.transpose(this.words) as tf.Tensor2D;
    this.positions = normal([shape.maxLength, d]) as tf.Tensor2D;
    this.embLnG = tf.ones([d]);
    this.embLnB = tf.zeros([d]);
    this.layers = Array.from({ length: shape.numLayers }, () => {
      const wqAll = normal([d, d]) as tf.Tensor2D;
      const wkAll = normal([d, d]) as tf.Tensor2D;
      const wvAll = normal([d, d]) as tf.Tensor2D;
      const heads = (w: tf.Tensor2D) => tf.split(w, shape.numHeads, 1) as tf.Tensor2D[];
      return {
        wqAll, wkAll, wvAll,
        wq: heads(wqAll), wv: heads(wvAll),
        wkT: heads(wkAll).map((w) => { const t = tf.transpose(w) as tf.Tensor2D; w.dispose(); return t; }),
        bq: tf.zeros([d]), bk: tf.zeros([d]), bv: tf.zeros([d]),
        wo: normal([d, d]) as tf.Tensor2D, bo: tf.zeros([d]),
        ln1g: tf.ones([d]), ln1b: tf.zeros([d]),
        w1: normal([d, shape.intermediateSize]) as tf.Tensor2D, b1: tf.zeros([shape.intermediateSize]),
        w2: normal([shape.intermediateSize, d]) as tf.Tensor2D, b2: tf.zeros([d]),
        ln2g: tf.ones([d]), ln2b: tf.zeros([d]),
      };
    });
    this.head = { w: normal([d, d]) as tf.Tensor2D, b: tf.zeros([d]), lnG: tf.ones([d]), lnB: tf.zeros([d]), bias: tf.zeros([shape.vocabSize]) };
  }

  /** MLM logits [B, L, V] for token ids [B, L] (or, without the head, the last hidden state [B, L, d]). */
  forward(ids: tf.Tensor2D, mode: 'fast' | 'eager', withHead = true): tf.Tensor3D {
    return tf.tidy(() => {
      const [batch, length] = ids.shape;
      const d = this.shape.hiddenSize;
      let h = tf.add(tf.gather(this.words, tf.reshape(ids, [-1])), tf.tile(tf.slice(this.positions, [0, 0], [length, d]), [batch, 1])); // [B·L, d]
      h = layerNorm(h, this.embLnG, this.embLnB);
      for (const w of this.layers) {
        // One tidy per layer (and per step inside eager attention): a layer's temporaries are freed before the next.
        const input = h;
        h = tf.tidy(() => {
          const attended = mode === 'eager' ? this.eagerAttention(input, w, batch, length) : this.fastAttention(input, w, batch, length);
          const x = layerNorm(tf.add(tf.add(tf.matMul(attended, w.wo), w.bo), input), w.ln1g, w.ln1b);
          const mlp = tf.add(tf.matMul(gelu(tf.add(tf.matMul(x, w.w1), w.b1)), w.w2), w.b2);
          return layerNorm(tf.add(mlp, x), w.ln2g, w.ln2b);
        });
        input.dispose();
      }
      if (!withHead) return tf.reshape(h, [batch, length, d]) as tf.Tensor3D;
      const t = layerNorm(gelu(tf.add(tf.matMul(h, this.head.w), this.head.b)), this.head.lnG, this.head.lnB);
      return tf.reshape(tf.add(tf.matMul(t, this.wordsT), this.head.bias), [batch, length, this.shape.vocabSize]) as tf.Tensor3D;
    });
  }

  /**
   * Batched attention with the [B, heads, L, L] score tensor materialised, as HuggingFace's eager BertSelfAttention
   * computes it: scores = Q·Kᵀ, scores / √dh, softmax, · V. Each step frees its input as soon as it is used (what
   * PyTorch's reference counting does), so at most two score-sized tensors are alive: at L = 4096 (0.75 GiB of
   * scores) this fits the 4 GiB wasm heap. h: [B·L, d] → [B·L, d].
   */
  private eagerAttention(h: tf.Tensor, w: LayerWeights, batch: number, length: number): tf.Tensor {
    const heads = this.shape.numHeads;
    const dh = this.shape.hiddenSize / heads;
    const split = (x: tf.Tensor, b: tf.Tensor) => tf.tidy(() => tf.transpose(tf.reshape(tf.add(tf.matMul(h, x as tf.Tensor2D), b), [batch, length, heads, dh]), [0, 2, 1, 3])); // [B, H, L, dh]
    const q = split(w.wqAll, w.bq);
    const k = split(w.wkAll, w.bk);
    const v = split(w.wvAll, w.bv);
    const then = (input: tf.Tensor[], f: () => tf.Tensor) => {
      const out = f();
      tf.dispose(input);
      return out;
    };
    const scores = then([q, k], () => tf.matMul(q, k, false, true)); // [B, H, L, L]
    const scaled = then([scores], () => tf.div(scores, Math.sqrt(dh)));
    const probs = then([scaled], () => tf.softmax(scaled));
    const out = then([probs, v], () => tf.matMul(probs, v)); // [B, H, L, dh]
    return then([out], () => tf.reshape(tf.transpose(out, [0, 2, 1, 3]), [batch * length, heads * dh]));
  }

  /** Per-(batch, head) 2-D attention with pre-split weights and chunked queries. h: [B·L, d] → [B·L, d]. */
  private fastAttention(h: tf.Tensor, w: LayerWeights, batch: number, length: number): tf.Tensor {
    const heads = this.shape.numHeads;
    const dh = this.shape.hiddenSize / heads;
    const scale = 1 / Math.sqrt(dh);
    const rows = batch === 1 ? [h] : tf.split(h, batch, 0); // [L, d] each
    const outputs = rows.map((x) => {
      const xT = tf.transpose(x); // [d, L], once per layer and batch row
      const chunks = length > this.queryChunk ? tf.split(x, chunkSizes(length, this.queryChunk), 0) : [x];
      const perHead = Array.from({ length: heads }, (_, i) => {
        const kT = tf.matMul(w.wkT[i], xT); // [dh, L]
        const v = tf.matMul(x, w.wv[i]); // [L, dh]
        // Each chunk in its own tidy: its [chunk, L] scores and softmax are freed at once, so the live memory is one
        // chunk's scores, not all heads' (12 × L² floats would not fit the 4 GiB wasm heap at L = 8192).
        const parts = chunks.map((xc) => tf.tidy(() => {
          const q = tf.mul(tf.matMul(xc, w.wq[i]), scale); // [chunk, dh]
          return tf.matMul(tf.softmax(tf.matMul(q, kT)), v); // [chunk, L] → [chunk, dh]
        }));
        return parts.length === 1 ? parts[0] : tf.concat(parts, 0);
      });
      return tf.concat(perHead, 1); // [L, d]
    });
    return outputs.length === 1 ? outputs[0] : tf.concat(outputs, 0);
  }

  /** Frees every weight. */
  dispose(): void {
    tf.dispose([this.words, this.wordsT, this.positions, this.embLnG, this.embLnB, ...Object.values(this.head)]);
    for (const w of this.layers) tf.dispose([...w.wq, ...w.wkT, ...w.wv, w.wqAll, w.wkAll, w.wvAll, w.bq, w.bk, w.bv, w.wo, w.bo, w.ln1g, w.ln1b, w.w1, w.b1, w.w2, w.b2, w.ln2g, w.ln2b]);
  }
}
