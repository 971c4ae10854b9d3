// `m2 bench <suite>`: each suite times warm runs in ONE process so ratios are stable on a noisy machine, checks
// live tensors, and writes JSON (+ optional markdown and SVG plot).
import type { Command } from 'commander';
import { InvalidArgumentError, setupBackend, type BackendName } from '@monarch-mixer/monarch-core';
import { lineChartSvg, markdownTable, parseIntList, toSeries, writeOutput } from './harness.js';
import { runMonarchSuite } from './suites/monarch.js';
import { runFftconvSuite } from './suites/fftconv.js';
import { bertExponents, runBertSuite } from './suites/bert.js';
import { runGptSuite } from './suites/gpt.js';

export { timeIt, timeInterleaved, median, markdownTable, lineChartSvg, toSeries, parseIntList, writeOutput } from './harness.js';
export type { Timing, TimeOptions } from './harness.js';

/** Common flags of every suite. */
export interface BenchFlags {
  backend: BackendName;
  json?: string;
  markdown?: string;
  plot?: string;
  threads?: string;
}

/** Adds `--backend`, `--threads`, `--json`, `--markdown`, `--plot` to a suite command. */
export function withCommonFlags(command: Command): Command {
  return command
    .option('--backend <name>', 'auto | cpu | wasm | webgpu | tensorflow', 'auto')
    .option('--threads <n>', 'wasm worker threads (default: one per CPU)')
    .option('--json <file>', 'write the rows as JSON')
    .option('--markdown <file>', 'write the rows as a markdown table')
    .option('--plot <file>', 'write an SVG plot');
}

/** Writes rows to the outputs the flags ask for and prints the table. */
export async function reportRows(flags: BenchFlags, rows: Array<Record<string, unknown>>, plot?: Parameters<typeof lineChartSvg>[0], notes = ''): Promise<void> {
  process.stdout.write(markdownTable(rows) + notes);
  if (flags.json) writeOutput(flags.json, JSON.stringify(rows, null, 2) + '\n');
  if (flags.markdown) writeOutput(flags.markdown, markdownTable(rows) + notes);
  if (flags.plot && plot) writeOutput(flags.plot, await lineChartSvg(plot));
}

/** Starts the requested backend and says which one runs. */
export async function startBench(flags: BenchFlags): Promise<string> {
  const threads = flags.threads === undefined ? undefined : parseIntList('--threads', flags.threads)[0];
  const info = await setupBackend(flags.backend, threads === undefined ? {} : { threads });
  process.stderr.write(`backend: ${info.description}\n`);
  return info.name;
}

