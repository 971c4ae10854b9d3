/**
 * Test-only seeded mutation helpers for the loader fuzz suite: a small PRNG and byte-level mutators.
 */

/** mulberry32: a tiny, well-distributed 32-bit PRNG; the same seed gives the same sequence everywhere. */
export class Rng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  /** Uniform in [0, 1). */
  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  /** Integer in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.int(256);
    return out;
  }
}

/** Values that tend to break size arithmetic. */
export const INTERESTING_U32 = [0, 1, 2, 7, 8, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff];
export const INTERESTING_U64 = [0n, 1n, 8n, 2n ** 31n, 2n ** 32n, 2n ** 53n, 2n ** 63n, 2n ** 64n - 1n];

/** A mutated input and a short description for reproducing it. */
export interface Mutant {
  bytes: Uint8Array;
  what: string;
}

/** Generic byte mutations inside [from, to) of `seed` (a fresh copy is returned). */
export function mutateBytes(rng: Rng, seed: Uint8Array, from = 0, to = seed.length): Mutant {
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
