// `m2 gpt init | forward | generate`: random M2-GPT models, logits for token ids, and streaming generation.
import { readFile, writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import * as tf from '@tensorflow/tfjs-core';
import {
  FileFormatError, InvalidArgumentError, readSafetensors, setupBackend, toInt32, writeSafetensors,
} from '@monarch-mixer/monarch-core';
import type { BackendName } from '@monarch-mixer/monarch-core';
import { M2Gpt, m2GptPresets, countM2GptParameters, generateStream, loadGptModel, loadTokenizer } from '@monarch-mixer/m2-gpt';

/** Parses a flag as an integer in [min, ∞), throwing a one-line InvalidArgumentError. */
function integer(flag: string, min: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^-?\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min) {
      throw new InvalidArgumentError(`${flag} must be an integer ≥ ${min}, got "${value}".`, { parameter: flag, value });
    }
    return n;
  };
}

/** Parses a flag as a finite number. */
function number(flag: string) {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n)) {
      throw new InvalidArgumentError(`${flag} must be a number, got "${value}".`, { parameter: flag, value });
    }
    return n;
  };
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

async function useBackend(options: { backend: string; threads?: number }): Promise<void> {
  await setupBackend(options.backend as BackendName, options.threads === undefined ? {} : { threads: options.threads });
}

/** Registers the `m2 gpt …` commands. */
export function registerGptCommands(group: Command): void {
  group
    .command('init')
    .description('Create a randomly initialised M2-GPT (config.json + model.safetensors)')
    .requiredOption('--preset <name>', `size preset: ${Object.keys(m2GptPresets).join(', ')}`)
    .requiredOption('--out <dir>', 'output directory')
    .option('--seed <n>', 'seed of the initial weights', integer('--seed', 0), 0)
    .option('--backend <name>', 'tfjs backend: auto, cpu, wasm, webgpu, tensorflow', 'cpu')
    .option('--threads <n>', 'wasm threads', integer('--threads', 1))
    .action(async (options: { preset: string; out: string; seed: number; backend: string; threads?: number }) => {
      if (!Object.hasOwn(m2GptPresets, options.preset)) {
        throw new InvalidArgumentError(
          `Unknown M2-GPT preset "${options.preset}". Expected one of: ${Object.keys(m2GptPresets).join(', ')}.`,
          { parameter: '--preset', value: options.preset },
        );
      }
      await useBackend(options);
      const model = new M2Gpt({ preset: options.preset }, { seed: options.seed });
      await model.save(options.out);
      const count = countM2GptParameters(model.config).total;
      process.stdout.write(`m2-gpt ${options.preset}: ${count.toLocaleString('en-US')} parameters → ${options.out}\n`);
      model.dispose();
    });

  group
    .command('forward')
    .description('Logits for input_ids: IN.safetensors (input_ids [B, L]) → OUT.safetensors (logits F32 [B, L, V])')
    .requiredOption('--model <dir>', 'model directory (from `m2 gpt init` or `m2 train gpt`; M2-GPT or the attention baseline)')
    .requiredOption('--input <file>', 'safetensors file with input_ids (I64 or I32) [B, L]')
    .requiredOption('--output <file>', 'safetensors file to write logits to')
    .option('--backend <name>', 'tfjs backend: auto, cpu, wasm, webgpu, tensorflow', 'cpu')
    .option('--threads <n>', 'wasm threads', integer('--threads', 1))
    .action(async (options: { model: string; input: string; output: string; backend: string; threads?: number }) => {
      await useBackend(options);
      const model = await loadGptModel(options.model);
      const { tensors } = readSafetensors(new Uint8Array(await readFile(options.input)), { file: options.input });
      const record = tensors.get('input_ids');
      if (!record) {
        throw new FileFormatError(`${options.input}: no tensor "input_ids" (found: ${[...tensors.keys()].join(', ') || 'none'}).`);
      }
      if (record.shape.length !== 2) {
        throw new FileFormatError(`${options.input}: input_ids must be [batch, length], got [${record.shape.join(', ')}].`);
      }
      const ids = tf.tensor2d(toInt32(record), record.shape as [number, number], 'int32');
      const { logits } = model.forward(ids);
      const data = (await logits.data()) as Float32Array;
      await writeFile(options.output, writeSafetensors({ logits: { dtype: 'F32', shape: [...logits.shape], data } }));
      process.stdout.write(`logits [${logits.shape.join(', ')}] → ${options.output}\n`);
      tf.dispose([ids, logits]);
      model.dispose();
    });

  group
    .command('generate')
    .description('Generate text from a prompt, streamed to stdout')
    .requiredOption('--model <dir>', 'model directory (M2-GPT or the attention baseline; vocab.json if it has a compact vocabulary)')
    .requiredOption('--prompt <text>', 'prompt text ("" starts from <|endoftext|>)')
    .option('--max-new-tokens <n>', 'tokens to generate', integer('--max-new-tokens', 1), 64)
    .option('--seed <n>', 'sampling seed', integer('--seed', 0), 0)
    .option('--temperature <t>', 'softmax temperature, 0 = greedy', number('--temperature'), 1)
    .option('--top-k <k>', 'keep the k most likely tokens', number('--top-k'))
    .option('--top-p <p>', 'nucleus sampling mass in (0, 1]', number('--top-p'), 1)
    .option('--repetition-penalty <r>', 'penalty ≥ 1 on tokens already seen', number('--repetition-penalty'), 1)
    .option('--stop <text>', 'stop sequence (repeatable)', collect, [])
    .option('--naive', 'recompute the whole prefix for every token instead of decoding incrementally')
    .option('--backend <name>', 'tfjs backend: auto, cpu, wasm, webgpu, tensorflow', 'cpu')
    .option('--threads <n>', 'wasm threads', integer('--threads', 1))
    .action(async (options: {
      model: string; prompt: string; maxNewTokens: number; seed: number; temperature: number; topK?: number;
      topP: number; repetitionPenalty: number; stop: string[]; naive?: boolean; backend: string; threads?: number;
    }) => {
      await useBackend(options);
      const model = await loadGptModel(options.model);
      const tokenizer = await loadTokenizer(options.model);
      try {
        const stream = generateStream(model, options.prompt, {
          tokenizer,
          maxNewTokens: options.maxNewTokens,
          seed: options.seed,
          temperature: options.temperature,
          topK: options.topK,
          topP: options.topP,
          repetitionPenalty: options.repetitionPenalty,
          stopSequences: options.stop,
          incremental: !options.naive,
        });
        for await (const { text } of stream) if (text) process.stdout.write(text);
        process.stdout.write('\n');
      } finally {
        model.dispose();
      }
    });
}
