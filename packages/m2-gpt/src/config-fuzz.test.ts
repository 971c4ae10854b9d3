// config.json fuzzing (issue 10): seeded mutations of the golden configs and random JSON; every failure is a one-line M2Error.
import { describe, expect, it } from 'vitest';
import { catchOneLineM2Error, mutateJson } from '@monarch-mixer/monarch-core/testing';
import { resolveM2GptConfig } from './index.js';

describe('M2-GPT checkpoint config fuzzing', () => {
  const base = { config: { ...resolveM2GptConfig({ preset: 'tiny', vocabSize: 64 }) } };

  it('10,000 seeded mutations of a checkpoint config: resolved or a one-line M2Error', () => {
    const CASES = 10_000;
    let parsed = 0;
    for (let seed = 0; seed < CASES; seed += 1) {
      const config = mutateJson(base.config, seed);
      if (catchOneLineM2Error(() => resolveM2GptConfig(config as Record<string, unknown>), `seed ${seed}`) === undefined) parsed += 1;
    }
    console.log(`config-fuzz m2-gpt (resolveM2GptConfig): ${CASES} cases, ${parsed} resolved, ${CASES - parsed} rejected with a one-line M2Error`);
    expect(parsed).toBeGreaterThan(0);
    expect(CASES - parsed).toBeGreaterThan(CASES / 4);
  });

});
