// Plans for the DFT as a Monarch product (Cooley–Tukey "4-step", m2-architecture.md §1.5), and the constant
// DFT / twiddle matrices they use, cached per (backend, size).
//
// A plan splits N = r_1·r_2·…·r_p ("radices"). Write an input index as digits n = d_1·M_1 + d_2·M_2 + … + d_p
// with M_i = r_{i+1}·…·r_p (d_1 most significant). Stage i contracts digit d_i with a dense DFT of size r_i into a
// frequency digit k_i, multiplies by the twiddles ω_{M_{i−1}}^{b·k_i} (b = the digits still to do, as a number)
// and moves on. The output frequency is k = k_1 + r_1·(k_2 + r_2·(k_3 + …)), stored digit-reversed as
// [k_1, k_2, …, k_p] (row-major). Every stage is one 2-D real matMul with the constant on the B side.
import * as tf from '@tensorflow/tfjs-core';
import type { Tensor, Tensor2D } from '@tensorflow/tfjs-core';
import { InvalidArgumentError } from './errors.js';

/** Largest dense DFT factor (a prime radix above this cannot be used). */
export const MAX_DENSE_RADIX = 2048;

/** A factorisation of an N-point DFT into Monarch stages. */
export interface DftPlan {
  /** Transform size. */
  readonly n: number;
  /** Radices r_1…r_p, r_1 contracted first (the most significant input digit). */
  readonly radices: readonly number[];
}

/** Prime factors of n in ascending order (with repetition). */
export function primeFactors(n: number): number[] {
  const out: number[] = [];
  let rest = n;
  for (let p = 2; p * p <= rest; p++) {
    while (rest % p === 0) {
      out.push(p);
      rest /= p;
    }
  }
  if (rest > 1) out.push(rest);
  return out;
}

/** Groups prime factors into `order` radices of balanced size (largest first), or null if impossible. */
export function balancedRadices(n: number, order: number): number[] | null {
  const primes = primeFactors(n).sort((a, b) => b - a);
  if (n === 1) return order === 1 ? [1] : null;
  if (primes.length < order) return null;
  const bins = new Array<number>(order).fill(1);
  for (const p of primes) {
    let smallest = 0;
    for (let i = 1; i < order; i++) if (bins[i] < bins[smallest]) smallest = i;
    bins[smallest] *= p;
  }
  return bins.sort((a, b) => b - a);
}

/**
 * Estimated cost (in matMul flop units) of one long convolution row on this plan: 8·L·r_1 for the real first and
 * last stages, 16·N·r_i for each complex stage in each direction, plus `passCost` per element for every elementwise
 * pass (twiddles, transposes, concats, frequency product).
 */
export function convCost(n: number, radices: readonly number[], passCost: number): number {
  const p = radices.length;
  const l = n / 2;
  let flops = 8 * l * radices[0];
  for (let i = 1; i < p; i++) flops += 32 * l * radices[i];
  const passes = 12 * (p - 1) + 6 + 4 * p + 2 * (p - 1);
  return flops + passCost * passes * n;
}

/** Cost of one complex transform (fft/ifft) per row. */
function complexCost(n: number, radices: readonly number[], passCost: number): number {
  const p = radices.length;
  let flops = 0;
  for (const r of radices) flops += 8 * n * r;
  return flops + passCost * (8 * (p - 1) + 2 * p) * n;
}

/** Element passes are worth about this many matMul flops (measured ratio on wasm and cpu). */
export const PASS_COST = 24;

function bestRadices(n: number, cost: (radices: number[]) => number, order?: number): number[] | null {
  const orders = order === undefined ? [1, 2, 3, 4] : [order];
  let best: number[] | null = null;
  let bestCost = Infinity;
  for (const p of orders) {
    const radices = balancedRadices(n, p);
    if (radices === null || radices[0] > MAX_DENSE_RADIX) continue;
    const c = cost(radices);
    if (c < bestCost) {
      best = radices;
      bestCost = c;
    }
  }
  return best;
}

const planCache = new Map<string, DftPlan>();

/**
 * The plan for an N-point complex DFT (fft / ifft / rfft / irfft): mixed radix, order chosen by a cost model.
 *
 * @throws InvalidArgumentError if N has a prime factor above {@link MAX_DENSE_RADIX}.
 */
export function dftPlan(op: string, n: number, order?: number): DftPlan {
  const key = `dft:${n}:${order ?? ''}`;
  let plan = planCache.get(key);
  if (plan === undefined) {
    const radices = bestRadices(n, (r) => complexCost(n, r, PASS_COST), order);
    if (radices === null) {
      const primes = primeFactors(n);
      const largest = primes[primes.length - 1];
      if (largest > MAX_DENSE_RADIX) {
        throw new InvalidArgumentError(
          `${op}: cannot factor N = ${n} into Monarch radices: prime factor ${largest} > ${MAX_DENSE_RADIX} (largest dense DFT factor); use a length with smaller prime factors`,
          { parameter: 'n', value: n },
        );
      }
      throw new InvalidArgumentError(`${op}: N = ${n} has only ${primes.length} prime factors, cannot use order ${order}`, { parameter: 'order', value: order });
    }
    plan = { n, radices };
    planCache.set(key, plan);
  }
  return plan;
}

/**
 * The plan for a long convolution of length L: FFT size N ≥ 2L (2L itself unless a nearby size with smaller prime
 * factors is clearly cheaper, as for L = 4099), and its radices.
 */
