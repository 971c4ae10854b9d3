// `m2 train bert-mlm` (masked-LM pretraining, §6.2) and `m2 train classify` (sequence classification, §6.3).
//
// Defaults (flat, commented config). The original recipes: MLM lr 8e-4, betas (0.9, 0.98), eps 1e-6, composer
// decoupled wd 1e-5, warmup 6% then linear decay to 0.02×; GLUE fine-tuning lr ~5e-5 decaying to 0. The tiny
// models here train from scratch on 2 CPU cores, so their learning rates are higher.
const MLM_DEFAULTS = { batchSize: 16, seqLen: 128, lr: 8e-4, weightDecay: 1e-5, steps: 500, evalEvery: 50, checkpointEvery: 100 };
// Classification: 32 × 128 tokens at lr 2e-3 reached 83.5% on all 9,915 held-out IMDB reviews after 15 minutes on
// 2 cores from a fresh tiny model (bench/results/imdb-tiny-15min.json); 16 × 256 at 1e-3 sees half the reviews.
const CLASSIFY_DEFAULTS = { batchSize: 32, seqLen: 128, lr: 2e-3, weightDecay: 1e-5, steps: 2000, evalEvery: 200, checkpointEvery: 200, evalSamples: 2000 };
import type { Command } from 'commander';
import { ConfigError, InvalidArgumentError } from '@monarch-mixer/monarch-core';
import { BertTokenizer, M2Bert, m2BertPresets } from '@monarch-mixer/m2-bert';
import type { M2BertConfigInput } from '@monarch-mixer/m2-bert';
import { addCommonTrainFlags, fraction, integer, mergeResumeOptions } from '../flags.js';
import type { CommonTrainFlags } from '../flags.js';
import { useBackend } from '../backend.js';
import { loadShippedCorpus, readTextFiles, SHIPPED_CORPORA } from '../data/text-corpus.js';
import { loadImdb, readLabelledFile } from '../data/labelled-text.js';
import { copyMatchingWeights, createClassifyTask, createMlmTask, packSequences, withSeededMathRandom } from '../tasks/bert.js';
import { m2FilterGroups } from '../adamw.js';
import { findCheckpoint, resolveModelFolder } from '../checkpoint.js';
import { runTraining } from '../trainer.js';
import { totalSteps, trainerOptions } from '../run-options.js';
import type { TrainTask, TrainingResult } from '../trainer.js';

/** Flags of both BERT commands. */
export interface BertTrainFlags extends CommonTrainFlags {
  preset: string;
  seqLen?: number;
  /** bert-mlm */
  corpus?: string;
  text?: string[];
  maskProbability?: number;
  /** classify */
  data?: string;
  textColumn?: string;
  labelColumn?: string;
  testFraction?: number;
  evalSamples?: number;
}

/** The tiny preset is sized to the run's sequence length, up to the longest M2-BERT checkpoints' context (32k). */
const TINY_MAX_SEQ_LEN = 32768;

/** A fresh model from a preset; `tiny` gets the bert-base-uncased vocabulary and the run's sequence length. */
function presetModel(flags: BertTrainFlags, seqLen: number, extra: M2BertConfigInput = {}): M2Bert {
  if (!Object.hasOwn(m2BertPresets, flags.preset)) {
    throw new ConfigError(`Unknown --preset "${flags.preset}". Expected one of: ${Object.keys(m2BertPresets).join(', ')}.`);
  }
  if (flags.preset === 'tiny' && seqLen > TINY_MAX_SEQ_LEN) {
    throw new InvalidArgumentError(`--seq-len must be ≤ ${TINY_MAX_SEQ_LEN} (the longest M2-BERT context) with --preset tiny, got ${seqLen}.`, {
      parameter: '--seq-len', value: seqLen,
    });
  }
  const sized = flags.preset === 'tiny' ? { vocabSize: 30528, maxPositionEmbeddings: seqLen, longConvLMax: seqLen } : {};
  // M2Bert's initialisers take their seeds from Math.random: seed it from --seed for a reproducible start.
  return withSeededMathRandom(flags.seed, () => new M2Bert({ preset: flags.preset, ...sized, ...extra }));
}

/**
 * The model a run continues from on `--resume`: the checkpoint's own (config.json and weights, as `m2 bert` loads
 * it), whatever the run started from (`--init` or a preset). The trainer loads the same weights again with the
 * optimiser state.
 */
async function checkpointModel(resume: string): Promise<M2Bert> {
  return M2Bert.fromPretrained((await findCheckpoint(resume)).dir);
}

