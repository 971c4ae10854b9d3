// `m2 bert forward | fill-mask | embed`: run a HuggingFace-layout M2-BERT folder (config.json + model.safetensors,
// pytorch_model.bin or a composer .pt) on token ids or text.
import { readFile, writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import * as tf from '@tensorflow/tfjs-core';
import { FileFormatError, InvalidArgumentError, readSafetensors, setupBackend, toInt32, writeSafetensors } from '@monarch-mixer/monarch-core';
import type { BackendName, TensorRecord } from '@monarch-mixer/monarch-core';
import { M2Bert, M2BertPipeline } from '@monarch-mixer/m2-bert';

const BACKEND_HELP = 'tfjs backend: auto, cpu, wasm, webgpu, tensorflow';

/** Parses a flag as an integer ≥ min, throwing a one-line InvalidArgumentError. */
function integer(flag: string, min: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min) {
      throw new InvalidArgumentError(`${flag} must be an integer ≥ ${min}, got "${value}".`, { parameter: flag, value });
    }
    return n;
  };
}

/** An I64/I32 [B, L] tensor of the input file as int32, or undefined when absent. */
function idsTensor(tensors: Map<string, TensorRecord>, name: string, file: string, shape?: number[]): tf.Tensor2D | undefined {
  const record = tensors.get(name);
  if (!record) return undefined;
  if (record.shape.length !== 2) throw new FileFormatError(`${file}: ${name} must be [batch, length], got [${record.shape.join(', ')}].`);
  if (shape && (record.shape[0] !== shape[0] || record.shape[1] !== shape[1])) {
    throw new FileFormatError(`${file}: ${name} must have the shape of input_ids [${shape.join(', ')}], got [${record.shape.join(', ')}].`);
  }
  if (record.dtype !== 'I64' && record.dtype !== 'I32') {
    throw new FileFormatError(`${file}: ${name} must be I64 or I32, got ${record.dtype}.`);
  }
  return tf.tensor2d(toInt32(record, name), record.shape as [number, number], 'int32');
}

/** Registers the `m2 bert …` commands. */
export function registerBertCommands(group: Command): void {
  group
    .command('forward')
    .description(
      'Encoder outputs for token ids: IN.safetensors (input_ids [B, L] I64/I32; optional token_type_ids, attention_mask) → ' +
        'OUT.safetensors (F32 last_hidden_state [B, L, d]; pooler_output [B, d] if the checkpoint has a pooler; logits if it has a head)',
    )
    .requiredOption('--model <dir>', 'M2-BERT folder: config.json + model.safetensors | pytorch_model.bin | *.pt')
    .requiredOption('--input <file>', 'safetensors file with input_ids [B, L] (I64 or I32)')
    .requiredOption('--output <file>', 'safetensors file to write')
    .option('--backend <name>', BACKEND_HELP, 'cpu')
    .action(async (options: { model: string; input: string; output: string; backend: string }) => {
      await setupBackend(options.backend as BackendName);
      const { tensors } = readSafetensors(new Uint8Array(await readFile(options.input)), { file: options.input });
      const inputIds = idsTensor(tensors, 'input_ids', options.input);
      if (!inputIds) throw new FileFormatError(`${options.input}: no tensor "input_ids" (found: ${[...tensors.keys()].join(', ') || 'none'}).`);
      const tokenTypeIds = idsTensor(tensors, 'token_type_ids', options.input, inputIds.shape);
      const attentionMask = idsTensor(tensors, 'attention_mask', options.input, inputIds.shape);
      const model = await M2Bert.fromPretrained(options.model);
      try {
        const output = model.forward({ inputIds, tokenTypeIds, attentionMask });
        const records: Record<string, TensorRecord> = {};
        for (const [name, tensor] of [
          ['last_hidden_state', output.lastHiddenState],
          ['pooler_output', output.poolerOutput],
          ['logits', output.logits],
        ] as const) {
          if (tensor) records[name] = { dtype: 'F32', shape: [...tensor.shape], data: (await tensor.data()) as Float32Array };
        }
        await writeFile(options.output, writeSafetensors(records, { format: 'pt' }));
        const summary = Object.entries(records).map(([name, r]) => `${name} [${r.shape.join(', ')}]`).join(', ');
        process.stdout.write(`${summary} → ${options.output}\n`);
        tf.dispose([output.lastHiddenState, output.poolerOutput, output.logits].filter((t): t is tf.Tensor => t !== undefined));
      } finally {
        tf.dispose([inputIds, tokenTypeIds, attentionMask].filter((t): t is tf.Tensor2D => t !== undefined));
        model.dispose();
      }
    });

  group
    .command('fill-mask')
    .description('Top predictions for each [MASK] in TEXT (masked-LM checkpoints), one line each: score, token, filled text')
    .requiredOption('--model <dir>', 'M2-BERT masked-LM folder (tokenizer: its vocab.txt/tokenizer.json, else bert-base-uncased)')
    .option('--top-k <k>', 'candidates per mask', integer('--top-k', 1), 5)
    .option('--backend <name>', BACKEND_HELP, 'cpu')
    .argument('<text>', 'text with one or more [MASK]')
    .action(async (text: string, options: { model: string; topK: number; backend: string }) => {
      await setupBackend(options.backend as BackendName);
      const pipeline = await M2BertPipeline.fromPretrained(options.model);
      try {
        const masks = await pipeline.fillMaskAsync(text, { topK: options.topK }); // asynchronous reads: webgpu in Node has no other
        for (const [index, candidates] of masks.entries()) {
          if (masks.length > 1) process.stdout.write(`[MASK] ${index + 1}:\n`);
          for (const c of candidates) process.stdout.write(`${c.score.toFixed(4)}\t${c.token}\t${c.sequence}\n`);
        }
      } finally {
        pipeline.dispose();
      }
    });

  group
    .command('embed')
    .description(
      'Sentence embeddings (pooler output) of each TEXT, one JSON array per line. Texts are padded to the model\'s max ' +
        'length, as the released retrieval models were trained (M2 has no attention mask, so padding changes the output)',
    )
    .requiredOption('--model <dir>', 'M2-BERT folder with a pooler (retrieval, classification or BertModel checkpoint)')
    .option('--normalize', 'divide each vector by its L2 norm')
    .option('--truncation', 'cut texts longer than the max length instead of failing')
    .option('--output <file>', 'also write the vectors as F32 [N, d] "embeddings" to this safetensors file')
    .option('--backend <name>', BACKEND_HELP, 'cpu')
    .argument('<texts...>', 'texts to embed')
    .action(async (texts: string[], options: { model: string; normalize?: boolean; truncation?: boolean; output?: string; backend: string }) => {
      await setupBackend(options.backend as BackendName);
      const pipeline = await M2BertPipeline.fromPretrained(options.model);
      try {
        const vectors = await pipeline.embed(texts, { normalize: options.normalize, truncation: options.truncation });
        for (const vector of vectors) process.stdout.write(`${JSON.stringify(vector.map((v) => Number(v.toPrecision(7))))}\n`);
        if (options.output) {
          const data = Float32Array.from(vectors.flat());
          await writeFile(options.output, writeSafetensors({ embeddings: { dtype: 'F32', shape: [vectors.length, vectors[0]?.length ?? 0], data } }));
        }
      } finally {
        pipeline.dispose();
      }
    });
}
