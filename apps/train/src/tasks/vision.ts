// `m2 train vision`: image classification with the M2 vision mixer (default) or the attention ViT baseline of the
// same shape, on MNIST, Fashion-MNIST or a user image folder, through the generic trainer. `--compare` trains both
// on the same data and time budget and writes a table, a JSON file and an SVG plot (bench/results/vision-*).
//
// Defaults (flat, commented config):
const VISION_DEFAULTS = {
  batchSize: 128, //   images per micro-batch
  lr: 3e-3, //         peak learning rate (AdamW; the M2 filter groups keep their own, §2.11)
  weightDecay: 0.05, // decoupled, PyTorch scaling
  epochs: 3, //        when neither --steps, --epochs nor --max-minutes is given
  cropPadding: 0, //   random-crop augmentation off: a CPU budget of 1–3 epochs underfits, so augmentation only
  //                   slows it (MNIST, 10 min: 98.26% without, 97.74% with padding 2 and lr 2e-3); use
  //                   --crop-padding 2 (and --flip for non-digits) for long runs
  evalBatch: 500, //   images per evaluation forward
};
import * as tf from '@tensorflow/tfjs-core';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { loadavg } from 'node:os';
import type { Command } from 'commander';
import { ConfigError, InvalidArgumentError, setupBackend } from '@monarch-mixer/monarch-core';
import {
  loadImageClassifier, M2Vision, m2VisionPresets, resolveM2VisionConfig, VitBaseline, vitBaselineConfigFor,
} from '@monarch-mixer/m2-vision';
import type { ImageClassifier, M2VisionConfig } from '@monarch-mixer/m2-vision';
import type { TrainTask, TrainingResult } from '../trainer.js';
import { runTraining } from '../trainer.js';
import { trainerOptions } from '../run-options.js';
import { TrainRng } from '../rng.js';
import { m2FilterGroups } from '../adamw.js';
import { addCommonTrainFlags, ATTENTION_CHECKPOINTING_NOTE, integer, mergeResumeOptions } from '../flags.js';
import type { CommonTrainFlags } from '../flags.js';
import { useBackend } from '../backend.js';
import { findCheckpoint } from '../checkpoint.js';
import { renderCurvesSvg, smooth } from '../metrics.js';
import { loadImageDataset, makeBatch } from '../data/images.js';
import type { AugmentOptions, ImageDataset, ImageSplits } from '../data/images.js';

/** Swaps the last two axes. */
function swapLastAxes(t: tf.Tensor): tf.Tensor {
  const rank = t.rank;
  return tf.transpose(t, [...Array.from({ length: rank - 2 }, (_, i) => i), rank - 1, rank - 2]);
}

let transposeFreeGradient = false;

/**
 * Replaces tfjs's BatchMatMul gradient by an equal one whose matMuls take no `transposeA/B` flags: the operands
 * are transposed explicitly first. On wasm a flagged matMul leaves XNNPACK's fast path (toolchain.md §6) and the
 * gradient of a dense layer ran 4× slower than its forward. Same values on every backend; only when the batch
 * dimensions of both operands agree (tfjs's own gradient handles broadcasting, and is kept for it).
 */
export function useTransposeFreeMatMulGradient(): void {
  if (transposeFreeGradient) return;
  const original = tf.getGradient(tf.BatchMatMul)!;
  tf.registerGradient({
    kernelName: tf.BatchMatMul,
    inputsToSave: ['a', 'b'],
    gradFunc: (dy, saved, attrs) => {
      const [a, b] = saved;
      const g = dy as tf.Tensor;
      if (a.rank !== b.rank || a.shape.slice(0, -2).some((size, i) => size !== b.shape[i])) return original.gradFunc(dy, saved, attrs);
      const { transposeA, transposeB } = attrs as unknown as { transposeA: boolean; transposeB: boolean };
      const T = swapLastAxes;
      if (!transposeA && !transposeB) return { a: () => tf.matMul(g, T(b)), b: () => tf.matMul(T(a), g) };
      if (!transposeA && transposeB) return { a: () => tf.matMul(g, b), b: () => tf.matMul(T(g), a) };
      if (transposeA && !transposeB) return { a: () => tf.matMul(b, T(g)), b: () => tf.matMul(a, g) };
      return { a: () => tf.matMul(T(b), T(g)), b: () => tf.matMul(T(g), T(a)) };
    },
  });
  transposeFreeGradient = true;
}

