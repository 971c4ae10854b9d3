#!/usr/bin/env node
// The `m2` command line: `pnpm m2 <group> <command> [flags]`.
// Groups: bert, gpt, vision (this app), train (apps/train), bench (apps/bench).
import { Command, CommanderError } from 'commander';
import { M2Error } from '@monarch-mixer/monarch-core';
import { registerBertCommands } from './commands/bert.js';
import { registerGptCommands } from './commands/gpt.js';
import { registerVisionCommands } from './commands/vision.js';
import { registerTrainCommands } from '@monarch-mixer/train';
import { registerBenchCommands } from '@monarch-mixer/bench';

const program = new Command('m2')
  .description('Monarch Mixer (M2) for TypeScript: models, training and benchmarks')
  .showHelpAfterError('(add --help for usage)')
  .exitOverride();

registerBertCommands(program.command('bert').description('M2-BERT: forward, fill-mask, embed'));
registerGptCommands(program.command('gpt').description('M2-GPT: init, forward, generate'));
registerVisionCommands(program.command('vision').description('M2 vision mixer: classify'));
registerTrainCommands(program.command('train').description('Train M2 models: bert-mlm, classify, gpt, vision'));
registerBenchCommands(program.command('bench').description('Benchmarks: fftconv, monarch, bert, gpt'));

try {
  await program.parseAsync(process.argv);
} catch (error) {
  process.exitCode = reportError(error);
}

/** Prints one line for user mistakes (bad flags, bad files, bad shapes); a stack only for our own bugs. */
function reportError(error: unknown): number {
  if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : 2;
  if (M2Error.isInstance(error)) {
    process.stderr.write(`m2: ${error.message}\n`);
    return 1;
  }
  if (error instanceof Error && (error as NodeJS.ErrnoException).code === 'ENOENT') {
    process.stderr.write(`m2: ${error.message}\n`);
    return 1;
  }
  process.stderr.write(`m2: internal error (please report): ${error instanceof Error ? error.stack : String(error)}\n`);
  return 70;
}
