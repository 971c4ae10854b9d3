// config.json fuzzing (issue 10): seeded mutations of the golden configs and random JSON; every failure is a one-line M2Error.
import { describe, expect, it } from 'vitest';
import { catchOneLineM2Error, mutateJson } from '@monarch-mixer/monarch-core/testing';
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { configFromHuggingFace } from './index.js';

const fixtures = join(dirname(fileURLToPath(import.meta.url)), '../test/fixtures');
const goldens = readdirSync(fixtures)
  .map((name) => join(fixtures, name, 'config.json'))
  .filter((path) => { try { readFileSync(path); return true; } catch { return false; } })
  .map((path) => JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>);

describe('configFromHuggingFace fuzzing', () => {
  it('parses the golden configs', () => {
    expect(goldens.length).toBeGreaterThanOrEqual(2);
    for (const json of goldens) expect(configFromHuggingFace(json).modelDim).toBe(64);
  });

  it('10,000 seeded mutations of the golden config.json files: parsed or a one-line M2Error, never a crash', () => {
    const CASES = 10_000;
    let parsed = 0;
    for (let seed = 0; seed < CASES; seed += 1) {
      const json = mutateJson(goldens[seed % goldens.length]!, seed);
      if (catchOneLineM2Error(() => configFromHuggingFace(json as Record<string, unknown>), `seed ${seed}`) === undefined) parsed += 1;
    }
    console.log(`config-fuzz m2-bert: ${CASES} cases, ${parsed} parsed, ${CASES - parsed} rejected with a one-line M2Error`);
    expect(parsed).toBeGreaterThan(0);
    expect(CASES - parsed).toBeGreaterThan(CASES / 4);
  });
});
