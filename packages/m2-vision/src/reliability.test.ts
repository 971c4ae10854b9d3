// config.json fuzzing (issue 10): seeded mutations of the golden configs and random JSON; every failure is a one-line M2Error.
import { describe, expect, it } from 'vitest';
import { M2Error } from '@monarch-mixer/monarch-core';
import * as tf from '@tensorflow/tfjs-core';
import { M2Vision, resolveM2VisionConfig } from './index.js';

/** Deterministic PRNG (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ODD_VALUES: unknown[] = [
  0, -1, 1, 2, 3, 0.5, -0.5, 1e9, -1e9, 2 ** 31, 2 ** 53, Number.MAX_VALUE, 1e-300, NaN, Infinity, -Infinity,
  '', '768', 'gelu', 'abc', true, false, null, [], [1, 2], {}, { a: 1 }, '__proto__', 'constructor',
];

function randomValue(next: () => number, depth = 0): unknown {
  const r = next();
  if (r < 0.5 || depth > 2) return ODD_VALUES[Math.floor(next() * ODD_VALUES.length)];
  if (r < 0.65) return Math.floor((next() - 0.3) * 5000);
  if (r < 0.75) return String.fromCharCode(...Array.from({ length: Math.floor(next() * 8) }, () => 32 + Math.floor(next() * 90)));
  if (r < 0.88) return Array.from({ length: Math.floor(next() * 4) }, () => randomValue(next, depth + 1));
  return Object.fromEntries(Array.from({ length: Math.floor(next() * 4) }, (_, i) => [`k${i}`, randomValue(next, depth + 1)]));
}

/**
 * Seeded mutation of a JSON object: 1–4 edits per case (replace a value with an odd one, scale a number, delete a
 * key, add an unknown key, change a type), or, one case in eight, a random JSON value.
 */
function mutate(base: Record<string, unknown>, seed: number): unknown {
  const next = rng(seed);
  if (next() < 0.125) return randomValue(next);
  const json: Record<string, unknown> = JSON.parse(JSON.stringify(base));
  const edits = 1 + Math.floor(next() * 4);
  for (let e = 0; e < edits; e += 1) {
    const keys = Object.keys(json);
    const key = keys[Math.floor(next() * keys.length)] ?? 'x';
    const kind = next();
    if (kind < 0.4) json[key] = randomValue(next);
    else if (kind < 0.6 && typeof json[key] === 'number') json[key] = (json[key] as number) * [0, -1, 2, 0.5, 1e6, 1.5][Math.floor(next() * 6)]!;
    else if (kind < 0.75) delete json[key];
    else if (kind < 0.85) json[`unknown_${Math.floor(next() * 100)}`] = randomValue(next);
    else json[key] = typeof json[key] === 'number' ? String(json[key]) : typeof json[key] === 'boolean' ? Number(json[key]) : [json[key]];
  }
  return json;
}

/** Runs `parse`; a failure must be a one-line M2Error. Returns whether the case parsed. */
function check(parse: () => unknown, label: string): boolean {
  try {
    parse();
    return true;
  } catch (error) {
    if (!(error instanceof M2Error) || error.message.includes('\n') || error.message.length === 0) {
      throw new Error(`${label}: expected a one-line M2Error, got ${String(error)}`);
    }
    return false;
  }
}

describe('M2Vision config fuzzing', () => {
  it('10,000 seeded mutations of the tiny and small configs: resolved or a one-line M2Error', () => {
    const bases = [{ ...resolveM2VisionConfig({ preset: 'tiny' }) }, { ...resolveM2VisionConfig({ preset: 'small' }) }] as Record<string, unknown>[];
    const CASES = 10_000;
    let parsed = 0;
    for (let seed = 0; seed < CASES; seed += 1) {
      const config = mutate(bases[seed % 2]!, seed);
      if (check(() => resolveM2VisionConfig(config as Record<string, unknown>), `seed ${seed}`)) parsed += 1;
    }
    console.log(`config-fuzz m2-vision (resolveM2VisionConfig): ${CASES} cases, ${parsed} resolved, ${CASES - parsed} rejected with a one-line M2Error`);
    expect(parsed).toBeGreaterThan(0);
    expect(CASES - parsed).toBeGreaterThan(CASES / 4);
  });
});

describe('M2Vision input validation', () => {
  const model = new M2Vision({ preset: 'tiny', imageSize: 8, patchSize: 4, modelDim: 16, numLayers: 1, filterOrder: 8 });
  const reject = (images: tf.Tensor, pattern: RegExp) => {
    const before = tf.memory().numTensors;
    let caught: unknown;
    try {
      model.logits(images as tf.Tensor4D);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(M2Error);
    expect((caught as Error).message).not.toContain('\n');
    expect((caught as Error).message).toMatch(pattern);
    expect(tf.memory().numTensors).toBe(before);
    images.dispose();
  };
  it('rejects NaN and Infinity pixels', () => {
    reject(tf.fill([1, 8, 8, 1], NaN), /NaN or Infinity/);
    reject(tf.concat([tf.zeros([1, 8, 8, 1]), tf.fill([1, 8, 8, 1], Infinity)]), /NaN or Infinity/);
  });
  it('rejects a wrong size, rank, dtype and an empty batch', () => {
    reject(tf.zeros([1, 9, 8, 1]), /images must be \[batch, 8, 8, 1\], got \[1, 9, 8, 1\]/);
    reject(tf.zeros([8, 8, 1]), /images must be \[batch, 8, 8, 1\], got \[8, 8, 1\]/);
    reject(tf.zeros([1, 8, 8, 1], 'int32'), /must be float32/);
    reject(tf.zeros([0, 8, 8, 1]), /batch of images is empty/);
  });
  it('accepts finite images', () => {
    const images = tf.fill([2, 8, 8, 1], 0.5) as tf.Tensor4D;
    const logits = model.logits(images);
    expect(logits.shape).toEqual([2, 10]);
    tf.dispose([images, logits]);
  });
});
