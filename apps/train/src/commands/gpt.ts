// `m2 train gpt`: causal language modelling with M2-GPT (default) or the attention baseline of the same
// parameter count, on the shipped State of the Union corpus or the user's text files; prints a sample at the end.
//
// Defaults of the tiny preset (flat, commented config):
const GPT_DEFAULTS = {
  batchSize: 8, //   sequences per micro-batch
  seqLen: 64, //     tokens per sequence (≤ the preset's maxLength 256); short, so a 2-minute CPU run makes many updates
  lr: 2e-3, //       peak learning rate (small model, few steps); the M2 filter groups keep their own (§2.11)
  weightDecay: 0.1, // decoupled, PyTorch scaling (the safari GPT/Hyena template: wd 0.1)
  steps: 1000, //    when neither --steps nor --max-minutes is given
  evalEvery: 50,
  checkpointEvery: 100,
};
import * as tf from '@tensorflow/tfjs-core';
import type { Command } from 'commander';
import { ConfigError, InvalidArgumentError } from '@monarch-mixer/monarch-core';
import { BaselineGpt, baselineGptConfigFor, generate, M2Gpt, m2GptPresets, readCheckpointConfig, resolveM2GptConfig } from '@monarch-mixer/m2-gpt';
import type { M2GptConfig } from '@monarch-mixer/m2-gpt';
import { addCommonTrainFlags, ATTENTION_CHECKPOINTING_NOTE, integer, mergeResumeOptions, number } from '../flags.js';
import type { CommonTrainFlags } from '../flags.js';
import { useBackend } from '../backend.js';
import { loadShippedCorpus, readTextFiles, SHIPPED_CORPORA } from '../data/text-corpus.js';
import { asTrainable, checkSequenceLength, createGptTask, tokenizeCorpus } from '../tasks/gpt.js';
import type { TrainableCausalLm } from '../tasks/gpt.js';
import { m2FilterGroups } from '../adamw.js';
import { findCheckpoint, loadWeightsInto, resolveModelFolder } from '../checkpoint.js';
import { runTraining } from '../trainer.js';
import { totalSteps, trainerOptions } from '../run-options.js';
import type { TrainingResult } from '../trainer.js';

/** Flags of `m2 train gpt`. */
export interface GptTrainFlags extends CommonTrainFlags {
  model: string;
  preset: string;
  corpus: string;
  text?: string[];
  seqLen?: number;
  prompt: string;
  sampleTokens: number;
  temperature: number;
}

/**
 * Builds the model: on `--resume` from the checkpoint's `config.json` (the trainer then loads its weights), from
 * `--init DIR` (its config.json and weights), else from the preset.
 */
async function buildModel(flags: GptTrainFlags): Promise<TrainableCausalLm> {
  if (flags.model !== 'm2' && flags.model !== 'attention') {
    throw new InvalidArgumentError(`--model must be m2 or attention, got "${flags.model}".`, { parameter: '--model', value: flags.model });
  }
  let m2Config: M2GptConfig;
  const source = flags.resume
    ? { flag: '--resume', path: flags.resume, folder: (await findCheckpoint(flags.resume)).dir }
    : flags.init ? { flag: '--init', path: flags.init, folder: await resolveModelFolder(flags.init) } : undefined;
  if (source) {
    const file = await readCheckpointConfig(source.folder);
    const expected = flags.model === 'm2' ? 'm2-gpt' : 'baseline-gpt';
    if (file.modelType !== expected) {
      throw new ConfigError(`${source.flag} ${source.path}: holds a ${file.modelType} model, but --model ${flags.model} needs ${expected}.`);
    }
    const model = flags.model === 'm2'
      ? asTrainable(new M2Gpt(file.config as Partial<M2GptConfig>, { seed: flags.seed }))
      : asTrainable(new BaselineGpt(file.config as never, { seed: flags.seed }));
    if (!flags.resume) {
      try {
        await loadWeightsInto(source.folder, model.checkpointWeights);
      } catch (error) {
        model.dispose();
        throw error;
      }
    }
    return model;
  }
  if (!Object.hasOwn(m2GptPresets, flags.preset)) {
    throw new ConfigError(`Unknown --preset "${flags.preset}". Expected one of: ${Object.keys(m2GptPresets).join(', ')}.`);
  }
  m2Config = resolveM2GptConfig({ preset: flags.preset });
  return flags.model === 'm2'
    ? asTrainable(new M2Gpt(m2Config, { seed: flags.seed }))
    : asTrainable(new BaselineGpt(baselineGptConfigFor(m2Config), { seed: flags.seed }));
}

/**
 * Runs `m2 train gpt` with parsed flags (also used by the bench's quality comparison). With `resume`, the model is
 * the checkpoint's (its config.json and weights); `init` is then only the record of how the run began.
 * @returns The training result and the printed sample.
 */
