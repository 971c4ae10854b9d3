/**
 * The generic trainer behind every `m2 train …` command.
 *
 * ## Plugging in a task (m2-vision and friends)
 * Implement {@link TrainTask} in `src/tasks/<name>.ts` and call {@link runTraining} from the command:
 *
 * ```ts
 * const task: TrainTask = {
 *   name: 'vision', unit: 'samples',
 *   parameters: () => model.namedVariables(),          // Map<checkpoint key, tf.Variable>
 *   modelConfig: () => ({ modelType: 'm2-vision', format: 1, config }), // becomes config.json
 *   trainLoss: (rng) => {                              // ONE micro-batch; runs inside tf.variableGrads
 *     const batch = nextBatch(rng);                    // draw order/augmentation ONLY from rng
 *     return { loss: model.loss(batch), units: batch.size };
 *   },
 *   evaluate: async () => ({ loss, accuracy }),        // held-out metrics; `loss` required
 *   dataState: () => ({ epoch, cursor }), restoreDataState: (s) => { ... }, // if you keep a cursor
 *   dispose: () => model.dispose(),
 * };
 * const result = await runTraining(task, { outDir, steps, seed, optimizer: { lr: 1e-3 }, ... , runOptions });
 * ```
 * Rules: every random choice comes from the `rng` argument (so `--resume` replays it exactly), `trainLoss`
 * must not leak tensors (the trainer wraps it in `tf.variableGrads`, which tidies), and variable names must be
 * the model package's checkpoint keys (the trainer writes them to `model.safetensors` as they are).
 * On `--resume`, build the task from `checkpoint.state.runOptions` (see {@link findCheckpoint}); the trainer
 * restores weights, optimiser, RNG and data position itself.
 *
 * ## What one step does
 * `accumulate` micro-batches → mean loss and mean gradients (on webgpu under the device's error scopes: an
 * out-of-memory or validation error stops the run like a NaN) → NaN/Inf check (stop, nothing applied, last good
 * checkpoint kept) → global-norm clip → AdamW (decoupled decay, per-group lr/wd) at lr × schedule(step) →
 * log → eval every N → checkpoint every N (atomic folder + `latest`).
 *
 * @module
 */
