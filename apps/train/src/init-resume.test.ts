// `m2 train …` commands run in this process (as the bench runs trainGpt): a run started from `--init` resumes from
// its checkpoint with the uninterrupted run's losses (the model comes from the checkpoint's config.json, and the
// `init` stored with the run's options is not a second `--init`), and a whole run leaves no tensor behind.
import * as tf from '@tensorflow/tfjs-core';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { clearDftCache, clearMonarchCache, M2Error } from '@monarch-mixer/monarch-core';
import { M2Bert, savePretrained } from '@monarch-mixer/m2-bert';
import { M2Gpt } from '@monarch-mixer/m2-gpt';
import { M2Vision } from '@monarch-mixer/m2-vision';
import { m2Train, useTrainWorkspace, writeNoisyImageFolder } from '../test/helpers.js';
import { withSeededMathRandom } from './tasks/bert.js';

// A small public-domain corpus: the first 4 chapters of Moby-Dick; wasm is the CLI's default backend (pure-JS
// cpu is much slower for these shapes).
const ws = useTrainWorkspace('m2-train-init-resume-', { backend: 'wasm', corpus: { first: 0, count: 4 } });

const losses = async (file: string): Promise<number[]> => JSON.parse(await readFile(file, 'utf8')).losses;

/**
 * What `run` left on top of the tensors alive before it. monarch-core's caches of constant DFT and Monarch factors
 * (filled on the first use of a length, kept on purpose) are emptied before both counts.
 */
async function tensorsLeftBy(run: () => Promise<unknown>): Promise<{ tensors: number; bytes: number }> {
  const clearCaches = () => {
    clearDftCache();
    clearMonarchCache();
  };
  clearCaches();
  const before = tf.memory();
  await run();
  clearCaches();
  const after = tf.memory();
  return { tensors: after.numTensors - before.numTensors, bytes: after.numBytes - before.numBytes };
}

/**
 * Trains 4 steps from `--init` with checkpoints at 2 and 4, then resumes from step 2 (what a run killed after its
 * step-2 checkpoint leaves) and checks that steps 3 and 4 repeat the uninterrupted run's losses; every run must
 * leave no tensor behind.
 */
async function expectResumeAfterInit(command: string, init: string, extra: string[]): Promise<void> {
  const out = join(ws.work, `${command}-run`);
  const common = ['--seed', '3', '--backend', 'wasm', '--no-progress', '--eval-every', '0'];
  const full = await tensorsLeftBy(() => m2Train([
    command, '--init', init, '--steps', '4', '--checkpoint-every', '2', '--keep', '10', '--batch-size', '2',
    '--out', out, '--json', join(ws.work, `${command}-full.json`), ...common, ...extra,
  ]));
  expect(full, `${command}: tensors left by the first run`).toEqual({ tensors: 0, bytes: 0 });
  const stored = JSON.parse(await readFile(join(out, 'step-000002', 'trainer-state.json'), 'utf8')).runOptions;
  expect(stored.init).toBe(init);
  const resumed = await tensorsLeftBy(() => m2Train([
    command, '--resume', join(out, 'step-000002'), '--json', join(ws.work, `${command}-resumed.json`), ...common,
  ]));
  expect(resumed, `${command}: tensors left by the resumed run`).toEqual({ tensors: 0, bytes: 0 });
  const reference = await losses(join(ws.work, `${command}-full.json`));
  const continued = await losses(join(ws.work, `${command}-resumed.json`));
  expect(reference).toHaveLength(4);
  expect(continued).toHaveLength(4);
  for (let i = 0; i < 4; i++) expect(Math.abs(continued[i]! - reference[i]!), `${command} step ${i + 1}`).toBeLessThanOrEqual(1e-6);
  // The run's options keep their `init`; a second resume is still no "--init with --resume".
  const again = JSON.parse(await readFile(join(out, 'step-000004', 'trainer-state.json'), 'utf8')).runOptions;
  expect(again.init).toBe(init);
}

describe('m2 train, in-process: resume after --init, no tensors left', () => {
  it('gpt: a run started with --init resumes with the uninterrupted losses (model from the checkpoint\'s config)', async () => {
    // A narrow two-block M2-GPT with the full GPT-2 vocabulary: not the tiny preset's shape, which a model built
    // from the preset instead of the checkpoint's config.json would have.
    const init = join(ws.work, 'gpt-init');
    const model = new M2Gpt({ preset: 'tiny', modelDim: 32, numLayers: 2, filterOrder: 8 }, { seed: 3 });
    await model.save(init);
    model.dispose();
    await expectResumeAfterInit('gpt', init, ['--text', ws.corpus, '--seq-len', '16', '--sample-tokens', '1']);
  }, 120_000);

  it('bert-mlm: a run started with --init resumes with the uninterrupted losses', async () => {
    const init = join(ws.work, 'bert-init');
    const model = withSeededMathRandom(1, () => new M2Bert({ preset: 'tiny', vocabSize: 30528, maxPositionEmbeddings: 16, longConvLMax: 16 }));
    await savePretrained(model, init);
    model.dispose();
    await expectResumeAfterInit('bert-mlm', init, ['--text', ws.corpus, '--seq-len', '16']);
  }, 120_000);

  it('vision: a run started with --init resumes with the uninterrupted losses', async () => {
    // An image folder of two classes (dark or bright noisy 28×28 PNGs, the tiny preset's size) and a narrow model.
    const folder = await writeNoisyImageFolder(join(ws.work, 'images'), 20);
    const init = join(ws.work, 'vision-init');
    const model = new M2Vision({ imageSize: 28, channels: 1, patchSize: 7, modelDim: 16, numLayers: 1, filterOrder: 8, numClasses: 2, labels: ['bright', 'dark'] }, { seed: 1 });
    await model.save(init);
    model.dispose();
    await expectResumeAfterInit('vision', init, ['--dataset', folder, '--batch-size', '4', '--crop-padding', '0']);
  }, 120_000);

  it('--init given together with --resume on the command line is refused in one line', async () => {
    const error = await m2Train(['gpt', '--resume', join(ws.work, 'gpt-run'), '--init', join(ws.work, 'gpt-init'), '--no-progress'])
      .then(() => undefined, (e: unknown) => e);
    expect(M2Error.isInstance(error), String(error)).toBe(true);
    expect((error as Error).message).toBe('--resume and --init cannot be combined (a resumed run already has its weights).');
  });
});
