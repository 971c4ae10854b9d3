// From a command's parsed flags to the trainer's options: the part every `m2 train …` command shares (steps and
// clock, seed, clipping, accumulation, evaluation and checkpoint intervals, resume, progress, JSON, the options
// stored for `--resume`). Each command adds only what is its own: the run folder, the optimiser and its defaults.
import type { AdamWOptions } from './adamw.js';
import type { CommonTrainFlags } from './flags.js';
import type { TrainerOptions } from './trainer.js';

/** What a command decides itself; the rest of {@link TrainerOptions} comes from the shared flags. */
export interface CommandRunSettings {
  /** Run folder. */
  outDir: string;
  /** Optimiser steps in total (`Infinity` for a `--max-minutes` run); see {@link totalSteps}. */
  steps: number;
  /** AdamW options (peak lr, weight decay, betas, parameter groups). */
  optimizer: AdamWOptions;
  /** Evaluation interval when `--eval-every` is not given. */
  evalEvery: number;
  /** Checkpoint interval when `--checkpoint-every` is not given. */
  checkpointEvery: number;
  /** Warmup steps when `--warmup-steps` is not given. Default: the trainer's (6% of the steps). */
  warmupSteps?: number;
  /** Final lr multiplier of the decay. Default: the trainer's (0.02). */
  lrFloor?: number;
  /** Where the trainer writes `--json`. Default `flags.json`; `null` when the command writes its own summary. */
  jsonFile?: string | null;
  /** Stored in checkpoints next to the flags, e.g. `{ command: 'gpt' }`, so that `--resume` rebuilds the task. */
  runOptions: Record<string, unknown>;
}

/**
 * Steps of a run: `--steps`, else unbounded when `--max-minutes` is given, else the command's default.
 *
 * @param flags - The shared flags.
 * @param defaultSteps - The command's default step count.
 * @returns The total step count (`Infinity` for a time-budgeted run).
 * @example
 * totalSteps({ maxMinutes: 2 } as CommonTrainFlags, 1000); // → Infinity
 */
export function totalSteps(flags: Pick<CommonTrainFlags, 'steps' | 'maxMinutes'>, defaultSteps: number): number {
  return flags.steps ?? (flags.maxMinutes !== undefined ? Infinity : defaultSteps);
}

/**
 * Builds the {@link TrainerOptions} of a command from its shared flags and its own settings.
 *
 * @param flags - The parsed flags (after `mergeResumeOptions` on `--resume`).
 * @param settings - The command's {@link CommandRunSettings}.
 * @returns Options for `runTraining`.
 * @example
 * const options = trainerOptions(flags, {
 *   outDir: 'runs/gpt-m2-tiny', steps: totalSteps(flags, 1000), optimizer: { lr: 2e-3, weightDecay: 0.1 },
 *   evalEvery: 50, checkpointEvery: 100, runOptions: { command: 'gpt' },
 * });
 */
export function trainerOptions(flags: CommonTrainFlags, settings: CommandRunSettings): TrainerOptions {
  return {
    outDir: settings.outDir,
    steps: settings.steps,
    maxMinutes: flags.maxMinutes,
    seed: flags.seed,
    optimizer: settings.optimizer,
    warmupSteps: flags.warmupSteps ?? settings.warmupSteps,
    lrFloor: settings.lrFloor,
    clipNorm: flags.clipNorm,
    accumulate: flags.accumulate,
    evalEvery: flags.evalEvery ?? settings.evalEvery,
    earlyStopPatience: flags.earlyStop,
    checkpointEvery: flags.checkpointEvery ?? settings.checkpointEvery,
    keepCheckpoints: flags.keep,
    resume: flags.resume,
    progress: flags.progress,
    jsonFile: settings.jsonFile === null ? undefined : (settings.jsonFile ?? flags.json),
    runOptions: { ...flags, ...settings.runOptions },
  };
}
