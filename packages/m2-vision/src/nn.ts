// Small building blocks shared by the M2 vision mixer and the attention ViT baseline: patch embedding, the
// classification loss, and seeded initial values (LayerNorm and GELU come from m2-layers). Every matMul here is 2-D with no transposes,
// the shape the wasm backend's fast (XNNPACK) path takes (toolchain.md §6).
import * as tf from '@tensorflow/tfjs-core';
import { InvalidArgumentError, Mulberry32, ShapeError } from '@monarch-mixer/monarch-core';

/**
 * Cuts images into non-overlapping P×P patches, flattened row-major (patch row, patch column), each patch's
 * pixels flattened as (row, column, channel).
 *
 * Shapes: images [B, H, W, C] → [B·N, P·P·C] with N = (H/P)·(W/P).
 * @param images - Images, channels last.
 * @param patchSize - Patch side P; must divide H and W.
 */
export function patchify(images: tf.Tensor4D, patchSize: number): tf.Tensor2D {
  const [batch, height, width, channels] = images.shape;
  const P = patchSize;
  return tf.tidy(() => {
    const rows = tf.reshape(images, [batch * (height / P), P, width / P, P * channels]); // [B·H/P, P, W/P, P·C]
    const patches = tf.transpose(rows, [0, 2, 1, 3]); // [B·H/P, W/P, P, P·C]: keeps the last dim (fast on wasm)
    return tf.reshape(patches, [batch * (height / P) * (width / P), P * P * channels]) as tf.Tensor2D; // [B·N, P²C]
  });
}

/** Checks an image batch against the model's expected size. @throws ShapeError (one line). */
export function checkImages(who: string, images: tf.Tensor, imageSize: number, channels: number): asserts images is tf.Tensor4D {
  const s = images.shape;
  if (s.length !== 4 || s[1] !== imageSize || s[2] !== imageSize || s[3] !== channels) {
    throw new ShapeError(`${who}: images must be [batch, ${imageSize}, ${imageSize}, ${channels}], got [${s.join(', ')}].`, {
      parameter: 'images',
      value: s,
    });
  }
  if (images.dtype !== 'float32') {
    throw new ShapeError(`${who}: images must be float32 in [0, 1], got dtype ${images.dtype}.`, { parameter: 'images' });
  }
  if (s[0] === 0) throw new ShapeError(`${who}: the batch of images is empty.`, { parameter: 'images', value: s });
  // One scalar read-back, skipped on webgpu, where Node cannot read synchronously: the asynchronous callers
  // (classify) check there with checkImagesFinite.
  if (tf.getBackend() !== 'webgpu') {
    const finite = tf.tidy(() => tf.all(tf.isFinite(images)));
    const ok = finite.dataSync()[0] === 1;
    finite.dispose();
    if (!ok) throw nonFiniteImages(who);
  }
}

/**
 * The finite-pixel check of {@link checkImages}, read back asynchronously: every backend, webgpu in Node included.
 * @throws InvalidArgumentError (one line) if a pixel is NaN or ±Infinity.
 */
export async function checkImagesFinite(who: string, images: tf.Tensor): Promise<void> {
  const finite = tf.tidy(() => tf.all(tf.isFinite(images)));
  try {
    if ((await finite.data())[0] !== 1) throw nonFiniteImages(who);
  } finally {
    finite.dispose();
  }
}

function nonFiniteImages(who: string): InvalidArgumentError {
  return new InvalidArgumentError(`${who}: images contain NaN or Infinity; give finite pixel values in [0, 1].`, { parameter: 'images' });
}

/** Dense layer on a 2-D input: x·W + b. Shapes: x [M, in], W [in, out], b [out] → [M, out]. */
export function dense(x: tf.Tensor2D, weight: tf.Tensor, bias?: tf.Tensor): tf.Tensor2D {
  return tf.tidy(() => {
    const y = tf.matMul(x, weight as tf.Tensor2D);
    return (bias ? tf.add(y, bias) : y) as tf.Tensor2D;
  });
}

/**
 * Mean cross-entropy in nats with optional label smoothing, written with one-hot × log-softmax so it trains on
 * every backend.
 *
 * Shapes: logits [B, K], labels [B] (int32) → scalar.
 */
export function crossEntropy(logits: tf.Tensor2D, labels: tf.Tensor1D, labelSmoothing = 0): tf.Scalar {
  return tf.tidy(() => {
    const numClasses = logits.shape[1];
    const targets = tf.oneHot(tf.cast(labels, 'int32'), numClasses); // [B, K]
    const smoothed = labelSmoothing > 0 ? tf.add(tf.mul(targets, 1 - labelSmoothing), labelSmoothing / numClasses) : targets;
    return tf.neg(tf.mean(tf.sum(tf.mul(smoothed, tf.logSoftmax(logits)), -1))) as tf.Scalar;
  });
}

/** Top-k classes of one logits row: indices and softmax probabilities, best first. */
export function topK(logits: Float32Array, k: number): Array<{ index: number; probability: number }> {
  let max = -Infinity;
  for (const v of logits) max = Math.max(max, v);
  const exps = Array.from(logits, (v) => Math.exp(v - max));
  const total = exps.reduce((a, b) => a + b, 0);
  return exps
    .map((e, index) => ({ index, probability: e / total }))
    .sort((a, b) => b.probability - a.probability || a.index - b.index)
    .slice(0, k);
}

/** A small seeded PRNG (monarch-core's {@link Mulberry32} stream) for reproducible initial weights. */
export class SeededRandom extends Mulberry32 {
  /** @param seed - Any integer (its low 32 bits, XOR-ed with the golden-ratio constant, are the first state). */
  constructor(seed: number) {
    super((seed ^ 0x9e3779b9) >>> 0);
  }
}

/** N(0, std) samples (Box–Muller) from a seeded PRNG. */
export function seededNormal(rng: SeededRandom, count: number, std: number): Float32Array {
  const out = new Float32Array(count);
  for (let i = 0; i < count; i += 2) {
    const radius = Math.sqrt(-2 * Math.log(1 - rng.next()));
    const angle = 2 * Math.PI * rng.next();
    out[i] = std * radius * Math.cos(angle);
    if (i + 1 < count) out[i + 1] = std * radius * Math.sin(angle);
  }
  return out;
}

/** U(−bound, bound) samples from a seeded PRNG. */
export function seededUniform(rng: SeededRandom, count: number, bound: number): Float32Array {
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = (2 * rng.next() - 1) * bound;
  return out;
}

/** A trainable variable with seeded U(±1/√fanIn) values (PyTorch's nn.Linear default), shaped `shape`. */
export function linearWeight(rng: SeededRandom, shape: number[], fanIn: number, name: string): tf.Variable {
  const size = shape.reduce((a, b) => a * b, 1);
  return tf.tidy(() => tf.variable(tf.tensor(seededUniform(rng, size, 1 / Math.sqrt(fanIn)), shape), true, name)); // frees the initial value
}

let nameCounter = 0;
/** A variable name unique in this process (tfjs requires unique variable names). */
export function uniqueName(base: string): string {
  nameCounter += 1;
  return `m2_vision_${base}_${nameCounter}`;
}