/** Options of {@link createVisionTask}. */
export interface VisionTaskOptions {
  /** Images per micro-batch. */
  batchSize: number;
  /** Augmentation of training images (none when undefined). */
  augment?: AugmentOptions;
  /** Images per evaluation forward. Default 500. */
  evalBatch?: number;
  /** Gradient checkpointing in the training loss (M2Vision only; the ViT baseline ignores it). Default false. */
  gradientCheckpointing?: boolean;
}

/** Position in the training data: epoch, cursor in the epoch's order, and the seed of that order. */
interface VisionDataState {
  epoch: number;
  cursor: number;
  orderSeed: number;
}

/**
 * Accuracy and mean cross-entropy of a model on a whole data set (no augmentation).
 * @returns `{ loss, accuracy }`.
 */
export async function evaluateClassifier(model: ImageClassifier, dataset: ImageDataset, batchSize = 500): Promise<{ loss: number; accuracy: number }> {
  let lossSum = 0;
  let correct = 0;
  for (let first = 0; first < dataset.count; first += batchSize) {
    const indices = Array.from({ length: Math.min(batchSize, dataset.count - first) }, (_, i) => first + i);
    const { images, labels } = makeBatch(dataset, indices);
    const [loss, hits] = tf.tidy(() => {
      const logits = model.logits(images);
      const logProbs = tf.logSoftmax(logits);
      const picked = tf.sum(tf.mul(logProbs, tf.oneHot(labels, logits.shape[1])), 1);
      return [tf.neg(tf.sum(picked)), tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), labels), 'float32'))];
    });
    lossSum += (await loss.data())[0];
    correct += (await hits.data())[0];
    tf.dispose([images, labels, loss, hits]);
  }
  return { loss: lossSum / dataset.count, accuracy: correct / dataset.count };
}

/**
 * Builds the `vision` {@link TrainTask}: shuffled epochs (order drawn from the trainer's RNG), optional
 * augmentation, evaluation on the whole test split.
 */
export function createVisionTask(model: ImageClassifier, data: ImageSplits, options: VisionTaskOptions): TrainTask {
  const { train, test } = data;
  const { imageSize, channels } = model.config;
  if (train.imageSize !== imageSize || train.channels !== channels) {
    throw new ConfigError(`the data has ${train.imageSize}×${train.imageSize}×${train.channels} images but the model expects ${imageSize}×${imageSize}×${channels}.`);
  }
  const maxLabel = Math.max(...train.labels, ...test.labels);
  if (maxLabel >= model.config.numClasses) {
    throw new ConfigError(`the data has ${maxLabel + 1} classes but the model has ${model.config.numClasses}.`);
  }
  const all = model.namedWeights();
  const trainable = new Map([...all].filter(([, v]) => v.trainable));
  let state: VisionDataState = { epoch: 0, cursor: 0, orderSeed: -1 };
  let order: number[] = [];
  const reorder = (): void => {
    const random = new TrainRng(state.orderSeed);
    order = Array.from({ length: train.count }, (_, i) => i);
    random.shuffle(order);
  };
  return {
    name: 'vision',
    unit: 'samples',
    parameters: () => trainable,
    savedWeights: () => all,
    modelConfig: () => ({ modelType: model.modelType, format: 1, config: { ...model.config } }),
    trainLoss(rng: TrainRng) {
      if (state.orderSeed < 0 || state.cursor + options.batchSize > train.count) {
        state = { epoch: state.orderSeed < 0 ? 0 : state.epoch + 1, cursor: 0, orderSeed: rng.seed() };
        reorder();
      }
      const indices = order.slice(state.cursor, state.cursor + options.batchSize);
      state.cursor += options.batchSize;
      const augment = options.augment ? { options: options.augment, random: () => rng.next() } : undefined;
      const { images, labels } = makeBatch(train, indices, augment);
      const loss = model.loss(images, labels, 0, { gradientCheckpointing: options.gradientCheckpointing });
      tf.dispose([images, labels]);
      return { loss, units: indices.length };
    },
    evaluate: () => evaluateClassifier(model, test, options.evalBatch ?? VISION_DEFAULTS.evalBatch),
    dataState: () => ({ ...state }),
    restoreDataState(saved: unknown) {
      state = { ...(saved as VisionDataState) };
      if (state.orderSeed >= 0) reorder();
    },
    dispose: () => model.dispose(),
  };
}

