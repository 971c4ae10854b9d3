import { describe, expect, it } from 'vitest';
import type { CommonTrainFlags } from './flags.js';
import { totalSteps, trainerOptions } from './run-options.js';

const flags: CommonTrainFlags = { accumulate: 2, clipNorm: 0.5, seed: 7, keep: 3, backend: 'wasm', progress: false, json: 'r.json' };
const settings = { outDir: 'runs/x', steps: 60, optimizer: { lr: 1e-3, weightDecay: 0.1 }, evalEvery: 50, checkpointEvery: 100, runOptions: { command: 'gpt' } };

describe('trainerOptions', () => {
  it('takes the shared flags and falls back to the command defaults for unset intervals', () => {
    expect(trainerOptions(flags, settings)).toEqual({
      outDir: 'runs/x', steps: 60, maxMinutes: undefined, seed: 7, optimizer: { lr: 1e-3, weightDecay: 0.1 },
      warmupSteps: undefined, lrFloor: undefined, clipNorm: 0.5, accumulate: 2, evalEvery: 50, earlyStopPatience: undefined,
      checkpointEvery: 100, keepCheckpoints: 3, resume: undefined, progress: false, jsonFile: 'r.json',
      runOptions: { ...flags, command: 'gpt' },
    });
  });

  it('lets flags override the command defaults, and a command keep --json for itself', () => {
    const given = { ...flags, evalEvery: 0, checkpointEvery: 20, warmupSteps: 5, earlyStop: 2, resume: 'runs/x' };
    const options = trainerOptions(given, { ...settings, warmupSteps: 9, jsonFile: null });
    expect([options.evalEvery, options.checkpointEvery, options.warmupSteps, options.earlyStopPatience, options.resume, options.jsonFile])
      .toEqual([0, 20, 5, 2, 'runs/x', undefined]);
    expect(trainerOptions(flags, { ...settings, warmupSteps: 9 }).warmupSteps).toBe(9);
  });

  it('totalSteps: --steps, else unbounded with --max-minutes, else the default', () => {
    expect(totalSteps({ steps: 12 }, 1000)).toBe(12);
    expect(totalSteps({ maxMinutes: 2 }, 1000)).toBe(Infinity);
    expect(totalSteps({}, 1000)).toBe(1000);
  });
});
