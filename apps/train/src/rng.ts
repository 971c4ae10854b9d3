// A seeded PRNG whose whole state is one 32-bit integer, so a checkpoint can store it and a resumed run draws
// exactly the numbers an uninterrupted run would have drawn (data order, masking, dropout seeds).
import { InvalidArgumentError } from '@monarch-mixer/monarch-core';

/**
 * Mulberry32 generator with serialisable state.
 *
 * @example
 * const rng = new TrainRng(7);
 * const saved = rng.state;
 * const a = rng.next();
 * rng.state = saved;
 * rng.next() === a; // → true
 */
export class TrainRng {
  private current: number;

  /**
   * @param seed - Any safe integer; both 32-bit halves are mixed in.
   * @throws InvalidArgumentError if the seed is not a safe integer.
   */
  constructor(seed: number) {
    if (!Number.isSafeInteger(seed)) {
      throw new InvalidArgumentError(`TrainRng: seed must be a safe integer, got ${String(seed)}.`, { parameter: 'seed', value: seed });
    }
    const high = Math.floor(seed / 2 ** 32) | 0;
    let s = (seed | 0) ^ Math.imul(high, 0x9e3779b9);
    s = Math.imul(s ^ (s >>> 16), 0x85ebca6b);
    s = Math.imul(s ^ (s >>> 13), 0xc2b2ae35);
    this.current = (s ^ (s >>> 16)) >>> 0;
  }

  /** The whole generator state (an unsigned 32-bit integer); assign it to restore. */
  get state(): number {
    return this.current;
  }

  set state(value: number) {
    if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
      throw new InvalidArgumentError(`TrainRng: state must be an unsigned 32-bit integer, got ${String(value)}.`);
    }
    this.current = value;
  }

  /** Next uniform float in [0, 1). */
  next(): number {
    this.current = (this.current + 0x6d2b79f5) >>> 0;
    let t = this.current;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
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