/** Flags of `m2 train vision`. */
export interface VisionTrainFlags extends CommonTrainFlags {
  model: string;
  preset: string;
  dataset: string;
  epochs?: number;
  cropPadding?: number;
  flip: boolean;
  resize: boolean;
  compare: boolean;
  threads?: number;
}

/**
 * The model for `--model m2|attention`: on `--resume` the checkpoint's (its config.json and weights; the trainer
 * loads the weights again with the optimiser state), from `--init DIR`, else from a config.
 */
async function buildModel(kind: string, config: M2VisionConfig, flags: VisionTrainFlags): Promise<ImageClassifier> {
  if (kind !== 'm2' && kind !== 'attention') {
    throw new InvalidArgumentError(`--model must be m2 or attention, got "${kind}".`, { parameter: '--model', value: kind });
  }
  const source = flags.resume
    ? { flag: '--resume', path: flags.resume, folder: (await findCheckpoint(flags.resume)).dir }
    : flags.init ? { flag: '--init', path: flags.init, folder: flags.init } : undefined;
  if (source) {
    const model = await loadImageClassifier(source.folder);
    const expected = kind === 'm2' ? 'm2-vision' : 'vit-baseline';
    if (model.modelType !== expected) {
      model.dispose();
      throw new ConfigError(`${source.flag} ${source.path}: holds a ${model.modelType} model, but --model ${kind} needs ${expected}.`);
    }
    return model;
  }
  return kind === 'm2' ? new M2Vision(config, { seed: flags.seed }) : new VitBaseline(vitBaselineConfigFor(config), { seed: flags.seed });
}

/** Config of the preset, adapted to the data (channels, image size of a folder, classes and their names). */
function configFor(flags: VisionTrainFlags, data: ImageSplits): M2VisionConfig {
  if (!Object.hasOwn(m2VisionPresets, flags.preset)) {
    throw new ConfigError(`Unknown --preset "${flags.preset}". Expected one of: ${Object.keys(m2VisionPresets).join(', ')}.`);
  }
  const preset = resolveM2VisionConfig({ preset: flags.preset });
  const { labelNames } = data.train;
  return resolveM2VisionConfig({ ...preset, numClasses: labelNames.length, labels: labelNames });
}

/** One model's run: its parameter count, result, and the final test metrics. */
export interface VisionRun {
  /** `m2` or `attention`. */
  model: string;
  /** Trainable parameters. */
  params: number;
  /** The trainer's result. */
  result: TrainingResult;
  /** Final test accuracy in [0, 1]. */
  testAccuracy: number;
  /** Final test cross-entropy. */
  testLoss: number;
  /** Seconds of training. */
  trainSeconds: number;
  /** CPU seconds this process used while training (robust to other processes sharing the machine). */
  cpuSeconds: number;
  /** The machine's 1-minute load average at the start and at the end of training (contention). */
  loadAverage: [number, number];
}

