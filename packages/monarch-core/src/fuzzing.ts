// Seeded mutators for the fuzz suites of every package (checkpoint bytes in monarch-core, config.json objects in
// m2-bert / m2-gpt / m2-vision): the same seed gives the same mutant everywhere, so a failing seed reproduces.
// Exported through `@monarch-mixer/monarch-core/testing`.
import { M2Error } from './errors.js';
import { Mulberry32 } from './random.js';

/**
 * A {@link Mulberry32} stream with the helpers a fuzzer needs (ranges, picks, random bytes).
 *
 * @example
 * const rng = new FuzzRng(7);
 * rng.range(1, 6); // → the same die roll on every run
 */
export class FuzzRng extends Mulberry32 {
  /**
   * Uniform integer in [lo, hi] (both ends included).
   * @param lo - Smallest value.
   * @param hi - Largest value (≥ lo).
   */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  /**
   * One item of `items`, uniformly.
   * @param items - A non-empty list.
   */
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }

  /**
   * `n` uniformly random bytes.
   * @param n - How many.
   */
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.int(256);
    return out;
  }
}

/** 32-bit values that tend to break size arithmetic (lengths, offsets, counts). */
export const INTERESTING_U32: readonly number[] = [0, 1, 2, 7, 8, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff];

/** 64-bit values that tend to break size arithmetic (past 2³¹, 2³², 2⁵³, 2⁶³). */
export const INTERESTING_U64: readonly bigint[] = [0n, 1n, 8n, 2n ** 31n, 2n ** 32n, 2n ** 53n, 2n ** 63n, 2n ** 64n - 1n];

/** A mutated input and a short description for reproducing it. */
export interface Mutant {
  /** The mutated bytes. */
  bytes: Uint8Array;
  /** What was done, e.g. `flip bits at 3,17`. */
  what: string;
}

/**
 * One generic byte mutation inside [from, to) of `seed` (bit flips, a special byte, an interesting u32, truncation,
 * deletion, insertion or overwrite of random bytes); `seed` itself is not modified.
 *
 * @param rng - The fuzzer's generator (advanced).
 * @param seed - The input to mutate.
 * @param from - First byte that may change (default 0).
 * @param to - One past the last byte that may change (default the end).
 * @returns The mutant and its description.
 * @example
 * const { bytes, what } = mutateBytes(new FuzzRng(1), new TextEncoder().encode('{"a":1}'));
 */
export function mutateBytes(rng: FuzzRng, seed: Uint8Array, from = 0, to = seed.length): Mutant {
  const b = seed.slice();
  const at = () => rng.range(from, Math.max(from, to - 1));
  switch (rng.int(7)) {
    case 0: {
      const n = rng.range(1, 8);
      const where: number[] = [];
      for (let i = 0; i < n; i++) {
        const p = at();
        b[p] ^= 1 << rng.int(8);
        where.push(p);
      }
      return { bytes: b, what: `flip bits at ${where.join(',')}` };
    }
    case 1: {
      const p = at();
      const v = rng.pick([0x00, 0xff, 0x7f, 0x80, 0x20, 0x22, 0x7b, 0x7d, 0x5b, 0x2c, rng.int(256)]);
      b[p] = v;
      return { bytes: b, what: `set byte ${p} = ${v}` };
    }
    case 2: {
      const p = at();
      const v = rng.pick(INTERESTING_U32);
      if (p + 4 <= b.length) new DataView(b.buffer).setUint32(p, v, true);
      return { bytes: b, what: `set u32 at ${p} = ${v}` };
    }
    case 3: {
      const n = rng.int(seed.length + 1);
      return { bytes: seed.slice(0, n), what: `truncate to ${n}` };
    }
    case 4: {
      const p = at();
      const n = rng.range(1, 64);
      const out = new Uint8Array(seed.length - Math.min(n, seed.length - p));
      out.set(seed.subarray(0, p));
      out.set(seed.subarray(p + n), p);
      return { bytes: out, what: `delete ${n} bytes at ${p}` };
    }
    case 5: {
      const p = at();
      const ins = rng.bytes(rng.range(1, 32));
      const out = new Uint8Array(seed.length + ins.length);
      out.set(seed.subarray(0, p));
      out.set(ins, p);
      out.set(seed.subarray(p), p + ins.length);
      return { bytes: out, what: `insert ${ins.length} random bytes at ${p}` };
    }
    default: {
      const p = at();
      const n = rng.range(1, 64);
      b.set(rng.bytes(Math.min(n, b.length - p)), p);
      return { bytes: b, what: `overwrite ${n} random bytes at ${p}` };
    }
  }
}