export function convPlan(l: number, order?: number): DftPlan {
  const key = `conv:${l}:${order ?? ''}`;
  let plan = planCache.get(key);
  if (plan === undefined) {
    let best: DftPlan | null = null;
    let bestCost = Infinity;
    const limit = Math.max(2 * l + 8, Math.ceil(2.5 * l));
    for (let n = 2 * l; n <= limit; n += 2) {
      if (n > 2 * l && primeFactors(n).some((p) => p > 7)) continue; // only smooth sizes beyond 2L
      const radices = bestRadices(n, (r) => convCost(n, r, PASS_COST), order);
      if (radices === null) continue;
      // Prefer exactly 2L unless another size saves more than 15 %.
      const c = convCost(n, radices, PASS_COST) * (n === 2 * l ? 0.85 : 1);
      if (c < bestCost) {
        best = { n, radices };
        bestCost = c;
      }
    }
    if (best === null) {
      throw new InvalidArgumentError(`long convolution: no Monarch plan of order ${order} for L = ${l}`, { parameter: 'order', value: order });
    }
    plan = best;
    planCache.set(key, plan);
  }
  return plan;
}

// ---------------------------------------------------------------------------------------------------------------
// Constant matrices, cached per backend.

const constants = new Map<string, Tensor>();

function cached(key: string, make: () => { values: Float32Array; shape: number[] }): Tensor {
  const fullKey = `${tf.getBackend()}|${key}`;
  let t = constants.get(fullKey);
  if (t === undefined || t.isDisposed) {
    const { values, shape } = make();
    t = tf.keep(tf.tensor(values, shape, 'float32'));
    constants.set(fullKey, t);
  }
  return t;
}

/**
 * Disposes every cached DFT / twiddle constant (they are rebuilt on the next call).
 *
 * @example
 * clearDftCache();
 */
export function clearDftCache(): void {
  for (const t of constants.values()) if (!t.isDisposed) t.dispose();
  constants.clear();
}

/** Number of cached constant tensors (for tests). */
export function dftCacheSize(): number {
  return constants.size;
}

/** cos and −sin of 2π·j/m for j = 0..m−1 (so ω_m^j = cos[j] + i·sin[j] with ω_m = e^{−2πi/m}). */
function unitRoots(m: number): { cos: Float64Array; sin: Float64Array } {
  const cos = new Float64Array(m);
  const sin = new Float64Array(m);
  for (let j = 0; j < m; j++) {
    cos[j] = Math.cos((2 * Math.PI * j) / m);
    sin[j] = -Math.sin((2 * Math.PI * j) / m);
  }
  return { cos, sin };
}

/** Which real matrix of a DFT factor: entries cos(2π·i·j/r), sin(2π·i·j/r) or −sin(2π·i·j/r). */
export type FactorPart = 'cos' | 'sin' | 'negsin';

/**
 * One real part of a dense DFT factor of size r, restricted to [rows, cols] (rows or cols < r when only some digits
 * are used), scaled, for x · W. With `transposed`, the [cols, rows] transpose (for the backward pass).
 */
export function dftMatrix(part: FactorPart, r: number, rows: number, cols: number, scale: number, transposed = false): Tensor2D {
  return cached(`F|${part}|${r}|${rows}|${cols}|${scale}|${transposed ? 'T' : ''}`, () => {
    const values = new Float32Array(rows * cols);
    const sign = part === 'negsin' ? -1 : 1;
    for (let i = 0; i < rows; i++) {
      for (let j = 0; j < cols; j++) {
        const angle = (2 * Math.PI * ((i * j) % r)) / r;
        const v = scale * (part === 'cos' ? Math.cos(angle) : sign * Math.sin(angle));
        if (transposed) values[j * rows + i] = v;
        else values[i * cols + j] = v;
      }
    }
    return { values, shape: transposed ? [cols, rows] : [rows, cols] };
  }) as Tensor2D;
}

/**
 * cos and sin of 2π·k/N for every position of the digit-reversed layout [k_1, …, k_p] (k = k_1 + r_1·(k_2 + …)),
 * as [N] tensors: ω_N^{−k} = cos + i·sin.
 */
export function layoutPhase(plan: DftPlan): { cos: Tensor; sin: Tensor } {
  const { n, radices } = plan;
  const make = (part: 'cos' | 'sin') => () => {
    const values = new Float32Array(n);
    // Row-major over [k_1, …, k_p]: the last digit varies fastest.
    const digits = new Array<number>(radices.length).fill(0);
    for (let pos = 0; pos < n; pos++) {
      let k = 0;
      for (let i = radices.length - 1; i >= 0; i--) k = k * radices[i] + digits[i];
      const angle = (2 * Math.PI * k) / n;
      values[pos] = part === 'cos' ? Math.cos(angle) : Math.sin(angle);
      for (let i = radices.length - 1; i >= 0; i--) {
        if (++digits[i] < radices[i]) break;
        digits[i] = 0;
      }
    }
    return { values, shape: [n] };
  };
  const key = `P|${radices.join('.')}`;
  return { cos: cached(`${key}|cos`, make('cos')), sin: cached(`${key}|sin`, make('sin')) };
}

/** Twiddles ω_m^{b·k} for b < rest, k < r, m = rest·r, as flat [rest·r] real and imaginary parts. */
export function twiddles(rest: number, r: number): { re: Tensor; im: Tensor } {
  const m = rest * r;
  const make = (part: 're' | 'im') => () => {
    const values = new Float32Array(rest * r);
    for (let b = 0; b < rest; b++) {
      for (let k = 0; k < r; k++) {
        const angle = (2 * Math.PI * ((b * k) % m)) / m;
        values[b * r + k] = part === 're' ? Math.cos(angle) : -Math.sin(angle);
      }
    }
    return { values, shape: [rest * r] };
  };
  // Flat [rest·r]: data is multiplied as [outer, rest·r] × [rest·r] (wasm's fast broadcast case).
  return { re: cached(`T|${rest}|${r}|re`, make('re')), im: cached(`T|${rest}|${r}|im`, make('im')) };
}