/** Registers the `m2 bench …` commands. */
export function registerBenchCommands(group: Command): void {
  withCommonFlags(group.command('fftconv').description('bidirectional long convolution [4, 32, L]: Monarch DFT vs tf.spectral (cpu)'))
    .option('--lengths <list>', 'sequence lengths, comma-separated', '1024,4096,16384')
    .option('--batch <n>', 'batch size', '4')
    .option('--channels <n>', 'channels', '32')
    .option('--spectral-max-length <n>', 'longest L also timed through tf.spectral on cpu (slow); longer rows get null', '4096')
    .option('--repeats <n>', 'timed runs per measurement (median reported)', '5')
    .action(async (flags: BenchFlags & { lengths: string; batch: string; channels: string; spectralMaxLength: string; repeats: string }) => {
      await startBench(flags);
      await import('@tensorflow/tfjs-backend-cpu'); // tf.spectral runs on cpu in the same process
      const rows = await runFftconvSuite({
        lengths: parseIntList('--lengths', flags.lengths),
        batch: parseIntList('--batch', flags.batch)[0],
        channels: parseIntList('--channels', flags.channels)[0],
        spectralMaxLength: parseIntList('--spectral-max-length', flags.spectralMaxLength)[0],
        repeats: parseIntList('--repeats', flags.repeats)[0],
      });
      await reportRows(flags, rows as unknown as Array<Record<string, unknown>>);
    });
  withCommonFlags(group.command('monarch').description('block-diagonal and Monarch products vs dense matMul (GFLOP/s)'))
    .option('--tokens <n>', 'activation rows (batch × length)', '2048')
    .option('--model-dim <d>', 'model width d (M2-BERT-base: 768)', '768')
    .option('--repeats <n>', 'timed runs per measurement (median reported; all products interleaved)', '5')
    .action(async (flags: BenchFlags & { tokens: string; modelDim: string; repeats: string }) => {
      await startBench(flags);
      const rows = await runMonarchSuite({ tokens: Number(flags.tokens), modelDim: Number(flags.modelDim), repeats: parseIntList('--repeats', flags.repeats)[0] });
      await reportRows(flags, rows as unknown as Array<Record<string, unknown>>);
    });
  withCommonFlags(group.command('bert').description('M2-BERT-base forward tokens/s vs attention BERT-bases (fast and eager)'))
    .option('--lengths <list>', 'sequence lengths, comma-separated', '512,1024,2048,4096,8192,16384')
    .option('--layers <n>', 'encoder layers (base width is kept; fewer layers keep long lengths affordable)', '12')
    .option('--batch <n>', 'batch size', '1')
    .option('--head <kind>', 'mlm (encoder + MLM head at every position) | none (encoder only)', 'mlm')
    .option('--repeats <n>', 'timed runs per measurement (median reported)', '3')
    .option('--eager-max-length <n>', 'time eager attention only up to this L (longer rows get null)')
    .option('--attention-max-length <n>', 'time both attention baselines only up to this L (longer rows time M2 alone)')
    .action(async (flags: BenchFlags & { lengths: string; layers: string; batch: string; head: string; repeats: string; eagerMaxLength?: string; attentionMaxLength?: string }) => {
      if (flags.head !== 'mlm' && flags.head !== 'none') {
        throw new InvalidArgumentError(`--head must be mlm or none, got "${flags.head}"`, { parameter: '--head', value: flags.head });
      }
      await startBench(flags);
      const rows = await runBertSuite({
        lengths: parseIntList('--lengths', flags.lengths),
        layers: parseIntList('--layers', flags.layers)[0],
        batch: parseIntList('--batch', flags.batch)[0],
        head: flags.head,
        repeats: parseIntList('--repeats', flags.repeats)[0],
        eagerMaxLength: flags.eagerMaxLength === undefined ? undefined : parseIntList('--eager-max-length', flags.eagerMaxLength)[0],
        attentionMaxLength: flags.attentionMaxLength === undefined ? undefined : parseIntList('--attention-max-length', flags.attentionMaxLength)[0],
        log: (line) => process.stderr.write(line + '\n'),
      });
      await reportRows(flags, rows as unknown as Array<Record<string, unknown>>, {
        title: `M2-BERT-base vs attention BERT-base forward (${rows[0]?.backend}, ${flags.layers} layers, ${flags.head === 'mlm' ? 'MLM head' : 'encoder only'})`,
        rows: toSeries(rows as unknown as Array<Record<string, unknown>>, 'L', {
          m2_tokens_per_s: 'M2-BERT', attention_tokens_per_s: 'attention (fastest)', attention_eager_tokens_per_s: 'attention (eager)',
        }),
        x: 'L', y: 'value', series: 'series', logX: true, logY: true, xTitle: 'sequence length', yTitle: 'tokens / s',
      }, bertExponents(rows));
    });
  withCommonFlags(group.command('gpt').description('M2-GPT vs attention GPT of the same size: training tokens/s, generation tokens/s (incremental vs naive)'))
    .option('--preset <name>', 'M2-GPT preset (tiny | small | medium)', 'tiny')
    .option('--length <n>', 'training sequence length (default: the preset maxLength)')
    .option('--batch <n>', 'training batch size', '4')
    .option('--steps <n>', 'timed training steps (median reported)', '3')
    .option('--new-tokens <n>', 'tokens generated after a 16-token prompt', '32')
    .action(async (flags: BenchFlags & { preset: string; length?: string; batch: string; steps: string; newTokens: string }) => {
      await startBench(flags);
      const rows = await runGptSuite({
        preset: flags.preset,
        length: flags.length === undefined ? undefined : parseIntList('--length', flags.length)[0],
        batch: parseIntList('--batch', flags.batch)[0],
        steps: parseIntList('--steps', flags.steps)[0],
        newTokens: parseIntList('--new-tokens', flags.newTokens)[0],
        log: (line) => process.stderr.write(line + '\n'),
      });
      await reportRows(flags, rows as unknown as Array<Record<string, unknown>>, {
        title: `M2-GPT vs attention GPT (${rows[0]?.backend}, preset ${flags.preset})`,
        rows: toSeries(rows as unknown as Array<Record<string, unknown>>, 'model', {
          train_tokens_per_s: 'training', generate_incremental_tokens_per_s: 'generation (incremental)', generate_naive_tokens_per_s: 'generation (naive)',
        }),
        x: 'series', y: 'value', series: 'model', logY: true, bars: true, xTitle: 'measurement', yTitle: 'tokens / s',
      });
    });
}
