// End-to-end tests of `m2 bert …`, spawned as the user runs them (pnpm m2 = node + tsx on main.ts).
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { m2, repo } from '../test-cli.js';
import { readSafetensors, toFloat32, writeSafetensors } from '@monarch-mixer/monarch-core';
import type { TensorRecord } from '@monarch-mixer/monarch-core';
import { relativeL2 } from '@monarch-mixer/monarch-core/testing';

const fixtures = join(repo, 'packages', 'm2-bert', 'test', 'fixtures');

const read = async (file: string) => readSafetensors(new Uint8Array(await readFile(file))).tensors;
const f32 = (r: TensorRecord) => ({ shape: r.shape, data: toFloat32(r) });
const ids = (rows: number[][]): TensorRecord => ({ dtype: 'I64', shape: [rows.length, rows[0]!.length], data: BigInt64Array.from(rows.flat(), BigInt) });

let dir: string;
/** A copy of a fixture folder with a small vocab.txt (ids < 1024, the tiny models' vocabulary). */
async function withVocab(name: string): Promise<string> {
  const target = join(dir, name);
  await mkdir(target, { recursive: true });
  await copyFile(join(fixtures, name, 'config.json'), join(target, 'config.json'));
  await copyFile(join(fixtures, name, 'model.safetensors'), join(target, 'model.safetensors'));
  await writeFile(join(target, 'vocab.txt'), ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', 'the', 'cat', 'sat', 'on', 'mat', '.'].join('\n') + '\n');
  return target;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'm2-cli-bert-'));
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

describe('m2 bert', () => {
  it('forward: golden io → last_hidden_state, pooler_output and logits within 1e-4 of the original', async () => {
    const outMlm = join(dir, 'mlm-out.safetensors');
    const outCls = join(dir, 'cls-out.safetensors');
    const [mlm, cls] = await Promise.all([
      m2('bert', 'forward', '--model', join(fixtures, 'tiny-mlm'), '--input', join(fixtures, 'tiny-mlm', 'io.safetensors'), '--output', outMlm),
      m2('bert', 'forward', '--model', join(fixtures, 'tiny-cls'), '--input', join(fixtures, 'tiny-cls', 'io.safetensors'), '--output', outCls),
    ]);
    expect(mlm.stderr).toBe('');
    expect(cls.stderr).toBe('');
    expect(mlm.code).toBe(0);
    expect(mlm.stdout).toContain('logits [3, 32, 1024]');
    for (const [out, golden, names] of [
      [outMlm, 'tiny-mlm', ['last_hidden_state', 'logits']],
      [outCls, 'tiny-cls', ['last_hidden_state', 'pooler_output', 'logits']],
    ] as const) {
      const got = await read(out);
      const expected = await read(join(fixtures, golden, 'io.safetensors'));
      expect([...got.keys()].sort()).toEqual([...names].sort());
      for (const name of names) {
        const reference = name === 'last_hidden_state' && golden === 'tiny-mlm' ? expected.get('layer_1_output')! : expected.get(name)!;
        expect(relativeL2(f32(got.get(name)!), f32(reference)), `${golden} ${name}`).toBeLessThan(1e-4);
      }
    }
  });

  it('fill-mask and embed run on text and print one line per candidate / vector', async () => {
    const [mlmDir, clsDir] = await Promise.all([withVocab('tiny-mlm'), withVocab('tiny-cls')]);
    const [fill, embed] = await Promise.all([
      m2('bert', 'fill-mask', '--model', mlmDir, '--top-k', '3', 'the cat sat on the [MASK].'),
      m2('bert', 'embed', '--model', clsDir, '--normalize', 'the cat sat', 'on the mat'),
    ]);
    expect(fill.stderr).toBe('');
    const lines = fill.stdout.trim().split('\n');
    expect(lines).toHaveLength(3);
    const scores = lines.map((line) => Number(line.split('\t')[0]));
    expect(scores[0]).toBeGreaterThanOrEqual(scores[1]!);
    expect(scores[1]).toBeGreaterThanOrEqual(scores[2]!);
    expect(embed.stderr).toBe('');
    const vectors = embed.stdout.trim().split('\n').map((line) => JSON.parse(line) as number[]);
    expect(vectors.map((v) => v.length)).toEqual([64, 64]);
    for (const v of vectors) expect(Math.hypot(...v)).toBeCloseTo(1, 4);
  });

  it('user errors: one line "m2: …", exit code 1, no stack trace', async () => {
    const tooLong = join(dir, 'too-long.safetensors');
    const badId = join(dir, 'bad-id.safetensors');
    const corrupt = join(dir, 'corrupt');
    await writeFile(tooLong, writeSafetensors({ input_ids: ids([Array.from({ length: 40 }, () => 7)]) }));
    await writeFile(badId, writeSafetensors({ input_ids: ids([[101, 5000, 102]]) }));
    await mkdir(corrupt);
    await copyFile(join(fixtures, 'tiny-mlm', 'config.json'), join(corrupt, 'config.json'));
    await writeFile(join(corrupt, 'model.safetensors'), (await readFile(join(fixtures, 'tiny-mlm', 'model.safetensors'))).subarray(0, 4000));
    const model = join(fixtures, 'tiny-mlm');
    const out = join(dir, 'unused.safetensors');
    const results = await Promise.all([
      m2('bert', 'forward', '--model', model, '--input', tooLong, '--output', out),
      m2('bert', 'forward', '--model', model, '--input', badId, '--output', out),
      m2('bert', 'forward', '--model', corrupt, '--input', badId, '--output', out),
    ]);
    const patterns = [
      /longer than the model's max length 32/,
      /token id 5000 at position 1 of row 0 is outside the vocabulary \[0, 1024\)/,
      /corrupt.model\.safetensors/,
    ];
    results.forEach((result, i) => {
      expect(result.code, result.stderr).toBe(1);
      expect(result.stderr).toMatch(/^m2: [^\n]+\n$/);
      expect(result.stderr).toMatch(patterns[i]!);
    });
  });
});
