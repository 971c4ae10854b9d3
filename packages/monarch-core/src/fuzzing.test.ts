import { describe, expect, it } from 'vitest';
import { ConfigError } from './errors.js';
import { FuzzRng, catchOneLineM2Error, mutateJson } from './fuzzing.js';

describe('fuzzing helpers', () => {
  it('catchOneLineM2Error passes returns and one-line M2Errors, and rejects everything else', () => {
    expect(catchOneLineM2Error(() => 1)).toBeUndefined();
    const error = new ConfigError('config: hidden_size must be ≥ 1, got 0.');
    expect(catchOneLineM2Error(() => { throw error; })).toBe(error);
    expect(() => catchOneLineM2Error(() => { throw new ConfigError('two\nlines'); }, 'seed 3')).toThrow(/^seed 3: expected a one-line M2Error/);
    expect(() => catchOneLineM2Error(() => { throw new TypeError('x'); }, 'seed 4')).toThrow(/^seed 4: expected a one-line M2Error, got TypeError: x$/);
  });

  it('mutateJson leaves its base alone; FuzzRng ranges stay inside their bounds', () => {
    const base = { hidden_size: 64, layers: [1, 2] };
    for (let seed = 0; seed < 200; seed += 1) mutateJson(base, seed);
    expect(base).toEqual({ hidden_size: 64, layers: [1, 2] });
    const rng = new FuzzRng(5);
    for (let i = 0; i < 1000; i += 1) {
      const v = rng.range(-3, 3);
      expect(Number.isInteger(v) && v >= -3 && v <= 3).toBe(true);
    }
  });
});
