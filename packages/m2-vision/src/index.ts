/**
 * M2 vision mixer (M2-ViT) for TensorFlow.js: an image classifier whose sequence mixer is a bidirectional
 * implicit-filter long convolution over the flattened patches and whose MLPs are block-diagonal GLUs (Monarch
 * Mixer, arXiv:2310.12109), plus an attention ViT baseline of the same shape, PNG/JPEG decoding and top-k
 * classification with labels. No upstream M2-ViT code exists: the design choices are listed in `m2-vision.ts`.
 *
 * Place in the package graph: monarch-core → m2-layers → **m2-vision** → apps (cli, train, bench).
 *
 * @packageDocumentation
 */

export { M2Vision } from './m2-vision.js';
export type { M2VisionOptions, M2VisionBlock } from './m2-vision.js';
export {
  M2_VISION_DEFAULTS,
  m2VisionPresets,
  resolveM2VisionConfig,
  countM2VisionParameters,
  numPatches,
} from './m2-vision-config.js';
export type { M2VisionConfig, M2VisionConfigInput, M2VisionPresetName, M2VisionParameterCount } from './m2-vision-config.js';
export { VitBaseline, vitBaselineConfigFor, countVitBaselineParameters } from './vit-baseline.js';
export type { VitBaselineConfig } from './vit-baseline.js';
export { ImageClassifier } from './image-classifier.js';
export type { ClassifierRunOptions, ClassifyOptions, ImageClassifierConfig, Prediction } from './image-classifier.js';
export { loadImageClassifier } from './load.js';
export { decodeImage, imageToPixels, imageFileToTensor, isImageFile } from './image-io.js';
export type { DecodedImage, ImageToPixelsOptions } from './image-io.js';
export { patchify } from './nn.js';
