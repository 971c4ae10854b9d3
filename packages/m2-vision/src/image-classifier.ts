// What the M2 vision mixer and the attention ViT baseline have in common: logits → loss, top-k classification with
// labels, parameter counting, save, dispose. The trainer and the CLI see only this.
import * as tf from '@tensorflow/tfjs-core';
import { InvalidArgumentError } from '@monarch-mixer/monarch-core';
import { saveVisionCheckpoint } from './checkpoint.js';
import { checkImages, checkImagesFinite, crossEntropy, topK } from './nn.js';

/** One predicted class. */
export interface Prediction {
  /** Class name from the config's `labels`. */
  label: string;
  /** Class index in [0, numClasses). */
  index: number;
  /** Softmax probability. */
  probability: number;
}

/** Options of {@link ImageClassifier.classify}. */
export interface ClassifyOptions {
  /** How many classes to return, best first. Default 5 (capped at numClasses). */
  topK?: number;
}

/** Options of {@link ImageClassifier.logits} and {@link ImageClassifier.loss}. */
export interface ClassifierRunOptions {
  /**
   * Gradient checkpointing ({@link M2Vision} only; the attention {@link VitBaseline} computes as without it): under a
   * gradient tape each M2 block keeps only its input [B, N, d], and the backward pass runs the block again
   * (monarch-core `recomputed`). Same loss and gradients, for about one more forward pass per step. Default false.
   */
  gradientCheckpointing?: boolean;
}

/** The config keys every image classifier has. */
export interface ImageClassifierConfig {
  /** Image height and width. */
  readonly imageSize: number;
  /** Colour channels (1 or 3). */
  readonly channels: number;
  /** Number of classes. */
  readonly numClasses: number;
  /** Class names. */
  readonly labels: readonly string[];
}

/**
 * Base class of {@link M2Vision} and {@link VitBaseline}: subclasses supply `logits` and `namedWeights`.
 */
export abstract class ImageClassifier<C extends ImageClassifierConfig = ImageClassifierConfig> {
  /** The resolved, frozen configuration. */
  abstract readonly config: C;
  /** `m2-vision` or `vit-baseline` (written to config.json). */
  abstract readonly modelType: string;

  /**
   * Class logits.
   * Shapes: images [B, H, W, C] (float32 in [0, 1]) → [B, K].
   * @param images - A batch of images.
   * @param options - `gradientCheckpointing` (see {@link ClassifierRunOptions}).
   * @throws ShapeError on a wrong image size.
   */
  abstract logits(images: tf.Tensor4D, options?: ClassifierRunOptions): tf.Tensor2D;

  /** Every weight by its checkpoint name. */
  abstract namedWeights(): Map<string, tf.Variable>;

  /**
   * Mean cross-entropy of the logits against integer labels, for
   * `optimizer.minimize(() => model.loss(x, y), true, model.trainableVariables())`.
   * Shapes: images [B, H, W, C], labels [B] (int32) → scalar.
   * @param images - A batch of images.
   * @param labels - Their class indices.
   * @param labelSmoothing - Label smoothing ε (default 0).
   * @param options - `gradientCheckpointing` (see {@link ClassifierRunOptions}).
   * @example
   * optimizer.minimize(() => model.loss(images, labels, 0, { gradientCheckpointing: true }), true, model.trainableVariables());
   */
  loss(images: tf.Tensor4D, labels: tf.Tensor1D, labelSmoothing = 0, options: ClassifierRunOptions = {}): tf.Scalar {
    return tf.tidy(() => crossEntropy(this.logits(images, options), labels, labelSmoothing));
  }

  /** The trainable variables (an optimizer's `varList`), each once. */
  trainableVariables(): tf.Variable[] {
    return [...new Set([...this.namedWeights().values()].filter((v) => v.trainable))];
  }

  /** Number of trainable parameters. */
  countParameters(): number {
    return this.trainableVariables().reduce((total, v) => total + v.size, 0);
  }

  /**
   * Top-k classes of one image.
   * Shapes: image [H, W, C] (float32 in [0, 1]).
   * @param image - One image; see {@link ImageClassifier.classifyBatch} for batches.
   * @param options - `topK` (default 5).
   * @returns Predictions, best first.
   * @throws ShapeError on a wrong image size; InvalidArgumentError on a bad topK.
   * @example
   * await model.classify(tf.zeros([28, 28, 1]), { topK: 3 }); // → [{ label: '3', index: 3, probability: 0.12 }, …]
   */
  async classify(image: tf.Tensor3D, options: ClassifyOptions = {}): Promise<Prediction[]> {
    const batch = tf.expandDims(image, 0) as tf.Tensor4D;
    try {
      return (await this.classifyBatch(batch, options))[0];
    } finally {
      batch.dispose();
    }
  }

  /**
   * Top-k classes of every image of a batch.
   * Shapes: images [B, H, W, C] → B lists of predictions.
   * @throws ShapeError on a wrong image size; InvalidArgumentError on a bad topK.
   */
  async classifyBatch(images: tf.Tensor4D, options: ClassifyOptions = {}): Promise<Prediction[][]> {
    const { numClasses, labels } = this.config;
    const k = options.topK ?? Math.min(5, numClasses);
    if (!Number.isInteger(k) || k < 1) {
      throw new InvalidArgumentError(`classify: topK must be a positive integer, got ${String(options.topK)}.`, { parameter: 'topK', value: options.topK });
    }
    checkImages(`${this.modelType}.classify`, images, this.config.imageSize, this.config.channels);
    if (tf.getBackend() === 'webgpu') await checkImagesFinite(`${this.modelType}.classify`, images); // checkImages cannot read there
    const logits = tf.tidy(() => this.logits(images));
    const data = (await logits.data()) as Float32Array;
    logits.dispose();
    return Array.from({ length: images.shape[0] }, (_, b) =>
      topK(data.subarray(b * numClasses, (b + 1) * numClasses), Math.min(k, numClasses)).map(({ index, probability }) => ({
        label: labels[index],
        index,
        probability,
      })),
    );
  }

  /**
   * Writes `config.json` + `model.safetensors` into `dir`.
   * @param dir - Output directory (created if needed).
   */
  async save(dir: string): Promise<void> {
    await saveVisionCheckpoint(dir, this.modelType, this.config, this.namedWeights());
  }

  /** Frees every weight. */
  dispose(): void {
    for (const variable of new Set(this.namedWeights().values())) variable.dispose();
  }
}