/** Trains one model kind on loaded data. */
async function trainOne(kind: string, data: ImageSplits, flags: VisionTrainFlags, jsonFile: string | undefined): Promise<VisionRun> {
  const config = flags.init || flags.resume ? resolveM2VisionConfig({ preset: flags.preset }) : configFor(flags, data);
  const model = await buildModel(kind, config, flags);
  const batchSize = flags.batchSize ?? VISION_DEFAULTS.batchSize;
  const stepsPerEpoch = Math.floor(data.train.count / batchSize);
  const epochs = flags.epochs ?? (flags.steps === undefined && flags.maxMinutes === undefined ? VISION_DEFAULTS.epochs : undefined);
  const steps = flags.steps ?? (epochs !== undefined ? Math.max(1, Math.round(epochs * stepsPerEpoch)) : Infinity);
  const cropPadding = flags.cropPadding ?? VISION_DEFAULTS.cropPadding;
  const augment = cropPadding > 0 || flags.flip ? { cropPadding, horizontalFlip: flags.flip } : undefined;
  const task = createVisionTask(model, data, { batchSize, augment, gradientCheckpointing: flags.gradientCheckpointing });
  const params = model.countParameters();
  const outDir = flags.out ? (flags.compare ? join(flags.out, kind) : flags.out) : `runs/vision-${kind}-${flags.preset}-${datasetName(flags.dataset)}`;
  process.stderr.write(
    `m2 train vision: ${kind === 'm2' ? 'M2 vision mixer' : 'attention ViT'} (${flags.resume ? `resuming ${flags.resume}` : flags.init ?? `preset ${flags.preset}`}), ` +
      `${params.toLocaleString('en-US')} parameters; ${flags.dataset}: ${data.train.count} train / ${data.test.count} test images; ` +
      `${Number.isFinite(steps) ? `${steps} steps (${(steps / stepsPerEpoch).toFixed(2)} epochs)` : 'until --max-minutes'}; out ${outDir}\n`,
  );
  if (flags.gradientCheckpointing && kind !== 'm2') process.stderr.write(ATTENTION_CHECKPOINTING_NOTE);
  const cpuStart = process.cpuUsage();
  const loadStart = loadavg()[0];
  try {
    const result = await runTraining(task, trainerOptions(flags, {
      outDir,
      steps,
      optimizer: {
        lr: flags.lr ?? VISION_DEFAULTS.lr, weightDecay: flags.weightDecay ?? VISION_DEFAULTS.weightDecay,
        beta1: 0.9, beta2: 0.999, epsilon: 1e-8, groups: kind === 'm2' ? m2FilterGroups() : [],
      },
      warmupSteps: Number.isFinite(steps) ? Math.max(1, Math.round(0.03 * steps)) : 100,
      evalEvery: 0,
      checkpointEvery: stepsPerEpoch,
      jsonFile: null,
      runOptions: { command: 'vision', model: kind },
    }));
    const run: VisionRun = {
      model: kind,
      params,
      result,
      testAccuracy: result.final.accuracy,
      testLoss: result.final.loss,
      trainSeconds: result.seconds,
      cpuSeconds: cpuSecondsSince(cpuStart),
      loadAverage: [loadStart, loadavg()[0]],
    };
    if (jsonFile) await writeJson(jsonFile, summary(run, flags));
    return run;
  } finally {
    task.dispose();
  }
}

function cpuSecondsSince(start: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1e6;
}

function datasetName(dataset: string): string {
  return dataset === 'mnist' || dataset === 'fashion-mnist' ? dataset : 'folder';
}

/** The `--json` contents of one run. */
function summary(run: VisionRun, flags: VisionTrainFlags): Record<string, unknown> {
  return {
    test_accuracy: run.testAccuracy,
    test_loss: run.testLoss,
    params: run.params,
    train_seconds: run.trainSeconds,
    model: run.model,
    dataset: flags.dataset,
    preset: flags.preset,
    steps: run.result.steps,
    stop_reason: run.result.stopReason,
    images_per_second: run.result.throughput,
    final_train_loss: run.result.finalTrainLoss,
    cpu_seconds: run.cpuSeconds,
    load_average: run.loadAverage,
    losses: run.result.losses,
    evals: run.result.evals,
    checkpoint: run.result.checkpoint,
    backend: flags.backend,
    lr: flags.lr ?? VISION_DEFAULTS.lr,
    crop_padding: flags.cropPadding ?? VISION_DEFAULTS.cropPadding,
    threads: flags.threads,
  };
}

async function writeJson(path: string, value: unknown): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, `${JSON.stringify(value, null, 2)}\n`);
}

/**
 * Runs `m2 train vision` with parsed flags: one model, or with `--compare` the M2 model and the attention ViT on
 * the same data and budget (then a table, JSON and SVG under bench/results/). With `resume`, the model is the
 * checkpoint's (its config.json and weights); `init` is then only the record of how the run began.
 * @returns One run, or both.
 */
