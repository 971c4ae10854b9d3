/**
 * Monarch Mixer (M2) layers for TensorFlow.js.
 *
 * The middle of the package graph (monarch-core → **m2-layers** → m2-bert / m2-gpt / m2-vision): tfjs-layers
 * `Layer` subclasses for the block-diagonal linear, the implicit Hyena filter, the M2 sequence mixer, the GLU
 * Monarch MLP, the post-LN M2-BERT encoder layer and the pre-LN causal block (with token-by-token decoding).
 * Every weight is named after its original PyTorch checkpoint key, and `namedWeights()` returns the key → variable
 * map, so loading a checkpoint is a lookup. Importing this module registers the layers for `loadLayersModel`.
 *
 * @packageDocumentation
 */
import './register.js';

export { M2Layer, layerNorm, linear, geluExact } from './m2-layer.js';
export type { LayerShape, InitialValue } from './m2-layer.js';
export { BlockdiagLinear } from './blockdiag-linear.js';
export type { BlockdiagLinearArgs } from './blockdiag-linear.js';
export { HyenaFilter, positionalTable, modulationDeltas } from './hyena-filter.js';
export type { HyenaFilterArgs, HyenaKernels } from './hyena-filter.js';
export { M2SequenceMixer, M2MixerStepState } from './m2-sequence-mixer.js';
export type { M2SequenceMixerArgs } from './m2-sequence-mixer.js';
export { GluMonarchMlp } from './glu-monarch-mlp.js';
export type { GluMonarchMlpArgs } from './glu-monarch-mlp.js';
export { M2SizedLayer, M2EncoderLayer, M2CausalBlock, M2CausalBlockStepState } from './m2-blocks.js';
export type { M2BlockArgs, M2EncoderLayerArgs } from './m2-blocks.js';
export { loadTorchWeights, torchWeights } from './torch-weights.js';
export { clearInferenceCache, derivedTensors, recordingGradients } from './inference-cache.js';
export type { LoadTorchWeightsResult } from './torch-weights.js';
export { saveModelFolder, readModelFolderConfig, readModelFolderWeights, assignNamedTensors } from './model-folder.js';
export type { ModelFolderConfig } from './model-folder.js';
