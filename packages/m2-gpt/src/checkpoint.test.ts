import * as tf from '@tensorflow/tfjs-core';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FileFormatError, readSafetensors, writeSafetensors } from '@monarch-mixer/monarch-core';
import { BaselineGpt } from './baseline-gpt.js';
import { M2Gpt } from './m2-gpt.js';

const config = { vocabSize: 300, maxLength: 8, modelDim: 8, numLayers: 1, numHeads: 2, mlpDim: 16, layerNormEps: 1e-5,
  initializerRange: 0.1 };
const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'm2-gpt-ckpt-'));
  dirs.push(dir);
  return dir;
}
afterAll(async () => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

describe('checkpoint save/load', () => {
  it('M2Gpt.fromBytes (the browser path) rebuilds a saved model exactly', async () => {
    const dir = await tempDir();
    const model = new M2Gpt({ vocabSize: 50, modelDim: 8, numLayers: 1, maxLength: 8, filterOrder: 4 }, { seed: 3 });
    await model.save(dir);
    const configFile = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8'));
    const loaded = M2Gpt.fromBytes(configFile, new Uint8Array(await readFile(join(dir, 'model.safetensors'))), dir);
    for (const [name, w] of model.namedWeights()) {
      expect(Array.from(loaded.namedWeights().get(name)!.dataSync()), name).toEqual(Array.from(w.dataSync()));
    }
    expect(() => M2Gpt.fromBytes({ ...configFile, modelType: 'baseline-gpt' }, new Uint8Array(8), dir)).toThrow(FileFormatError);
    model.dispose();
    loaded.dispose();
  });

  it('round-trips every weight exactly and gives the same logits', async () => {
    const dir = await tempDir();
    const model = new BaselineGpt(config, { seed: 11 });
    await model.save(dir);
    const loaded = await BaselineGpt.load(dir);
    expect(loaded.config).toEqual(model.config);
    for (const [name, w] of model.weights) expect(Array.from(loaded.weights.get(name)!.dataSync())).toEqual(Array.from(w.dataSync()));
    const ids = tf.tensor2d([[3, 1, 4, 1, 5]], undefined, 'int32');
    const [a, b] = [model.forward(ids).logits, loaded.forward(ids).logits];
    expect(tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]).toBe(0);
    tf.dispose([ids, a, b]);
    model.dispose();
    loaded.dispose();
  });

  it('lists missing and misshapen tensors in one line', async () => {
    const dir = await tempDir();
    const model = new BaselineGpt(config);
    await model.save(dir);
    model.dispose();
    const path = join(dir, 'model.safetensors');
    const { tensors } = readSafetensors(new Uint8Array(await readFile(path)));
    tensors.delete('h.0.ln_1.weight');
    tensors.set('ln_f.bias', { dtype: 'F32', shape: [3], data: new Float32Array(3) });
    await writeFile(path, writeSafetensors(tensors));
    const before = tf.memory().numTensors;
    const error = await BaselineGpt.load(dir).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FileFormatError);
    const message = (error as Error).message;
    expect(message).not.toContain('\n');
    expect(message).toContain('missing h.0.ln_1.weight');
    expect(message).toContain('misshapen ln_f.bias [3] (expected [8])');
    expect(tf.memory().numTensors).toBe(before); // the half-built model was disposed
  });

  it('reports a missing directory or a wrong model type in one line', async () => {
    await expect(BaselineGpt.load('/nonexistent/m2-gpt')).rejects.toThrow(/config\.json: cannot read the model config \(not found\)/);
    const dir = await tempDir();
    await writeFile(join(dir, 'config.json'), JSON.stringify({ modelType: 'm2-gpt', format: 1, config: {} }));
    await expect(BaselineGpt.load(dir)).rejects.toThrow('modelType is "m2-gpt", expected "baseline-gpt"');
  });
});

describe('loadGptModel', () => {
  it('loads either kind by its modelType, and the baseline built from an M2 config matches its size', async () => {
    const { gptModels, loadGptModel } = await import('./models.js');
    const m2Config = { vocabSize: 300, maxLength: 16, modelDim: 16, numLayers: 1, filterOrder: 8 };
    const m2 = gptModels['m2-gpt'].create(m2Config, { seed: 1 });
    const baseline = gptModels['baseline-gpt'].create(m2Config, { seed: 1 });
    expect(Math.abs(baseline.countParameters() - m2.countParameters())).toBeLessThanOrEqual(2 * 16 + 1);
    for (const model of [m2, baseline]) {
      const dir = await tempDir();
      await model.save(dir);
      const loaded = await loadGptModel(dir);
      expect(loaded.constructor).toBe(model.constructor);
      expect(loaded.countParameters()).toBe(model.countParameters());
      loaded.dispose();
      model.dispose();
    }
  });
});
