// config.json fuzzing (issue 10): seeded mutations of the golden configs and random JSON; every failure is a one-line M2Error.
import { describe, expect, it } from 'vitest';
import { M2Error } from '@monarch-mixer/monarch-core';
import { resolveM2GptConfig } from './index.js';

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

describe('M2-GPT checkpoint config fuzzing', () => {
  const base = { config: { ...resolveM2GptConfig({ preset: 'tiny', vocabSize: 64 }) } };

  it('10,000 seeded mutations of a checkpoint config: resolved or a one-line M2Error', () => {
    const CASES = 10_000;
    let parsed = 0;
    for (let seed = 0; seed < CASES; seed += 1) {
      const config = mutate(base.config, seed);
      if (check(() => resolveM2GptConfig(config as Record<string, unknown>), `seed ${seed}`)) parsed += 1;
    }
    console.log(`config-fuzz m2-gpt (resolveM2GptConfig): ${CASES} cases, ${parsed} resolved, ${CASES - parsed} rejected with a one-line M2Error`);
    expect(parsed).toBeGreaterThan(0);
    expect(CASES - parsed).toBeGreaterThan(CASES / 4);
  });

});
