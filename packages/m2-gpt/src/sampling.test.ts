import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '@monarch-mixer/monarch-core';
import { resolveSamplingOptions, sampleNextToken, SeededRandom } from './sampling.js';

const probs = [0.5, 0.3, 0.15, 0.05];
const logits = Float32Array.from(probs, Math.log);

function frequencies(options: Parameters<typeof resolveSamplingOptions>[0], draws = 40_000): number[] {
  const resolved = resolveSamplingOptions(options);
  const rng = new SeededRandom(7);
  const counts = [0, 0, 0, 0];
  for (let i = 0; i < draws; i++) counts[sampleNextToken(logits, resolved, rng)]++;
  return counts.map((c) => c / draws);
}

describe('sampleNextToken', () => {
  it('samples the softmax distribution at temperature 1', () => {
    frequencies({}).forEach((f, i) => expect(Math.abs(f - probs[i])).toBeLessThan(0.01));
  });

  it('sharpens with temperature: p^(1/T) renormalised', () => {
    const T = 0.5;
    const powered = probs.map((p) => p ** (1 / T));
    const total = powered.reduce((a, b) => a + b);
    frequencies({ temperature: T }).forEach((f, i) => expect(Math.abs(f - powered[i] / total)).toBeLessThan(0.01));
  });

  it('top-k keeps the k most likely, renormalised', () => {
    const f = frequencies({ topK: 2 });
    expect(Math.abs(f[0] - 0.5 / 0.8)).toBeLessThan(0.01);
    expect(Math.abs(f[1] - 0.3 / 0.8)).toBeLessThan(0.01);
    expect(f[2] + f[3]).toBe(0);
  });

  it('top-p keeps the smallest prefix with mass ≥ p', () => {
    const f = frequencies({ topP: 0.9 }); // 0.5 + 0.3 + 0.15 = 0.95 ≥ 0.9 → three tokens
    expect(f[3]).toBe(0);
    expect(Math.abs(f[2] - 0.15 / 0.95)).toBeLessThan(0.01);
    expect(frequencies({ topP: 0.5 })[0]).toBe(1); // the first token alone reaches 0.5
  });

  it('greedy is argmax and top-k 1 equals greedy', () => {
    const rng = new SeededRandom(1);
    expect(sampleNextToken(logits, resolveSamplingOptions({ temperature: 0 }), rng)).toBe(0);
    expect(frequencies({ topK: 1 }, 1000)[0]).toBe(1);
  });

  it('repetition penalty divides positive and multiplies negative logits of seen tokens', () => {
    const l = Float32Array.of(2, 1.5, -1, -3);
    const greedy = resolveSamplingOptions({ temperature: 0, repetitionPenalty: 1.5 });
    // 2/1.5 = 1.33 < 1.5 → token 1 wins once token 0 was seen.
    expect(sampleNextToken(l, greedy, new SeededRandom(0), [0])).toBe(1);
    // Both penalised: 1.33 vs 1.0 → token 0 again.
    expect(sampleNextToken(l, greedy, new SeededRandom(0), [0, 1])).toBe(0);
  });

  it('is reproducible for a seed and differs across seeds', () => {
    const draw = (seed: number) => {
      const rng = new SeededRandom(seed);
      const o = resolveSamplingOptions({ seed });
      return Array.from({ length: 30 }, () => sampleNextToken(logits, o, rng));
    };
    expect(draw(3)).toEqual(draw(3));
    expect(draw(3)).not.toEqual(draw(4));
  });

  it('rejects bad options with one line', () => {
    const bad = [{ topP: 0 }, { topP: 1.5 }, { temperature: -1 }, { topK: 0 }, { topK: 1.5 }, { repetitionPenalty: 0.5 }, { seed: 0.5 }];
    for (const options of bad) {
      expect(() => resolveSamplingOptions(options)).toThrow(InvalidArgumentError);
      try {
        resolveSamplingOptions(options);
      } catch (error) {
        expect((error as Error).message).not.toContain('\n');
      }
    }
  });
});

describe('sampleNextToken on a full vocabulary', () => {
  it('top-p over 50257 logits keeps exactly the sorted prefix reaching p', () => {
    const rng = new SeededRandom(2);
    const logits = Float32Array.from({ length: 50257 }, () => 4 * rng.next());
    const probs = Array.from(logits, (v) => Math.exp(v));
    const total = probs.reduce((a, b) => a + b);
    const sorted = Array.from(probs.keys()).sort((a, b) => probs[b]! - probs[a]! || a - b);
    let cumulative = 0;
    let cut = 0;
    while (cumulative < 0.3) cumulative += probs[sorted[cut++]!]! / total;
    const nucleus = new Set(sorted.slice(0, cut));
    const options = resolveSamplingOptions({ topP: 0.3 });
    const draws = new SeededRandom(3);
    const seen = new Set<number>();
    for (let i = 0; i < 200; i++) seen.add(sampleNextToken(logits, options, draws));
    for (const id of seen) expect(nucleus.has(id)).toBe(true);
    expect(seen.size).toBeGreaterThan(170); // ~10k near-equal candidates: almost every draw is new
  });
});
