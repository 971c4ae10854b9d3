/**
 * Training workflows for M2 models (`m2 train …`): GPT language modelling, BERT masked-LM pretraining,
 * sequence classification and (from m2-vision) image classification, all on one generic trainer with
 * AdamW, warmup/decay, clipping, accumulation, atomic checkpoints and exact resume.
 *
 * @packageDocumentation
 */
import type { Command } from 'commander';
import { registerGptTrainCommand } from './commands/gpt.js';
import { registerBertTrainCommands } from './commands/bert.js';
import { registerVisionTrainCommand } from './tasks/vision.js';

export { runTraining, TrainingDivergedError } from './trainer.js';
export type { TrainTask, TrainerOptions, TrainingResult } from './trainer.js';
export { AdamW, clipByGlobalNorm, m2FilterGroups } from './adamw.js';
export type { AdamWOptions, AdamWState, ParameterGroup } from './adamw.js';
export { linearWarmupDecay } from './schedule.js';
export { TrainRng } from './rng.js';
export { findCheckpoint, loadWeightsInto } from './checkpoint.js';
export { renderCurvesSvg, writeCurvesSvg } from './metrics.js';
export { trainGpt } from './commands/gpt.js';
export { trainBertMlm, trainClassify } from './commands/bert.js';

/** Registers the `m2 train …` commands. */
export function registerTrainCommands(group: Command): void {
  registerGptTrainCommand(group);
  registerBertTrainCommands(group);
  registerVisionTrainCommand(group);
}