export async function trainGpt(flags: GptTrainFlags): Promise<{ result: TrainingResult; sample: string }> {
  if (flags.text && flags.text.length === 0) throw new InvalidArgumentError('--text needs at least one file.');
  if (!flags.text && !(SHIPPED_CORPORA as readonly string[]).includes(flags.corpus)) {
    throw new InvalidArgumentError(`--corpus must be one of ${SHIPPED_CORPORA.join(', ')}, got "${flags.corpus}".`);
  }
  const seqLen = flags.seqLen ?? GPT_DEFAULTS.seqLen;
  const batchSize = flags.batchSize ?? GPT_DEFAULTS.batchSize;
  const corpus = flags.text ? await readTextFiles(flags.text) : loadShippedCorpus(flags.corpus);
  const backend = await useBackend(flags.backend);
  const model = await buildModel(flags);
  let task: ReturnType<typeof createGptTask>;
  let splits: ReturnType<typeof tokenizeCorpus>;
  try {
    checkSequenceLength(seqLen, model.maxLength);
    splits = tokenizeCorpus(corpus, seqLen);
    task = createGptTask(model, splits, { batchSize, seqLen, gradientCheckpointing: flags.gradientCheckpointing });
  } catch (error) {
    model.dispose();
    throw error;
  }
  const steps = totalSteps(flags, GPT_DEFAULTS.steps);
  const lr = flags.lr ?? GPT_DEFAULTS.lr;
  const outDir = flags.out ?? `runs/gpt-${flags.model}-${flags.preset}`;
  process.stderr.write(
    `m2 train gpt: ${flags.model === 'm2' ? 'M2-GPT' : 'attention GPT'} (${flags.resume ? `resuming ${flags.resume}` : flags.init ?? `preset ${flags.preset}`}), ` +
      `${countParameters(task.parameters()).toLocaleString('en-US')} parameters; corpus ${corpus.name}: ` +
      `${splits.train.length.toLocaleString('en-US')} train / ${splits.validation.length.toLocaleString('en-US')} validation tokens; ` +
      `backend ${backend.description}; out ${outDir}\n`,
  );
  if (flags.gradientCheckpointing && flags.model !== 'm2') process.stderr.write(ATTENTION_CHECKPOINTING_NOTE);
  try {
    const result = await runTraining(task, trainerOptions(flags, {
      outDir,
      steps,
      optimizer: {
        lr, weightDecay: flags.weightDecay ?? GPT_DEFAULTS.weightDecay, beta1: 0.9, beta2: 0.98, epsilon: 1e-6,
        groups: flags.model === 'm2' ? m2FilterGroups() : [],
      },
      evalEvery: GPT_DEFAULTS.evalEvery,
      checkpointEvery: GPT_DEFAULTS.checkpointEvery,
      runOptions: { command: 'gpt' },
    }));
    const sample = await sampleText(model, flags);
    return { result, sample };
  } finally {
    task.dispose();
  }
}

async function sampleText(model: TrainableCausalLm, flags: GptTrainFlags): Promise<string> {
  const { text } = await generate(model, flags.prompt, {
    maxNewTokens: flags.sampleTokens, temperature: flags.temperature, topK: 40, seed: flags.seed, stopAtEndOfText: true,
  });
  return flags.prompt + text;
}

function countParameters(parameters: Map<string, tf.Variable>): number {
  let total = 0;
  for (const v of parameters.values()) total += v.size;
  return total;
}

/** Registers `m2 train gpt`. */
export function registerGptTrainCommand(group: Command): void {
  const command = group
    .command('gpt')
    .description('Train M2-GPT (or the attention baseline) on the shipped corpus or your text files, then print a sample')
    .option('--model <kind>', 'm2 (M2-GPT) or attention (GPT baseline of the same size)', 'm2')
    .option('--preset <name>', `size preset: ${Object.keys(m2GptPresets).join(', ')}`, 'tiny')
    .option('--corpus <name>', `shipped corpus: ${SHIPPED_CORPORA.join(', ')}`, 'sotu')
    .option('--text <files...>', 'train on these UTF-8 text files instead (one document each)')
    .option('--seq-len <n>', `tokens per sequence (default ${GPT_DEFAULTS.seqLen})`, integer('--seq-len', 2))
    .option('--prompt <text>', 'prompt of the sample printed at the end', 'The')
    .option('--sample-tokens <n>', 'tokens of the sample', integer('--sample-tokens', 1), 48)
    .option('--temperature <t>', 'sampling temperature of the sample', number('--temperature', 0, true), 0.8);
  addCommonTrainFlags(command).action(async (options: GptTrainFlags, cmd: Command) => {
    let flags = options;
    if (options.resume) {
      const found = await findCheckpoint(options.resume);
      flags = mergeResumeOptions(found.state.runOptions, options, cmd);
      flags.out = options.out ?? found.runDir;
    }
    const { result, sample } = await trainGpt(flags);
    const last = result.final;
    process.stdout.write(
      `trained ${result.steps} steps (${result.stopReason}) in ${result.seconds.toFixed(0)} s, ${result.throughput.toFixed(0)} tokens/s; ` +
        `train loss ${result.finalTrainLoss.toFixed(4)}` +
        (last.loss !== undefined ? `, validation loss ${last.loss.toFixed(4)} (perplexity ${last.perplexity.toFixed(1)})` : '') +
        `\ncheckpoint: ${result.checkpoint}\n\nsample:\n${sample}\n`,
    );
  });
}
