// A seeded PRNG whose whole state is one 32-bit integer, so a checkpoint can store it and a resumed run draws
// exactly the numbers an uninterrupted run would have drawn (data order, masking, dropout seeds).
import { InvalidArgumentError, Mulberry32, mixSeed } from '@monarch-mixer/monarch-core';

/**
 * Mulberry32 generator (monarch-core's {@link Mulberry32}, started from {@link mixSeed}`(seed)`) with serialisable
 * state.
 *
 * @example
 * const rng = new TrainRng(7);
 * const saved = rng.state;
 * const a = rng.next();
 * rng.state = saved;
 * rng.next() === a; // → true
 */
export class TrainRng {
  private readonly generator: Mulberry32;

  /**
   * @param seed - Any safe integer; both 32-bit halves are mixed in.
   * @throws InvalidArgumentError if the seed is not a safe integer.
   */
  constructor(seed: number) {
    if (!Number.isSafeInteger(seed)) {
      throw new InvalidArgumentError(`TrainRng: seed must be a safe integer, got ${String(seed)}.`, { parameter: 'seed', value: seed });
    }
    this.generator = new Mulberry32(mixSeed(seed));
  }

  /** The whole generator state (an unsigned 32-bit integer); assign it to restore. */
  get state(): number {
    return this.generator.state;
  }

  set state(value: number) {
    if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
      throw new InvalidArgumentError(`TrainRng: state must be an unsigned 32-bit integer, got ${String(value)}.`);
    }
    this.generator.state = value;
  }

  /** Next uniform float in [0, 1). */
  next(): number {
    return this.generator.next();
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return this.generator.int(n);
  }

  /** A fresh 31-bit seed for a sub-generator (e.g. a model's dropout), drawn from this one. */
  seed(): number {
    return Math.floor(this.next() * 0x7fffffff);
  }

  /** In-place Fisher–Yates shuffle. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [items[i], items[j]] = [items[j], items[i]];
    }
    return items;
  }
}
