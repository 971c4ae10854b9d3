// End-to-end tests of `m2 gpt …`, spawned as the user runs them (pnpm m2 = node + tsx on main.ts).
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { m2 } from '../test-cli.js';
import { readSafetensors, toFloat32, writeSafetensors } from '@monarch-mixer/monarch-core';
import { M2Gpt } from '@monarch-mixer/m2-gpt';


let dir: string;
let modelDir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'm2-cli-gpt-'));
  modelDir = join(dir, 'tiny');
  const result = await m2('gpt', 'init', '--preset', 'tiny', '--seed', '3', '--out', modelDir);
  expect(result.stderr).toBe('');
  expect(result.stdout).toContain('6,965,376 parameters');
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

describe('m2 gpt', () => {
  it("generate: a fixed seed reproduces the same streamed text, equal to the library's generation", async () => {
    const args = ['gpt', 'generate', '--model', modelDir, '--prompt', 'The president', '--max-new-tokens', '12', '--top-k', '40', '--seed', '5'];
    const [a, b] = await Promise.all([m2(...args), m2(...args)]);
    expect(a.code).toBe(0);
    expect(b.stdout).toBe(a.stdout);
    const model = await M2Gpt.load(modelDir);
    const options = { maxNewTokens: 12, topK: 40 };
    const same = await model.generate('The president', { ...options, seed: 5 });
    const other = await model.generate('The president', { ...options, seed: 6 });
    model.dispose();
    expect(a.stdout).toBe(`${same.text}\n`);
    expect(other.text).not.toBe(same.text);
  });

  it('forward: input_ids → logits [B, L, V] equal to the library forward', async () => {
    const ids = [[464, 3290, 318, 257], [50256, 0, 1, 2]];
    const input = join(dir, 'in.safetensors');
    const output = join(dir, 'out.safetensors');
    await writeFile(input, writeSafetensors({ input_ids: { dtype: 'I64', shape: [2, 4], data: BigInt64Array.from(ids.flat(), BigInt) } }));
    const result = await m2('gpt', 'forward', '--model', modelDir, '--input', input, '--output', output);
    expect(result.stderr).toBe('');
    const logits = readSafetensors(new Uint8Array(await readFile(output))).tensors.get('logits')!;
    expect(logits.dtype).toBe('F32');
    expect(logits.shape).toEqual([2, 4, 50257]);
    const model = await M2Gpt.load(modelDir);
    const idsTensor = tf.tensor2d(ids, undefined, 'int32');
    const expected = model.forward(idsTensor).logits;
    const got = tf.tensor(toFloat32(logits), logits.shape);
    expect(tf.max(tf.abs(tf.sub(got, expected))).dataSync()[0]).toBeLessThan(1e-5);
    tf.dispose([idsTensor, expected, got]);
    model.dispose();
  });

  it('bad options exit 1 with one line', async () => {
    const longPrompt = ' a'.repeat(300); // 300 tokens > maxLength 256
    const cases: [string[], RegExp][] = [
      [['gpt', 'init', '--preset', 'huge', '--out', join(dir, 'x')], /^m2: Unknown M2-GPT preset "huge"\. Expected one of: tiny, small, medium\.\n$/],
      [['gpt', 'generate', '--model', modelDir, '--prompt', 'a', '--top-p', '1.5'], /^m2: generate: topP must be in \(0, 1\], got 1\.5\.\n$/],
      [['gpt', 'generate', '--model', modelDir, '--prompt', longPrompt], /^m2: generate: the prompt has 300 tokens but the model's maxLength is 256\..*\n$/],
    ];
    const results = await Promise.all(cases.map(([args]) => m2(...args)));
    results.forEach((result, i) => {
      expect(result.code, cases[i][0].join(' ')).toBe(1);
      expect(result.stderr).toMatch(cases[i][1]);
    });
  });
});
