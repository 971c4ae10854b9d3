// Seeded random numbers: one Mulberry32 generator shared by weight initialisation, sampling, training data order
// and the fuzz tests, so that the same seed gives the same numbers in every package, on every platform and backend.
import { InvalidArgumentError } from './errors.js';

/**
 * Folds a seed into a well-mixed 32-bit generator state (both 32-bit halves of a safe integer are mixed in, then the
 * MurmurHash3 finaliser spreads the bits), so that nearby seeds such as 0, 1, 2 start far apart and seeds beyond
 * 2³² still differ.
 *
 * @param seed - Any safe integer (other numbers are truncated the way `| 0` truncates them).
 * @returns An unsigned 32-bit integer, to pass to {@link Mulberry32} or assign to its `state`.
 * @example
 * new Mulberry32(mixSeed(42)).next(); // → the same number on every run
 */
export function mixSeed(seed: number): number {
  const high = Math.floor(seed / 2 ** 32) | 0;
  let s = (seed | 0) ^ Math.imul(high, 0x9e3779b9);
  s = Math.imul(s ^ (s >>> 16), 0x85ebca6b);
  s = Math.imul(s ^ (s >>> 13), 0xc2b2ae35);
  return (s ^ (s >>> 16)) >>> 0;
}

/**
 * The Mulberry32 generator: uniform floats in [0, 1) from a state that is one unsigned 32-bit integer, so it can be
 * saved (`rng.state`) and restored (`rng.state = saved`) exactly. The same state gives the same sequence everywhere.
 *
 * The state is used as given (reduced with `>>> 0`); pass a seed through {@link mixSeed} first when nearby seeds
 * should give unrelated sequences.
 *
 * @example
 * const rng = new Mulberry32(7);
 * const saved = rng.state;
 * const a = rng.next();
 * rng.state = saved;
 * rng.next() === a; // → true
 */
export class Mulberry32 {
  private current: number;

  /** @param state - The initial state; any number, reduced to an unsigned 32-bit integer with `>>> 0`. */
  constructor(state: number) {
    this.current = state >>> 0;
  }

  /**
   * The whole generator state (an unsigned 32-bit integer); assign it to restore.
   * @throws InvalidArgumentError when an assigned value is not an integer in [0, 2³²).
   */
  get state(): number {
    return this.current;
  }

  set state(value: number) {
    if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
      throw new InvalidArgumentError(`Mulberry32: state must be an unsigned 32-bit integer, got ${String(value)}.`, { parameter: 'state', value });
    }
    this.current = value;
  }

  /** Next uniform float in [0, 1) (a multiple of 2⁻³²). */
  next(): number {
    this.current = (this.current + 0x6d2b79f5) >>> 0;
    let t = this.current;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /**
   * Uniform integer in [0, n), from one draw.
   * @param n - The number of outcomes (a positive integer).
   */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
}

/**
 * A Mulberry32 stream as a plain function: each call returns the next uniform float in [0, 1). The same sequence as
 * `new Mulberry32(seed).next()` called repeatedly.
 *
 * @param seed - The initial state; any number, reduced to an unsigned 32-bit integer with `>>> 0`.
 * @returns A function drawing the next number.
 * @example
 * const next = mulberry32(1);
 * next(); // → 0.6270739405881613
 */
export function mulberry32(seed: number): () => number {
  const rng = new Mulberry32(seed);
  return () => rng.next();
}