export async function trainVision(flags: VisionTrainFlags): Promise<VisionRun[]> {
  if (flags.compare && (flags.resume || flags.init)) throw new InvalidArgumentError('--compare trains both models from scratch; drop --resume/--init.');
  if (flags.threads !== undefined && (flags.backend === 'wasm' || flags.backend === 'auto')) await setupBackend('wasm', { threads: flags.threads });
  const backend = await useBackend(flags.backend);
  useTransposeFreeMatMulGradient();
  const preset = m2VisionPresets[flags.preset as keyof typeof m2VisionPresets];
  if (!preset) throw new ConfigError(`Unknown --preset "${flags.preset}". Expected one of: ${Object.keys(m2VisionPresets).join(', ')}.`);
  const base = resolveM2VisionConfig({ preset: flags.preset });
  const seedRandom = new TrainRng(flags.seed);
  const data = loadImageDataset(flags.dataset, { imageSize: base.imageSize, channels: base.channels, resize: flags.resize, random: () => seedRandom.next() });
  process.stderr.write(`m2 train vision: backend ${backend.description}\n`);
  if (!flags.compare) return [await trainOne(flags.model, data, flags, flags.json)];
  const runs: VisionRun[] = [];
  for (const kind of ['m2', 'attention']) runs.push(await trainOne(kind, data, flags, undefined));
  await writeComparison(runs, flags);
  return runs;
}

/** Writes bench/results/vision-<dataset>.{json,md,svg} (or next to `--json`) for a `--compare` run. */
async function writeComparison(runs: VisionRun[], flags: VisionTrainFlags): Promise<void> {
  const jsonPath = flags.json ?? join('bench', 'results', `vision-${datasetName(flags.dataset)}.json`);
  await writeVisionReport(runs.map((run) => summary(run, flags)), jsonPath.replace(/\.json$/, ''));
}

/**
 * Writes `<stem>.json`, `<stem>.md` (table) and `<stem>.svg` (training-loss curves) comparing the M2 run and the
 * attention run, from the `--json` summaries of two `m2 train vision` runs on the same data and budget.
 * @param runs - Summaries with `model` m2 and attention.
 * @param stem - Output path without extension, e.g. `bench/results/vision-mnist`.
 * @throws InvalidArgumentError unless there is one m2 run and one attention run on the same dataset.
 */
export async function writeVisionReport(runs: Array<Record<string, unknown>>, stem: string): Promise<void> {
  const m2 = runs.find((r) => r.model === 'm2');
  const attention = runs.find((r) => r.model === 'attention');
  if (!m2 || !attention || m2.dataset !== attention.dataset) {
    throw new InvalidArgumentError('vision report: needs one m2 run and one attention run on the same dataset.');
  }
  const num = (run: Record<string, unknown>, key: string): number => Number(run[key]);
  const ratio = num(m2, 'params') / num(attention, 'params');
  await writeJson(`${stem}.json`, {
    dataset: m2.dataset,
    preset: m2.preset,
    param_ratio: ratio,
    m2_at_least_attention: num(m2, 'test_accuracy') >= num(attention, 'test_accuracy'),
    runs: [m2, attention],
  });
  const row = (run: Record<string, unknown>) => {
    const load = run.load_average as number[] | undefined;
    return `| ${run.model === 'm2' ? 'M2 vision mixer' : 'attention ViT'} | ${num(run, 'params').toLocaleString('en-US')} | ` +
      `${(100 * num(run, 'test_accuracy')).toFixed(2)}% | ${num(run, 'test_loss').toFixed(4)} | ${num(run, 'steps')} | ` +
      `${(num(run, 'train_seconds') / 60).toFixed(1)} | ${(num(run, 'cpu_seconds') / 60).toFixed(1)} | ${num(run, 'images_per_second').toFixed(1)} | ` +
      `${load ? load.map((v) => v.toFixed(1)).join(' → ') : '?'} |`;
  };
  const markdown = [
    `# ${String(m2.dataset)}: M2 vision mixer vs attention ViT (preset ${String(m2.preset)})`,
    '',
    `Same data (full train split, ${Number(m2.crop_padding ?? 0) > 0 ? `random crops with padding ${String(m2.crop_padding)}` : 'no augmentation'}), ` +
      `optimiser (AdamW, lr ${String(m2.lr ?? '?')}, wd 0.05, warmup, linear decay),`,
    `batch size, budget (${m2.stop_reason === 'time' ? 'minutes of training: the faster model takes more steps' : 'number of steps'}) and backend (${String(m2.backend)}, ${String(m2.threads ?? 'default')} thread(s)); test accuracy on the full test split.`,
    'Wall minutes were measured on a 2-vCPU machine shared with other jobs (load average at start → end in the last',
    'column), so they are pessimistic; CPU minutes count only this process.',
    '',
    '| model | parameters | test accuracy | test loss | steps | wall min | CPU min | images/s | load avg |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
    row(m2),
    row(attention),
    '',
    `Parameter ratio M2 / attention: ${ratio.toFixed(3)}. M2 accuracy ${num(m2, 'test_accuracy') >= num(attention, 'test_accuracy') ? '≥' : '<'} attention accuracy.`,
    '',
  ].join('\n');
  await writeFile(`${stem}.md`, markdown);
  const series = [m2, attention].map((run) => ({
    name: `${run.model === 'm2' ? 'M2' : 'attention ViT'} (${(num(run, 'params') / 1000).toFixed(0)}k params, test ${(100 * num(run, 'test_accuracy')).toFixed(2)}%)`,
    points: smooth(((run.losses as number[] | undefined) ?? []).map((loss, i) => [i + 1, loss] as [number, number]), 0.05),
  }));
  await writeFile(`${stem}.svg`, await renderCurvesSvg(series, { title: `${String(m2.dataset)}: training loss (EMA 0.05)`, xTitle: 'step', yTitle: 'cross-entropy (nats)' }));
}

