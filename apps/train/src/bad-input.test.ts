// Bad data and bad flags given to `m2 train …`, through the real commander wiring in-process: every case must
// end in ONE M2Error line (apps/cli prints it as `m2: …` and exits 1) before the run folder is touched.
import { beforeAll, describe, expect, it } from 'vitest';
import { Command } from 'commander';
import { mkdtemp, readdir, readFile, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { M2Error } from '@monarch-mixer/monarch-core';
import { M2Gpt } from '@monarch-mixer/m2-gpt';
import { registerTrainCommands } from './index.js';

/** Runs `m2 train <args>` in-process; returns the error it ends with (undefined if none). */
async function train(args: string[]): Promise<unknown> {
  const program = new Command('m2').exitOverride().configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
  registerTrainCommands(program.command('train'));
  return program.parseAsync(['train', ...args], { from: 'user' }).then(() => undefined, (error: unknown) => error);
}

/** Every file under `dir` with its contents. */
async function snapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) out[join(entry.parentPath, entry.name)] = await readFile(join(entry.parentPath, entry.name), 'utf8');
  }
  return out;
}

describe('m2 train: bad data and bad flags', () => {
  let work: string;
  let out: string;
  const file = async (name: string, content: string) => {
    await writeFile(join(work, name), content);
    return join(work, name);
  };

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'm2-bad-input-'));
    // A run folder holding a checkpoint: no failing command may change anything in it.
    out = join(work, 'run');
    await mkdir(join(out, 'step-000020'), { recursive: true });
    await writeFile(join(out, 'step-000020', 'trainer-state.json'), '{"format":1,"task":"classify","step":20,"losses":[]}');
    await writeFile(join(out, 'latest'), 'step-000020\n');
    await writeFile(join(out, 'metrics.jsonl'), '{"kind":"train","step":1,"loss":0.7}\n');
  });

  /** A model folder of an M2-GPT with a 300-token vocabulary (smaller than GPT-2's). */
  const smallVocabularyGpt = async () => {
    const model = new M2Gpt({ vocabSize: 300, maxLength: 16, modelDim: 16, numLayers: 1, filterOrder: 8 }, { seed: 1 });
    await model.save(join(work, 'small-vocabulary'));
    model.dispose();
    return join(work, 'small-vocabulary');
  };

  it('each fails with one M2Error line naming the problem and leaves the run folder alone', async () => {
    const good = await file('good.csv', `text,label\n${Array.from({ length: 10 }, (_, i) => `film ${i},${i % 2 ? 'pos' : 'neg'}`).join('\n')}\n`);
    const cases: Array<[string[], RegExp]> = [
      [['classify', '--data', await file('empty.csv', '')], /--data .*empty\.csv: the file is empty\./],
      [['classify', '--data', await file('cols.csv', 'review,stars\nok,1\nbad,0\n')], /no column "text" \(--text-column\); columns are: review, stars/],
      [['classify', '--data', good, '--label-column', 'stars'], /no column "stars" \(--label-column\); columns are: text, label/],
      [['classify', '--data', await file('nolabel.jsonl', '{"text":"a","label":1}\n{"text":"b"}\n')], /record 2 has no label in "label"/],
      [['classify', '--data', await file('notext.csv', 'text,label\n,1\nb,0\n')], /row 2 has no text in "text"/],
      [['classify', '--data', await file('ragged.csv', 'text,label\na,1,extra\nb,0\n')], /not valid CSV/],
      [['classify', '--data', good, '--test-fraction', '1.5'], /--test-fraction must be a number in \(0, 1\), got "1\.5"/],
      [['classify', '--data', good, '--seq-len', '1000000', '--backend', 'cpu'], /--seq-len must be ≤ 32768 .*got 1000000/],
      [['classify', '--lr', 'NaN'], /--lr must be a number > 0, got "NaN"/],
      [['classify', '--steps', '-3'], /--steps must be an integer ≥ 1, got "-3"/],
      [['bert-mlm', '--text', await file('empty.txt', ' \n')], /empty\.txt: the file is empty/],
      [['bert-mlm', '--mask-probability', '1'], /--mask-probability must be a number in \(0, 1\), got "1"/],
      [['bert-mlm', '--max-minutes', 'NaN'], /--max-minutes must be a number > 0, got "NaN"/],
      [['gpt', '--clip-norm', '-1'], /--clip-norm must be a number > 0, got "-1"/],
      [['gpt', '--seed', '1.5'], /--seed must be an integer ≥ 0, got "1\.5"/],
      [['gpt', '--text', join(work, 'missing.txt')], /missing\.txt: file not found/],
      [['gpt', '--resume', join(work, 'nowhere')], /no complete checkpoint found/],
      // Checked on the host before training: on webgpu the model cannot read its ids back to check them.
      [['gpt', '--init', await smallVocabularyGpt(), '--text', await file('words.txt', 'the cat sat on the mat. '.repeat(20)), '--seq-len', '8', '--backend', 'cpu'],
        /the corpus has token id \d+ but the model's vocabulary is \[0, 300\)/],
    ];
    const before = await snapshot(out);
    for (const [args, message] of cases) {
      const error = await train([...args, '--out', out, '--no-progress']);
      const what = args.join(' ');
      expect(M2Error.isInstance(error), `${what}: ${String(error)}`).toBe(true);
      expect((error as Error).message, what).toMatch(message);
      expect((error as Error).message, what).not.toContain('\n');
    }
    expect(await snapshot(out)).toEqual(before);
  });
});
