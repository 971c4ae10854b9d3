import * as tf from '@tensorflow/tfjs-core';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FileFormatError, readSafetensors, toFloat32, writeSafetensors } from '@monarch-mixer/monarch-core';
import { compareCheckpointedStep, tensorsWithoutCaches } from '@monarch-mixer/m2-layers/testing';
import { M2Gpt } from './m2-gpt.js';
import { countM2GptParameters } from './m2-gpt-config.js';

const small = { vocabSize: 300, maxLength: 48, modelDim: 32, numLayers: 2, filterOrder: 8 };
const fixtures = new URL('../test/fixtures/causal-block/', import.meta.url);
const dirs: string[] = [];
afterAll(async () => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

function randomIds(seed: number, length: number, vocab: number): number[] {
  let s = seed;
  return Array.from({ length }, () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s % vocab;
  });
}

function maxAbs(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
}

function relativeL2(got: tf.Tensor, want: tf.Tensor): number {
  return tf.tidy(() => tf.norm(tf.sub(got, want)).dataSync()[0] / tf.norm(want).dataSync()[0]);
}

describe('M2Gpt', () => {
  it('reproduces the golden pre-LN causal block through its block path (rel. L2 ≤ 1e-4, perturbed too)', () => {
    const config = JSON.parse(readFileSync(new URL('config.json', fixtures), 'utf8'));
    const model = new M2Gpt({ vocabSize: 10, maxLength: config.l_max, modelDim: config.d_model, numLayers: 1,
      intermediateDim: config.intermediate_size, filterOrder: config.hyena_filter_order, filterEmbDim: config.hyena_emb_dim });
    const weights = readSafetensors(new Uint8Array(readFileSync(new URL('weights.safetensors', fixtures)))).tensors;
    const io = readSafetensors(new Uint8Array(readFileSync(new URL('io.safetensors', fixtures)))).tensors;
    const named = model.namedWeights();
    for (const [key, record] of weights) {
      const variable = named.get(`blocks.0.${key}`);
      expect(variable, key).toBeDefined();
      tf.tidy(() => {
        let value = tf.tensor(toFloat32(record), record.shape);
        if (key.startsWith('mlp.') && record.shape.length === 3) value = tf.transpose(value, [0, 2, 1]); // torch (nb, out, in) → tfjs
        variable!.assign(value);
      });
    }
    const get = (name: string) => tf.tensor(toFloat32(io.get(name)!), io.get(name)!.shape);
    const [x, xp, out, outp] = ['x', 'x_perturbed', 'block_output', 'block_output_perturbed'].map(get);
    const got = model.blocks[0].apply(x) as tf.Tensor;
    const gotp = model.blocks[0].apply(xp) as tf.Tensor;
    expect(relativeL2(got, out)).toBeLessThan(1e-4);
    expect(relativeL2(gotp, outp)).toBeLessThan(1e-4);
    const before = tf.tidy(() => maxAbs(tf.slice(got, [0, 0, 0], [-1, 40, -1]), tf.slice(gotp, [0, 0, 0], [-1, 40, -1])));
    expect(before).toBeLessThanOrEqual(1e-5);
    tf.dispose([x, xp, out, outp, got, gotp]);
    model.dispose();
  });

  it('dispose frees the blocks\' cached inference tensors too: build, forward, dispose leaves no tensor behind', () => {
    // monarch-core's DFT and Monarch factor caches (kept on purpose, per length) are emptied before both counts.
    const before = tensorsWithoutCaches();
    const model = new M2Gpt(small, { seed: 1 });
    const ids = tf.tensor2d([randomIds(4, 12, small.vocabSize)], undefined, 'int32');
    tf.dispose([ids, model.forward(ids).logits]); // inference: fills the blocks' caches
    expect(tf.memory().numTensors).toBeGreaterThan(before + model.trainableVariables().length);
    model.dispose();
    expect(tensorsWithoutCaches()).toBe(before);
  });

  it('has exactly countM2GptParameters trainable parameters, and a seed reproduces the weights', () => {
    const a = new M2Gpt(small, { seed: 3 });
    const b = new M2Gpt(small, { seed: 3 });
    const c = new M2Gpt(small, { seed: 4 });
    expect(a.countParameters()).toBe(countM2GptParameters(a.config).total);
    const wa = a.namedWeights(), wb = b.namedWeights(), wc = c.namedWeights();
    for (const [name, v] of wa) expect(Array.from(wb.get(name)!.dataSync()), name).toEqual(Array.from(v.dataSync()));
    const random = ['wte.weight', 'blocks.1.mixer.in_linear.weight', 'blocks.1.mixer.short_filter.weight',
      'blocks.1.mixer.filter_fn2.bias', 'blocks.1.mixer.filter_fn.implicit_filter.6.weight', 'blocks.1.mlp.gated_layers.weight',
      'blocks.1.mlp.wo.bias'];
    for (const name of random) expect(maxAbs(wa.get(name)!, wc.get(name)!), name).toBeGreaterThan(0);
    [a, b, c].forEach((m) => m.dispose());
  });

  it('is causal: changing tokens ≥ t never changes logits < t (max |Δ| ≤ 1e-5)', () => {
    for (const seed of [1, 2]) {
      const model = new M2Gpt({ ...small, learnedPositions: seed === 2 }, { seed });
      const L = 40;
      const base = randomIds(seed, L, small.vocabSize);
      for (const t of [1, 17, 39]) {
        const changed = base.map((id, i) => (i >= t ? (id * 7 + 3) % small.vocabSize : id));
        const ids = tf.tensor2d([base, changed], [2, L], 'int32');
        const { logits } = model.forward(ids);
        const [la, lb] = tf.split(logits, 2, 0);
        expect(maxAbs(tf.slice(la, [0, 0, 0], [1, t, -1]), tf.slice(lb, [0, 0, 0], [1, t, -1]))).toBeLessThanOrEqual(1e-5);
        expect(maxAbs(tf.slice(la, [0, t, 0], [1, 1, -1]), tf.slice(lb, [0, t, 0], [1, 1, -1]))).toBeGreaterThan(1e-3);
        tf.dispose([ids, logits, la, lb]);
      }
      model.dispose();
    }
  });

  it('incremental decoding equals the full forward at every step (≤ 1e-5) and leaks nothing over 50 steps', async () => {
    const model = new M2Gpt({ ...small, maxLength: 64, learnedPositions: true }, { seed: 5 });
    const ids = randomIds(9, 50, small.vocabSize);
    const decoder = model.createIncrementalDecoder();
    const stepped = [decoder.step(ids[0])];
    const before = tf.memory().numTensors;
    for (const id of ids.slice(1)) stepped.push(decoder.step(id));
    expect(tf.memory().numTensors).toBe(before); // the cache grows inside its tensors, not in their number
    decoder.dispose();
    const full = model.forward(tf.tensor2d([ids], undefined, 'int32')).logits;
    const rows = full.arraySync()[0];
    let worst = 0;
    stepped.forEach((logits, t) => logits.forEach((v, j) => (worst = Math.max(worst, Math.abs(v - rows[t][j])))));
    expect(worst).toBeLessThanOrEqual(1e-5);
    // Generation: incremental and naive paths pick the same tokens.
    const options = { maxNewTokens: 20, seed: 4, stopAtEndOfText: false, topK: 50 };
    const fast = await model.generate([1, 2, 3], options);
    const naive = await model.generate([1, 2, 3], { ...options, incremental: false });
    expect(fast.tokens).toEqual(naive.tokens);
    full.dispose();
    model.dispose();
  });

  it('does not grow tf.memory() across 50 generated tokens', async () => {
    const model = new M2Gpt(small, { seed: 6 });
    await model.generate([1], { maxNewTokens: 2 });
    const before = tf.memory().numTensors;
    await model.generate([1, 2], { maxNewTokens: 46, stopAtEndOfText: false });
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
  });

  it('trains: loss decreases on a repeated sequence, gradients reach every trainable variable', () => {
    const model = new M2Gpt(small, { seed: 7 });
    const ids = tf.tensor2d([randomIds(1, 24, small.vocabSize)], undefined, 'int32');
    const variables = model.trainableVariables();
    const { value, grads } = tf.variableGrads(() => model.loss(ids), variables);
    const initial = value.dataSync()[0];
    expect(Math.abs(initial - Math.log(small.vocabSize))).toBeLessThan(1.5); // near uniform at init
    for (const v of variables) expect(grads[v.name], v.name).toBeDefined();
    tf.dispose([value, ...Object.values(grads)]);
    const optimizer = tf.train.adam(3e-2);
    let last = initial;
    for (let i = 0; i < 6; i++) last = (optimizer.minimize(() => model.loss(ids), true, variables) as tf.Scalar).dataSync()[0];
    expect(last).toBeLessThan(initial - 1);
    optimizer.dispose();
    ids.dispose();
    model.dispose();
  });

  it('gradient checkpointing: same loss and gradients, a smaller tape, no leaked tensors', async () => {
    const model = new M2Gpt({ ...small, numLayers: 3 }, { seed: 9 });
    const ids = tf.tensor2d([randomIds(3, 40, small.vocabSize), randomIds(4, 40, small.vocabSize)], undefined, 'int32');
    const variables = model.trainableVariables();
    const step = (gradientCheckpointing: boolean) => tf.variableGrads(() => model.loss(ids, { gradientCheckpointing }), variables);
    const { plainLoss, rematLoss, rematTensors, gaps } = compareCheckpointedStep(step, variables);
    expect(rematTensors).toBe(1 + variables.length);
    expect(Math.abs(rematLoss - plainLoss) / plainLoss).toBeLessThan(1e-6);
    for (const { name, gap } of gaps) expect(gap, name).toBeLessThan(1e-5);
    // forward keeps computeLoss beside the option, and outside a tape the option changes nothing.
    const out = model.forward(ids, { computeLoss: true, gradientCheckpointing: true });
    const reference = model.forward(ids, { computeLoss: true });
    expect(maxAbs(out.logits, reference.logits)).toBe(0);
    expect(out.loss!.dataSync()[0]).toBe(reference.loss!.dataSync()[0]);
    tf.dispose([out.logits, out.loss!, reference.logits, reference.loss!]);
    // The tape's peak: every block's activations vs the block inputs plus one block's activations at a time.
    const peak = async (gradientCheckpointing: boolean) => (await tf.profile(() => tf.dispose(Object.values(step(gradientCheckpointing).grads)))).peakBytes;
    const [plainPeak, rematPeak] = [await peak(false), await peak(true)];
    expect(rematPeak).toBeLessThan(0.8 * plainPeak);
    ids.dispose();
    model.dispose();
  });

  it('saves and loads (same logits), and reports missing or misshapen tensors in one line', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'm2-gpt-'));
    dirs.push(dir);
    const model = new M2Gpt(small, { seed: 8 });
    await model.save(dir);
    const loaded = await M2Gpt.load(dir);
    expect(loaded.config).toEqual(model.config);
    const ids = tf.tensor2d([randomIds(2, 20, small.vocabSize)], undefined, 'int32');
    const [a, b] = [model.forward(ids).logits, loaded.forward(ids).logits];
    expect(maxAbs(a, b)).toBe(0);
    tf.dispose([ids, a, b]);
    loaded.dispose();
    model.dispose();
    const path = join(dir, 'model.safetensors');
    const { tensors } = readSafetensors(new Uint8Array(await readFile(path)));
    tensors.delete('blocks.1.mixer.in_linear.weight');
    tensors.set('wte.weight', { dtype: 'F32', shape: [2, 2], data: new Float32Array(4) });
    await writeFile(path, writeSafetensors(tensors));
    const error = await M2Gpt.load(dir).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FileFormatError);
    expect((error as Error).message).toMatch(/missing blocks\.1\.mixer\.in_linear\.weight; misshapen wte\.weight \[2, 2\] \(expected \[300, 32\]\)\.$/);
  });
});
