// Learning-rate schedule of the original recipes (m2-architecture.md §6.2–6.3): linear warmup, then linear
// decay to a floor (0.02× the peak for pretraining, 0 for GLUE fine-tuning).
import { InvalidArgumentError } from '@monarch-mixer/monarch-core';

/** A linear warmup + linear decay schedule, as multipliers of each group's peak learning rate. */
export interface ScheduleOptions {
  /** Steps of linear warmup from 0 to the peak. */
  warmupSteps: number;
  /** Total optimiser steps; the decay ends here. `Infinity` keeps the peak after warmup. */
  totalSteps: number;
  /** Multiplier reached at `totalSteps` (composer's `alpha_f`). Default 0.02. */
  floor?: number;
  /**
   * For a time-budgeted run (`totalSteps` = `Infinity` with `--max-minutes`): the fraction of the budget used,
   * in [0, 1]. The decay then follows the clock instead of the step count, reaching `floor` at the deadline.
   */
  timeFraction?: number;
}

/**
 * Learning-rate multiplier for optimiser step `step` (1-based: the first update is step 1).
 *
 * warmup: step / warmupSteps for step ≤ warmupSteps; then
 * decay: 1 − (1 − floor) · (step − warmupSteps) / (totalSteps − warmupSteps), held at `floor` afterwards;
 * with unbounded `totalSteps` and a `timeFraction`: 1 − (1 − floor) · timeFraction (a time-budgeted run).
 *
 * @param step - Optimiser step, ≥ 1.
 * @param options - {@link ScheduleOptions}.
 * @returns The multiplier in [0, 1].
 * @throws InvalidArgumentError on a negative warmup or a floor outside [0, 1].
 * @example
 * linearWarmupDecay(5, { warmupSteps: 10, totalSteps: 110, floor: 0 }); // → 0.5
 * linearWarmupDecay(60, { warmupSteps: 10, totalSteps: 110, floor: 0 }); // → 0.5
 */
export function linearWarmupDecay(step: number, options: ScheduleOptions): number {
  const { warmupSteps, totalSteps, floor = 0.02 } = options;
  if (!(warmupSteps >= 0) || !(floor >= 0 && floor <= 1)) {
    throw new InvalidArgumentError(`linearWarmupDecay: need warmupSteps ≥ 0 and floor in [0, 1], got ${warmupSteps} and ${floor}.`);
  }
  if (warmupSteps > 0 && step <= warmupSteps) return step / warmupSteps;
  if (!Number.isFinite(totalSteps)) {
    if (options.timeFraction === undefined) return 1;
    return 1 - (1 - floor) * Math.min(1, Math.max(0, options.timeFraction));
  }
  const decaySteps = totalSteps - warmupSteps;
  if (decaySteps <= 0) return floor;
  const progress = Math.min(1, (step - warmupSteps) / decaySteps);
  return 1 - (1 - floor) * progress;
}
