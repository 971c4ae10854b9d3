// End-to-end test of `m2 vision classify`, spawned as the user runs it (pnpm m2 = node + tsx on main.ts).
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { m2 } from '../test-cli.js';
import { M2Vision } from '@monarch-mixer/m2-vision';
import { encodePng } from '@monarch-mixer/m2-vision/testing';


const LABELS = ['zero', 'one', 'two'];
let dir: string;
let model: M2Vision;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'm2-cli-vision-'));
  model = new M2Vision({ imageSize: 8, channels: 1, patchSize: 2, modelDim: 16, numLayers: 1, filterOrder: 8, numClasses: 3, labels: LABELS }, { seed: 2 });
  await model.save(join(dir, 'model'));
  const rgba = new Uint8Array(8 * 8 * 4);
  for (let p = 0; p < 64; p++) rgba.set([p * 4, p * 4, p * 4, 255], 4 * p);
  await writeFile(join(dir, 'ramp.png'), encodePng(8, 8, rgba));
  await writeFile(join(dir, 'big.png'), encodePng(16, 16, new Uint8Array(16 * 16 * 4).fill(255)));
  await writeFile(join(dir, 'notes.txt'), 'not an image');
});
afterAll(async () => {
  model.dispose();
  await rm(dir, { recursive: true, force: true });
});

describe('m2 vision classify', () => {
  it('prints the top-k labels of each image, equal to the library', async () => {
    const [result, resized] = await Promise.all([
      m2('vision', 'classify', '--model', join(dir, 'model'), '--top-k', '2', '--json', join(dir, 'ramp.png')),
      m2('vision', 'classify', '--model', join(dir, 'model'), '--resize', join(dir, 'big.png')),
    ]);
    expect(result.stderr).toBe('');
    const line = JSON.parse(result.stdout.trim());
    const pixels = tf.tensor3d(Float32Array.from({ length: 64 }, (_, p) => (p * 4) / 255), [8, 8, 1]);
    const expected = await model.classify(pixels, { topK: 2 });
    pixels.dispose();
    expect(line.predictions.map((p: { label: string }) => p.label)).toEqual(expected.map((p) => p.label));
    line.predictions.forEach((p: { probability: number }, i: number) => expect(p.probability).toBeCloseTo(expected[i].probability, 5));
    expect(resized.stdout).toMatch(/big\.png: (zero|one|two) \d+\.\d%, /);
  });

  it('a wrong image size and a non-image file exit 1 with one line', async () => {
    const [wrong, text] = await Promise.all([
      m2('vision', 'classify', '--model', join(dir, 'model'), join(dir, 'big.png')),
      m2('vision', 'classify', '--model', join(dir, 'model'), join(dir, 'notes.txt')),
    ]);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/^m2: .*big\.png: wrong image size 16×16, the model needs 8×8 \(resize it, or pass --resize\)\.\n$/);
    expect(text.code).toBe(1);
    expect(text.stderr).toMatch(/^m2: .*notes\.txt: not a PNG or JPEG image \(expected PNG or JPEG magic bytes\)\.\n$/);
  });
});
