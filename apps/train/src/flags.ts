// Flag parsers and the options every `m2 train …` command shares. Each parser throws a one-line
// InvalidArgumentError naming the flag, what it expects and what it got.
import type { Command } from 'commander';
import { InvalidArgumentError } from '@monarch-mixer/monarch-core';

/** Parses an integer ≥ `min`. */
export function integer(flag: string, min: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\s*-?\d+\s*$/.test(value) || !Number.isSafeInteger(n) || n < min) {
      throw new InvalidArgumentError(`${flag} must be an integer ≥ ${min}, got "${value}".`, { parameter: flag, value });
    }
    return n;
  };
}

/** Parses a finite number in (min, ∞) (or [min, ∞) with `inclusive`). */
export function number(flag: string, min = -Infinity, inclusive = false) {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n) || (inclusive ? n < min : n <= min)) {
      throw new InvalidArgumentError(`${flag} must be a number ${inclusive ? '≥' : '>'} ${min}, got "${value}".`, { parameter: flag, value });
    }
    return n;
  };
}

/** Parses a fraction in the open interval (0, 1). */
export function fraction(flag: string) {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === '' || !(n > 0 && n < 1)) {
      throw new InvalidArgumentError(`${flag} must be a number in (0, 1), got "${value}".`, { parameter: flag, value });
    }
    return n;
  };
}

/** Options shared by every training command (after commander's parsing). */
export interface CommonTrainFlags {
  steps?: number;
  maxMinutes?: number;
  batchSize?: number;
  lr?: number;
  weightDecay?: number;
  warmupSteps?: number;
  accumulate: number;
  clipNorm: number;
  seed: number;
  out?: string;
  checkpointEvery?: number;
  evalEvery?: number;
  earlyStop?: number;
  keep: number;
  resume?: string;
  /**
   * The model folder a run starts from. On `--resume` it is only the record of how the run began (stored with the
   * run's options): the model is rebuilt from the checkpoint's own `config.json` and weights.
   */
  init?: string;
  backend: string;
  json?: string;
  progress: boolean;
  /** Recompute each M2 layer's activations in the backward pass instead of keeping them (M2 models only). */
  gradientCheckpointing?: boolean;
}

/** Adds the shared flags to a training command. */
export function addCommonTrainFlags(command: Command): Command {
  return command
    .option('--steps <n>', 'optimiser steps in total', integer('--steps', 1))
    .option('--max-minutes <m>', 'stop after this many minutes (then checkpoint)', number('--max-minutes', 0))
    .option('--batch-size <n>', 'examples per micro-batch', integer('--batch-size', 1))
    .option('--lr <x>', 'peak learning rate', number('--lr', 0))
    .option('--weight-decay <x>', 'decoupled weight decay (PyTorch AdamW scaling)', number('--weight-decay', 0, true))
    .option('--warmup-steps <n>', 'linear warmup steps (default 6% of --steps)', integer('--warmup-steps', 0))
    .option('--accumulate <n>', 'micro-batches per optimiser step', integer('--accumulate', 1), 1)
    .option('--clip-norm <x>', 'global gradient-norm clip', number('--clip-norm', 0), 1)
    .option('--seed <n>', 'seed of the initial weights, data order and masking', integer('--seed', 0), 0)
    .option('--out <dir>', 'run folder (checkpoints, metrics.jsonl, curves.svg)')
    .option('--checkpoint-every <n>', 'checkpoint every N steps (0 = only at the end)', integer('--checkpoint-every', 0))
    .option('--eval-every <n>', 'evaluate every N steps (0 = only at the end)', integer('--eval-every', 0))
    .option('--early-stop <n>', 'stop when validation loss has not improved for N evaluations', integer('--early-stop', 1))
    .option('--keep <n>', 'checkpoints to keep', integer('--keep', 1), 3)
    .option('--resume <dir>', 'continue a run from its folder or a checkpoint folder')
    .option('--init <dir>', 'start from a model folder (config.json + model.safetensors), a run folder or its latest file')
    .option('--backend <name>', 'tfjs backend: auto, cpu, wasm, webgpu, tensorflow', 'auto')
    .option('--json <file>', 'write final metrics and every step\'s loss to this JSON file')
    .option('--no-progress', 'no progress bar')
    .option('--gradient-checkpointing', 'keep only each M2 layer\'s input on the tape and recompute the layer in the ' +
      'backward pass: activation memory of about one layer instead of all, for about one more forward pass per step (M2 models only)')
    .option('--no-gradient-checkpointing', 'keep every activation (the default; turns the option off on --resume)');
}

/**
 * Printed (stderr) when `--gradient-checkpointing` is given for an attention baseline (GPT or ViT), which trains as
 * without it: the recomputation is built on the M2 layers. One line, so that `--compare` runs can pass the flag.
 */
export const ATTENTION_CHECKPOINTING_NOTE = 'm2 train: --gradient-checkpointing applies to M2 models only; the attention baseline keeps every activation\n';

/** Flags that may differ between a run and its `--resume` (the rest come from the checkpoint). */
export const RESUME_OVERRIDABLE = ['steps', 'maxMinutes', 'checkpointEvery', 'evalEvery', 'earlyStop', 'keep', 'gradientCheckpointing'];

/** Flags always taken from the resuming command line (they do not change what is computed). */
const RESUME_CURRENT = ['backend', 'json', 'progress', 'out', 'resume'];

/**
 * Merges a checkpoint's stored options with the flags given on this command line: options that shape the
 * model, the data or the optimiser come from the checkpoint; `RESUME_OVERRIDABLE` ones from the command line
 * when given there. A run started with `--init` keeps that `init` as its record (the model comes from the checkpoint).
 *
 * @throws InvalidArgumentError (one line) when this command line gives `--init` together with `--resume`.
 */
export function mergeResumeOptions<T extends object>(saved: Record<string, unknown>, current: T, command: Command): T {
  if (command.getOptionValueSource('init') === 'cli') {
    throw new InvalidArgumentError('--resume and --init cannot be combined (a resumed run already has its weights).', {
      parameter: '--init', value: (current as { init?: unknown }).init,
    });
  }
  const merged: Record<string, unknown> = { ...saved };
  for (const key of RESUME_OVERRIDABLE) {
    if (command.getOptionValueSource(key) === 'cli') merged[key] = (current as Record<string, unknown>)[key];
  }
  for (const key of RESUME_CURRENT) merged[key] = (current as Record<string, unknown>)[key];
  return merged as T;
}