function optimizerFor(model: M2Bert, lr: number, weightDecay: number) {
  const c = model.config;
  const groups = m2FilterGroups();
  groups[0].lr = c.filterPositionLearningRate;
  groups[1].lr = c.filterLearningRate;
  groups[1].weightDecay = c.filterWeightDecay;
  return { lr, weightDecay, beta1: 0.9, beta2: 0.98, epsilon: 1e-6, weightDecayMode: 'composer' as const, groups };
}

async function train(task: TrainTask, flags: BertTrainFlags, defaults: typeof MLM_DEFAULTS, lrFloor: number, command: string): Promise<TrainingResult> {
  try {
    return await runTraining(task, trainerOptions(flags, {
      outDir: flags.out ?? `runs/${command}-${flags.preset}`,
      steps: totalSteps(flags, defaults.steps),
      optimizer: optimizerFor((task as unknown as { model: M2Bert }).model, flags.lr ?? defaults.lr, flags.weightDecay ?? defaults.weightDecay),
      evalEvery: defaults.evalEvery,
      checkpointEvery: defaults.checkpointEvery,
      lrFloor,
      runOptions: { command },
    }));
  } finally {
    task.dispose(); // M2Bert.dispose also frees the cached inference tensors of its head and layers
  }
}

/** Runs `m2 train bert-mlm` with parsed flags. */
export async function trainBertMlm(flags: BertTrainFlags): Promise<TrainingResult> {
  const seqLen = flags.seqLen ?? MLM_DEFAULTS.seqLen;
  const probability = flags.maskProbability ?? 0.3;
  if (!(probability > 0 && probability < 1)) throw new InvalidArgumentError(`--mask-probability must be in (0, 1), got ${probability}.`);
  const corpus = flags.text ? await readTextFiles(flags.text) : loadShippedCorpus(flags.corpus ?? 'sotu');
  await useBackend(flags.backend);
  const model = flags.resume
    ? await checkpointModel(flags.resume)
    : flags.init ? await M2Bert.fromPretrained(await resolveModelFolder(flags.init)) : presetModel(flags, seqLen);
  if (model.config.head !== 'masked-lm') {
    model.dispose();
    const source = flags.resume ? `--resume ${flags.resume}` : `--init ${flags.init}`;
    throw new ConfigError(`${source}: holds a ${model.config.head} model; bert-mlm needs a masked-lm one.`);
  }
  if (seqLen > model.config.maxPositionEmbeddings) {
    model.dispose();
    throw new InvalidArgumentError(`--seq-len must be ≤ ${model.config.maxPositionEmbeddings} (the model's maximum length), got ${seqLen}.`);
  }
  const tokenizer = await BertTokenizer.bertBaseUncased();
  const every = corpus.documents.length >= 20 ? 20 : 0;
  const trainDocs = every ? corpus.documents.filter((_, i) => i % every !== every - 1) : corpus.documents.slice(0, Math.ceil(corpus.documents.length * 0.9));
  const validationDocs = every ? corpus.documents.filter((_, i) => i % every === every - 1) : corpus.documents.slice(trainDocs.length);
  let trainSeqs = packSequences(tokenizer, trainDocs, seqLen);
  let validationSeqs = packSequences(tokenizer, validationDocs, seqLen);
  if (validationSeqs.length === 0 && trainSeqs.length >= 10) {
    validationSeqs = trainSeqs.slice(-Math.ceil(trainSeqs.length / 10));
    trainSeqs = trainSeqs.slice(0, -validationSeqs.length);
  }
  if (trainSeqs.length === 0 || validationSeqs.length === 0) {
    model.dispose();
    throw new InvalidArgumentError(`${corpus.name}: too little text for sequences of ${seqLen} tokens; give more text or a smaller --seq-len.`);
  }
  process.stderr.write(`m2 train bert-mlm: ${trainSeqs.length} train / ${validationSeqs.length} validation sequences of ${seqLen} tokens from ${corpus.name}\n`);
  const task = Object.assign(createMlmTask(model, {
    batchSize: flags.batchSize ?? MLM_DEFAULTS.batchSize, maskProbability: probability, train: trainSeqs, validation: validationSeqs,
    gradientCheckpointing: flags.gradientCheckpointing,
  }), { model });
  return train(task, flags, MLM_DEFAULTS, 0.02, 'bert-mlm');
}