/** Registers `m2 train vision`. */
export function registerVisionTrainCommand(group: Command): void {
  const command = group
    .command('vision')
    .description('Train the M2 vision mixer (or the attention ViT baseline) on MNIST, Fashion-MNIST or an image folder')
    .option('--model <kind>', 'm2 (M2 vision mixer) or attention (ViT baseline of the same shape)', 'm2')
    .option('--preset <name>', `size preset: ${Object.keys(m2VisionPresets).join(', ')}`, 'tiny')
    .option('--dataset <name>', 'mnist, fashion-mnist, or a folder with one sub-folder of PNG/JPEG images per class', 'mnist')
    .option('--epochs <n>', `passes over the training images (default ${VISION_DEFAULTS.epochs} without --steps/--max-minutes)`, positiveNumber('--epochs'))
    .option('--crop-padding <n>', `random-crop augmentation padding in pixels, 0 = off (default ${VISION_DEFAULTS.cropPadding})`, integer('--crop-padding', 0))
    .option('--flip', 'random horizontal flips (not for digits or text)', false)
    .option('--resize', 'resize folder images of another size instead of failing', false)
    .option('--threads <n>', 'wasm worker threads (default: one per CPU)', integer('--threads', 1))
    .option('--compare', 'train M2 and the attention ViT on the same budget; write bench/results/vision-<dataset>.{json,md,svg}', false);
  registerVisionReportCommand(group);
  addCommonTrainFlags(command).action(async (options: VisionTrainFlags, cmd: Command) => {
    let flags = options;
    if (options.resume) {
      const found = await findCheckpoint(options.resume);
      flags = mergeResumeOptions(found.state.runOptions, options, cmd);
      flags.out = options.out ?? found.runDir;
    }
    const runs = await trainVision(flags);
    for (const run of runs) {
      process.stdout.write(
        `${run.model}: ${run.params.toLocaleString('en-US')} parameters, ${run.result.steps} steps (${run.result.stopReason}) in ` +
          `${run.trainSeconds.toFixed(0)} s, ${run.result.throughput.toFixed(0)} images/s; test accuracy ${(100 * run.testAccuracy).toFixed(2)}%, ` +
          `test loss ${run.testLoss.toFixed(4)}; checkpoint ${run.result.checkpoint}\n`,
      );
    }
  });
}

/** Registers `m2 train vision-report`: the comparison table and plot from two `--json` files. */
export function registerVisionReportCommand(group: Command): void {
  group
    .command('vision-report')
    .description('Compare an M2 and an attention `m2 train vision --json` run: writes STEM.json, STEM.md and STEM.svg')
    .argument('<runs...>', 'the two --json files')
    .requiredOption('--out <stem>', 'output path without extension, e.g. bench/results/vision-mnist')
    .action(async (files: string[], options: { out: string }) => {
      const runs = await Promise.all(files.map(async (file) => JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>));
      await writeVisionReport(runs, options.out);
      process.stdout.write(`wrote ${options.out}.json, ${options.out}.md, ${options.out}.svg\n`);
    });
}

function positiveNumber(flag: string) {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${flag} must be a number > 0, got "${value}".`, { parameter: flag, value });
    return n;
  };
}