import * as tf from '@tensorflow/tfjs-core';
import { mkdir, writeFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { acquireDirLock, InvalidArgumentError, M2Error, releaseWebGpuBufferPool, withWebGpuErrors } from '@monarch-mixer/monarch-core';
import { AdamW, clipByGlobalNorm } from './adamw.js';
import type { AdamWOptions } from './adamw.js';
import { linearWarmupDecay } from './schedule.js';
import { TrainRng } from './rng.js';
import {
  checkpointName, findCheckpoint, listCheckpoints, loadWeightsInto, readOptimizerState, removeStaleTemporaries, saveCheckpoint,
} from './checkpoint.js';
import type { TrainerState } from './checkpoint.js';
import { MetricsLog, smooth, writeCurvesSvg } from './metrics.js';
import type { CurveSeries } from './metrics.js';
import { Progress } from './progress.js';

/** A training task: a model, its data and its loss. See the module comment for an example. */
export interface TrainTask {
  /** Task name, stored in checkpoints (`gpt`, `bert-mlm`, `classify`, `vision`). */
  readonly name: string;
  /** What the progress bar counts per second. */
  readonly unit: 'tokens' | 'samples';
  /** Trainable variables by checkpoint key. Must return the same map on every call. */
  parameters(): Map<string, tf.Variable>;
  /**
   * Everything `model.safetensors` holds, by checkpoint key, when that is more than {@link TrainTask.parameters}
   * (fixed buffers the model package's loader expects). Default: the parameters.
   */
  savedWeights?(): Map<string, tf.Variable>;
  /** Contents of the checkpoint's `config.json` (the model package's format). */
  modelConfig(): Record<string, unknown>;
  /**
   * Writes `config.json` + `model.safetensors` into `dir` itself (e.g. a HuggingFace layout through the model
   * package). Default: the trainer writes `modelConfig()` and {@link TrainTask.savedWeights} as F32.
   */
  saveModel?(dir: string): Promise<void>;
  /** Reads back what {@link TrainTask.saveModel} wrote into the task's model (on `--resume`). */
  loadModel?(dir: string): Promise<void>;
  /**
   * Loss of one micro-batch (called inside `tf.variableGrads`). Randomness only from `rng`.
   * @returns The scalar loss and the number of units (tokens or samples) it covered.
   */
  trainLoss(rng: TrainRng): { loss: tf.Scalar; units: number };
  /** Held-out metrics (`loss` required, e.g. `accuracy` optional). Must not touch the trainer's RNG. */
  evaluate?(): Promise<Record<string, number>> | Record<string, number>;
  /** JSON-serialisable data position (epoch, cursor), if the task keeps one beyond the RNG. */
  dataState?(): unknown;
  /** Restores {@link TrainTask.dataState}. */
  restoreDataState?(state: unknown): void;
  /** Frees the model. */
  dispose(): void;
}

/** Options of {@link runTraining}. */
export interface TrainerOptions {
  /** Run folder (created; locked for the run). */
  outDir: string;
  /** Optimiser steps in total (including steps before a resume). `Infinity` with `maxMinutes`. */
  steps: number;
  /** Stop after this many minutes of this process (then checkpoint). */
  maxMinutes?: number;
  /** Seed of the trainer's RNG. */
  seed: number;
  /** AdamW options (peak lr, wd, betas, groups). */
  optimizer: AdamWOptions;
  /** Warmup steps (default: 6% of `steps`, or 10 when `steps` is unbounded). */
  warmupSteps?: number;
  /** Final lr multiplier of the linear decay. Default 0.02. */
  lrFloor?: number;
  /** Global gradient-norm clip. Default 1.0; `Infinity` disables. */
  clipNorm?: number;
  /** Micro-batches per optimiser step. Default 1. */
  accumulate?: number;
  /** Evaluate every N steps (0 = only at the end). Default 0. */
  evalEvery?: number;
  /** Stop when `evaluate().loss` has not improved for this many evaluations. Default: never. */
  earlyStopPatience?: number;
  /** Checkpoint every N steps (0 = only at the end). Default 0. */
  checkpointEvery?: number;
  /** Checkpoints kept (oldest deleted). Default 3. */
  keepCheckpoints?: number;
  /** Resume from this run folder or checkpoint folder. */
  resume?: string;
  /** Show a progress bar on stderr. Default true. */
  progress?: boolean;
  /** Also write the final metrics and every step's loss to this JSON file. */
  jsonFile?: string;
  /** The command's options, stored in checkpoints so that `--resume` can rebuild the task. */
  runOptions: Record<string, unknown>;
  /** Called after each step (tests use it to watch memory). */
  onStep?: (info: { step: number; loss: number; gradNorm: number; lr: number }) => void;
}

/** What {@link runTraining} returns (also written to `--json`). */
export interface TrainingResult {
  /** Task name. */
  task: string;
  /** Last completed step. */
  steps: number;
  /** Why the loop ended. */
  stopReason: 'steps' | 'time' | 'early-stop';
  /** Training loss of every step from step 1 (including steps before a resume). */
  losses: number[];
  /** Mean training loss over the last (up to) 10 steps. */
  finalTrainLoss: number;
  /** Every evaluation. */
  evals: Array<{ step: number } & Record<string, number>>;
  /** The last evaluation's metrics. */
  final: Record<string, number>;
  /** Units (tokens or samples) per second in this process. */
  throughput: number;
  /** Unit of `throughput`. */
  unit: string;
  /** Seconds trained (all sessions). */
  seconds: number;
  /** The newest checkpoint folder. */
  checkpoint: string;
  /** Step the run resumed from, if any. */
  resumedFrom?: number;
}

/** Training stopped because the loss became NaN or infinite. */
export class TrainingDivergedError extends M2Error {
  /** @inheritDoc */
  constructor(message: string, details: { parameter?: string; value?: unknown } = {}) {
    super(message, details);
    this.name = 'TrainingDivergedError';
  }
}

/**
 * Trains `task` with AdamW, the linear warmup/decay schedule, clipping, accumulation, evaluation, atomic
 * checkpoints and exact resume. Holds a lock on `outDir` for the whole run.
 *
 * @param task - The {@link TrainTask}.
 * @param options - {@link TrainerOptions}.
 * @returns The {@link TrainingResult}.
 * @throws InvalidArgumentError (one line) when `outDir` already holds checkpoints and this is not a `resume` (nothing
 *   is touched: a fresh run would overwrite them).
 * @throws M2Error (one line) when the folder is locked by another run, a checkpoint is unreadable, the loss
 *   diverges ({@link TrainingDivergedError}), or the webgpu device reports an error during a step's gradients (out
 *   of memory, an invalid buffer); in the last two cases nothing of that step is applied and the last good
 *   checkpoint stays intact.
 */
export async function runTraining(task: TrainTask, options: TrainerOptions): Promise<TrainingResult> {
  const outDir = resolve(options.outDir);
  await mkdir(outDir, { recursive: true });
  const lock = await acquireDirLock(outDir, `m2 train ${task.name}`);
  const progress = new Progress(options.progress ?? true, task.unit);
  const parameters = task.parameters();
  const optimizer = new AdamW(parameters, options.optimizer);
  try {
    const leftovers = await removeStaleTemporaries(outDir);
    if (leftovers.restored.length) progress.log(`${outDir}: put back ${leftovers.restored.join(', ')} (a killed run was replacing it)`);
    if (!options.resume) {
      // A fresh run would overwrite this folder's checkpoints and metrics: refuse before touching anything.
      const existing = await listCheckpoints(outDir);
      if (existing.length > 0) {
        throw new InvalidArgumentError(
          `${outDir} already holds checkpoints of a run (newest ${basename(existing.at(-1)!.dir)}); continue it with --resume ${outDir}, or give a new --out.`,
          { parameter: '--out', value: outDir },
        );
      }
    }
    const accumulate = options.accumulate ?? 1;
    const steps = options.steps;
    const warmupSteps = options.warmupSteps ?? (Number.isFinite(steps) ? Math.round(0.06 * steps) : 10);
    const schedule = { warmupSteps, totalSteps: steps, floor: options.lrFloor ?? 0.02 };
    const clipNorm = options.clipNorm ?? 1;
    const metrics = new MetricsLog(join(outDir, 'metrics.jsonl'));
    const rng = new TrainRng(options.seed);

    let state: TrainerState = {
      format: 1, task: task.name, step: 0, rngState: rng.state, dataState: task.dataState?.() ?? null,
      losses: [], evals: [], unitsSeen: 0, seconds: 0, runOptions: options.runOptions,
    };
    let resumedFrom: number | undefined;
    let lastCheckpoint = '';
    if (options.resume) {
      const found = await findCheckpoint(resolve(options.resume));
      if (found.state.task !== task.name) {
        throw new M2Error(`--resume ${options.resume}: the checkpoint is from "m2 train ${found.state.task}", not "${task.name}".`);
      }
      if (task.loadModel) await task.loadModel(found.dir);
      else await loadWeightsInto(found.dir, task.savedWeights?.() ?? parameters);
      const moments = await readOptimizerState(found.dir, found.state.step);
      try {
        optimizer.setState(moments);
      } finally {
        for (const t of [...moments.firstMoments.values(), ...moments.secondMoments.values()]) t.dispose();
      }
      state = { ...found.state, runOptions: options.runOptions };
      rng.state = state.rngState;
      if (state.dataState !== null && state.dataState !== undefined) task.restoreDataState?.(state.dataState);
      resumedFrom = state.step;
      lastCheckpoint = found.dir;
      await metrics.truncateAfter(state.step);
    } else {
      await writeFile(metrics.path, '');
    }

    const save = async (): Promise<string> => {
      const optimizerState = optimizer.getState();
      try {
        lastCheckpoint = await saveCheckpoint(outDir, {
          modelConfig: task.modelConfig(),
          weights: task.savedWeights?.() ?? parameters,
          saveModel: task.saveModel?.bind(task),
          optimizer: optimizerState,
          state: { ...state, rngState: rng.state, dataState: task.dataState?.() ?? null },
        }, options.keepCheckpoints ?? 3);
      } finally {
        for (const t of [...optimizerState.firstMoments.values(), ...optimizerState.secondMoments.values()]) t.dispose();
      }
      return lastCheckpoint;
    };

    const evaluate = async (): Promise<Record<string, number> | undefined> => {
      if (!task.evaluate) return undefined;
      const result = await task.evaluate();
      const entry = { step: state.step, ...result };
      state.evals.push(entry);
      await metrics.append({ kind: 'eval', ...entry });
      progress.log(`step ${state.step}: ${Object.entries(result).map(([k, v]) => `${k} ${format(v)}`).join(', ')}`);
      return result;
    };

    const startTime = Date.now();
    const secondsBefore = state.seconds;
    const startUnits = state.unitsSeen;
    const deadline = options.maxMinutes !== undefined ? startTime + options.maxMinutes * 60_000 : Infinity;
    let stopReason: TrainingResult['stopReason'] = 'steps';
    let bestEval = Infinity;
    let evalsWithoutImprovement = 0;
    const onWebGpu = tf.getBackend() === 'webgpu';
    const variableList = [...parameters.values()];
    const keyOfVariable = new Map(variableList.map((v, i) => [v.name, [...parameters.keys()][i]]));
    progress.start(steps, state.step, options.maxMinutes);

    while (state.step < steps) {
      if (Date.now() >= deadline) {
        stopReason = 'time';
        break;
      }
      const step = state.step + 1;
      // 1. Gradients of `accumulate` micro-batches, averaged.
      let summed: Map<string, tf.Tensor> | undefined;
      let lossSum = 0;
      let units = 0;
      const computeGradients = async (): Promise<void> => {
        for (let micro = 0; micro < accumulate; micro++) {
          let microUnits = 0;
          const { value, grads } = tf.variableGrads(() => {
            const out = task.trainLoss(rng);
            microUnits = out.units;
            return out.loss;
          }, variableList);
          const named = new Map<string, tf.Tensor>();
          for (const [variableName, grad] of Object.entries(grads)) named.set(keyOfVariable.get(variableName)!, grad);
          if (!summed) {
            summed = named;
          } else {
            for (const [name, grad] of named) {
              const total = tf.add(summed.get(name)!, grad);
              summed.get(name)!.dispose();
              grad.dispose();
              summed.set(name, total);
            }
          }
          try {
            lossSum += (await value.data())[0];
          } finally {
            value.dispose();
          }
          units += microUnits;
        }
      };
      const lastGood = () => (lastCheckpoint ? `the last good checkpoint is ${lastCheckpoint}` : 'no checkpoint was written yet');
      const discardGradients = () => {
        for (const g of summed?.values() ?? []) g.dispose();
      };
      if (onWebGpu) {
        // WebGPU reports a failed allocation or an invalid command asynchronously (the step's results are then zeros
        // or garbage): catch it under error scopes, which close once the losses have been read.
        let thrown: unknown;
        const { error } = await withWebGpuErrors(() => computeGradients().catch((e: unknown) => void (thrown = e)));
        if (thrown !== undefined || error !== undefined) {
          discardGradients();
          await releaseWebGpuBufferPool();
          if (thrown !== undefined) throw thrown;
          throw new M2Error(
            `the GPU reported an error in step ${step}: ${error} (the update was not applied; ${lastGood()}). ` +
              `Hint: --gradient-checkpointing, a smaller --batch-size or a smaller --seq-len, then --resume ${outDir}.`,
            { parameter: 'step', value: step },
          );
        }
      } else {
        try {
          await computeGradients();
        } catch (error) {
          discardGradients();
          throw error;
        }
      }
      const loss = lossSum / accumulate;
      if (!Number.isFinite(loss)) {
        discardGradients();
        const last = lastGood();
        throw new TrainingDivergedError(
          `training loss is ${loss} at step ${step} (the update was not applied; ${last}). Hint: lower --lr (peak ${options.optimizer.lr}) or the warmup/clip settings, then --resume ${outDir}.`,
          { parameter: 'loss', value: loss },
        );
      }
      if (accumulate > 1) {
        for (const [name, g] of summed!) {
          summed!.set(name, tf.div(g, accumulate));
          g.dispose();
        }
      }
      // 2. Clip, 3. update.
      const { norm, clipped } = await clipByGlobalNorm(summed!, clipNorm);
      for (const g of summed!.values()) g.dispose();
      // A time-budgeted run (no step count) decays with the clock, reaching the floor at the deadline.
      const timeFraction = Number.isFinite(steps) || !Number.isFinite(deadline) ? undefined : (Date.now() - startTime) / (deadline - startTime);
      const multiplier = linearWarmupDecay(step, { ...schedule, timeFraction });
      optimizer.applyGradients(clipped, multiplier);
      for (const g of clipped.values()) g.dispose();

      state.step = step;
      state.losses.push(loss);
      state.unitsSeen += units;
      state.seconds = secondsBefore + (Date.now() - startTime) / 1000;
      const memory = tf.memory();
      await metrics.append({
        kind: 'train', step, loss, lr: options.optimizer.lr * multiplier, gradNorm: norm, units,
        seconds: round(state.seconds), tensors: memory.numTensors, bytes: memory.numBytes,
      });
      const elapsed = (Date.now() - startTime) / 1000;
      progress.update(step, loss, (state.unitsSeen - startUnits) / Math.max(elapsed, 1e-9), elapsed);
      options.onStep?.({ step, loss, gradNorm: norm, lr: options.optimizer.lr * multiplier });

      if (options.evalEvery && step % options.evalEvery === 0 && step < steps) {
        const result = await evaluate();
        if (result && options.earlyStopPatience !== undefined) {
          if (result.loss < bestEval - 1e-6) {
            bestEval = result.loss;
            evalsWithoutImprovement = 0;
          } else if (++evalsWithoutImprovement >= options.earlyStopPatience) {
            stopReason = 'early-stop';
          }
        }
      }
      if (options.checkpointEvery && step % options.checkpointEvery === 0) await save();
      if (stopReason === 'early-stop') break;
    }
    progress.stop();

    let final = state.evals.at(-1);
    if (!final || final.step !== state.step) {
      await evaluate();
      final = state.evals.at(-1);
    }
    if (!lastCheckpoint.endsWith(checkpointName(state.step))) await save();
    const seconds = (Date.now() - startTime) / 1000;
    const tail = state.losses.slice(-10);
    const result: TrainingResult = {
      task: task.name,
      steps: state.step,
      stopReason,
      losses: state.losses,
      finalTrainLoss: tail.reduce((a, b) => a + b, 0) / Math.max(1, tail.length),
      evals: state.evals,
      final: final ? Object.fromEntries(Object.entries(final).filter(([k]) => k !== 'step')) : {},
      throughput: (state.unitsSeen - startUnits) / Math.max(seconds, 1e-9),
      unit: task.unit,
      seconds: state.seconds,
      checkpoint: lastCheckpoint,
      ...(resumedFrom !== undefined ? { resumedFrom } : {}),
    };
    await writeRunPlot(join(outDir, 'curves.svg'), task.name, state);
    if (options.jsonFile) {
      await mkdir(resolve(options.jsonFile, '..'), { recursive: true });
      await writeFile(options.jsonFile, `${JSON.stringify(result, null, 2)}\n`);
    }
    return result;
  } finally {
    progress.stop();
    optimizer.dispose();
    lock.release();
  }
}

/** Writes the run's curves (smoothed training loss, evaluation loss) as SVG. */
async function writeRunPlot(path: string, taskName: string, state: TrainerState): Promise<void> {
  const train: Array<[number, number]> = state.losses.map((loss, i) => [i + 1, loss]);
  const series: CurveSeries[] = [{ name: 'train (EMA 0.1)', points: smooth(train) }];
  const evalLoss = state.evals.filter((e) => Number.isFinite(e.loss)).map((e) => [e.step, e.loss] as [number, number]);
  if (evalLoss.length) series.push({ name: 'validation', points: evalLoss });
  await writeCurvesSvg(path, series, { title: `m2 train ${taskName}` });
}

function format(value: number): string {
  if (Number.isInteger(value)) return String(value);
  return Math.abs(value) >= 100 ? value.toFixed(1) : value.toFixed(4);
}

function round(value: number): number {
  return Math.round(value * 1000) / 1000;
}