/** JSON values that tend to break config parsing: zero, negatives, fractions, huge numbers, NaN/±Infinity, wrong types, prototype keys. */
export const ODD_JSON_VALUES: readonly unknown[] = [
  0, -1, 1, 2, 3, 0.5, -0.5, 1e9, -1e9, 2 ** 31, 2 ** 53, Number.MAX_VALUE, 1e-300, NaN, Infinity, -Infinity,
  '', '768', 'gelu', 'abc', true, false, null, [], [1, 2], {}, { a: 1 }, '__proto__', 'constructor',
];

/**
 * A random JSON-like value: half the time one of {@link ODD_JSON_VALUES}, otherwise an integer, a short string, or
 * (up to depth 3) an array or object of random values.
 *
 * @param rng - The fuzzer's generator (advanced).
 * @param depth - Nesting depth so far (default 0).
 * @example
 * randomJsonValue(new FuzzRng(3)); // → the same value on every run
 */
export function randomJsonValue(rng: Mulberry32, depth = 0): unknown {
  const r = rng.next();
  if (r < 0.5 || depth > 2) return ODD_JSON_VALUES[Math.floor(rng.next() * ODD_JSON_VALUES.length)];
  if (r < 0.65) return Math.floor((rng.next() - 0.3) * 5000);
  if (r < 0.75) return String.fromCharCode(...Array.from({ length: Math.floor(rng.next() * 8) }, () => 32 + Math.floor(rng.next() * 90)));
  if (r < 0.88) return Array.from({ length: Math.floor(rng.next() * 4) }, () => randomJsonValue(rng, depth + 1));
  return Object.fromEntries(Array.from({ length: Math.floor(rng.next() * 4) }, (_, i) => [`k${i}`, randomJsonValue(rng, depth + 1)]));
}

/**
 * Seeded mutation of a JSON object (a config): 1–4 edits (replace a value with an odd one, scale a number, delete a
 * key, add an unknown key, change a type), or, one case in eight, a random JSON value instead. `base` is not modified.
 *
 * @param base - A valid config object (JSON-serialisable).
 * @param seed - The case number; the same seed gives the same mutant.
 * @returns The mutant (usually an object, sometimes any JSON value).
 * @example
 * const config = mutateJson({ hidden_size: 64, num_hidden_layers: 2 }, 17);
 */
export function mutateJson(base: Record<string, unknown>, seed: number): unknown {
  const rng = new Mulberry32(seed);
  if (rng.next() < 0.125) return randomJsonValue(rng);
  const json: Record<string, unknown> = JSON.parse(JSON.stringify(base));
  const edits = 1 + Math.floor(rng.next() * 4);
  for (let e = 0; e < edits; e += 1) {
    const keys = Object.keys(json);
    const key = keys[Math.floor(rng.next() * keys.length)] ?? 'x';
    const kind = rng.next();
    if (kind < 0.4) json[key] = randomJsonValue(rng);
    else if (kind < 0.6 && typeof json[key] === 'number') json[key] = (json[key] as number) * [0, -1, 2, 0.5, 1e6, 1.5][Math.floor(rng.next() * 6)]!;
    else if (kind < 0.75) delete json[key];
    else if (kind < 0.85) json[`unknown_${Math.floor(rng.next() * 100)}`] = randomJsonValue(rng);
    else json[key] = typeof json[key] === 'number' ? String(json[key]) : typeof json[key] === 'boolean' ? Number(json[key]) : [json[key]];
  }
  return json;
}

/**
 * Runs `fn` and checks how it failed: a non-empty, one-line {@link M2Error} is the only failure allowed.
 *
 * @param fn - The call under test.
 * @param label - Names the case in the thrown message (e.g. `seed 17`).
 * @returns `undefined` when `fn` returned, the error when it threw a one-line M2Error.
 * @throws Error naming `label` when `fn` threw anything else (another error type, an empty or multi-line message).
 * @example
 * const error = catchOneLineM2Error(() => resolveConfig(mutateJson(base, seed)), `seed ${seed}`);
 * if (error === undefined) parsed += 1;
 */
export function catchOneLineM2Error(fn: () => unknown, label = 'call'): M2Error | undefined {
  try {
    fn();
    return undefined;
  } catch (error) {
    if (!(error instanceof M2Error) || error.message.includes('\n') || error.message.length === 0) {
      throw new Error(`${label}: expected a one-line M2Error, got ${String(error)}`);
    }
    return error;
  }
}