/** Runs `m2 train classify` with parsed flags. */
export async function trainClassify(flags: BertTrainFlags): Promise<TrainingResult> {
  const seqLen = flags.seqLen ?? CLASSIFY_DEFAULTS.seqLen;
  const data = flags.data
    ? await readLabelledFile(flags.data, { textColumn: flags.textColumn, labelColumn: flags.labelColumn, testFraction: flags.testFraction, seed: flags.seed })
    : loadImdb(flags.seed, flags.testFraction ?? 0.2);
  await useBackend(flags.backend);
  const head = { head: 'sequence-classification' as const, labels: data.labels, poolAll: true };
  let model: M2Bert;
  if (flags.resume) {
    model = await checkpointModel(flags.resume);
    const { head, labels } = model.config;
    if (head !== 'sequence-classification' || labels.length !== data.labels.length) {
      model.dispose();
      throw new ConfigError(
        `--resume ${flags.resume}: holds a ${head} model with ${labels.length} labels; classify on ${data.name} needs a sequence-classification model with ${data.labels.length}.`,
      );
    }
  } else if (flags.init) {
    const pretrained = await M2Bert.fromPretrained(await resolveModelFolder(flags.init));
    try {
      model = new M2Bert({ ...pretrained.config, ...head, problemType: 'single_label_classification' });
      copyMatchingWeights(pretrained, model);
    } finally {
      pretrained.dispose();
    }
  } else {
    model = presetModel(flags, seqLen, { ...head, problemType: 'single_label_classification' });
  }
  process.stderr.write(
    `m2 train classify: ${data.name}: ${data.train.length} train / ${data.test.length} test examples, labels ${data.labels.join(', ')}\n`,
  );
  let task: TrainTask;
  try {
    task = Object.assign(createClassifyTask(model, await BertTokenizer.bertBaseUncased(), data, {
      batchSize: flags.batchSize ?? CLASSIFY_DEFAULTS.batchSize, seqLen, evalSamples: flags.evalSamples ?? CLASSIFY_DEFAULTS.evalSamples,
      gradientCheckpointing: flags.gradientCheckpointing,
    }), { model });
  } catch (error) {
    model.dispose();
    throw error;
  }
  return train(task, flags, CLASSIFY_DEFAULTS, 0, 'classify');
}

function report(result: TrainingResult): string {
  const metrics = Object.entries(result.final).map(([k, v]) => `${k} ${v.toFixed(4)}`).join(', ');
  return `trained ${result.steps} steps (${result.stopReason}) in ${result.seconds.toFixed(0)} s, ${result.throughput.toFixed(1)} ${result.unit}/s; ` +
    `train loss ${result.finalTrainLoss.toFixed(4)}; held-out ${metrics}\ncheckpoint: ${result.checkpoint}\n`;
}

async function resumed(options: BertTrainFlags, command: Command): Promise<BertTrainFlags> {
  if (!options.resume) return options;
  const found = await findCheckpoint(options.resume);
  const flags = mergeResumeOptions(found.state.runOptions, options, command);
  flags.out = options.out ?? found.runDir;
  return flags;
}

/** Registers `m2 train bert-mlm` and `m2 train classify`. */
export function registerBertTrainCommands(group: Command): void {
  const presets = Object.keys(m2BertPresets).join(', ');
  const mlm = group
    .command('bert-mlm')
    .description('Masked-LM pretraining of M2-BERT (30% masking, 80/10/10) on the shipped corpus or your text files')
    .option('--preset <name>', `size preset: ${presets}`, 'tiny')
    .option('--corpus <name>', `shipped corpus: ${SHIPPED_CORPORA.join(', ')}`, 'sotu')
    .option('--text <files...>', 'train on these UTF-8 text files instead')
    .option('--seq-len <n>', `tokens per sequence (default ${MLM_DEFAULTS.seqLen})`, integer('--seq-len', 8))
    .option('--mask-probability <p>', 'fraction of tokens selected for prediction', fraction('--mask-probability'), 0.3);
  addCommonTrainFlags(mlm).action(async (options: BertTrainFlags, command: Command) => {
    process.stdout.write(report(await trainBertMlm(await resumed(options, command))));
  });

  const classify = group
    .command('classify')
    .description('Fine-tune M2-BERT for sequence classification (IMDB by default, or your CSV/JSONL)')
    .option('--preset <name>', `size preset when not --init: ${presets}`, 'tiny')
    .option('--data <file>', 'a CSV (with header) or JSONL file of labelled texts (default: IMDB reviews)')
    .option('--text-column <name>', 'column/key of the text', 'text')
    .option('--label-column <name>', 'column/key of the label', 'label')
    .option('--test-fraction <x>', 'held-out fraction (stratified, seeded)', fraction('--test-fraction'), 0.2)
    .option('--eval-samples <n>', 'held-out examples per evaluation', integer('--eval-samples', 1))
    .option('--seq-len <n>', `tokens per example (default ${CLASSIFY_DEFAULTS.seqLen})`, integer('--seq-len', 8));
  addCommonTrainFlags(classify).action(async (options: BertTrainFlags, command: Command) => {
    process.stdout.write(report(await trainClassify(await resumed(options, command))));
  });
}
