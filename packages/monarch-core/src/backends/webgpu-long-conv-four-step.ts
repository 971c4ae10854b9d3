// WGSL of the fused long convolution for rows longer than one workgroup's memory (webgpu-long-conv.ts keeps a
// whole row in workgroup memory up to M = 4096 complex values): the half-length FFT of M = M1·M2 points as the
// "four-step" FFT in three passes over a scratch tensor S [rows, M1, M2] (complex, interleaved):
//
//   columns         z[M2·m1 + m2] → FFT over m1 (length M1) → ·ω_M^{m2·k1} → S[r, k1, m2]
//   rows            per pair of rows {k1, M1 − k1}: FFT over m2 (length M2) gives Z[k1 + M1·k2]; the real
//                   signal's spectrum of the frequencies k and M − k (which lie in these two rows) is untangled,
//                   multiplied by K̂ (or written out as the kernel spectrum, or accumulated as Σ_b Ĝ·Ū for the
//                   kernel gradient), folded back to the real inverse's half-length form, inverse FFT over k2,
//                   ·ω_M^{−m2·k1} → S'[r, k1, m2]
//   columnsInverse  inverse FFT over k1 → y[2m] + i·y[2m+1] at m = M2·m1 + m2 → the first L outputs (+ D⊙u), or
//                   the kernel-gradient rows.
// The frequency-domain product happens in the four-step's transposed order, so no transpose is materialised.
// `W` holds ω_N^j = (cos, −sin)(2πj/N) for all j < N.
import { kernelTapFunction, placedKernelFunction, WGSL_COMPLEX, WGSL_REAL_PAIRS } from './webgpu-wgsl-common.js';

/** Sizes of a four-step transform. */
export interface FourStepPlan {
  /** Half the transform size N = 2M (a power of two). */
  m: number;
  /** Column length (the first, strided FFT). */
  m1: number;
  /** Row length (the second, contiguous FFT); 2·M2 complex values fit in workgroup memory. */
  m2: number;
  /** Columns per workgroup in the column passes. */
  columns: number;
}

/** Threads per workgroup of every four-step pass. */
export const FOUR_STEP_THREADS = 256;

/**
 * Splits M for a device whose workgroups hold `rowBytes` bytes: M2 = the largest power of two with 2·M2 complex
 * values (16·M2 bytes) in that memory, M1 = M / M2, and columns·M1 ≤ 2048 complex values per column workgroup.
 *
 * @param m - Half the transform size (a power of two ≥ 4).
 * @param rowBytes - Workgroup memory available.
 * @returns The plan.
 * @example
 * fourStepPlan(16384, 32768); // → { m: 16384, m1: 8, m2: 2048, columns: 256 }
 */
export function fourStepPlan(m: number, rowBytes: number): FourStepPlan {
  let m2 = 2;
  while (m2 * 2 <= m / 2 && 16 * m2 * 2 <= rowBytes) m2 *= 2;
  const m1 = m / m2;
  let columns = 1;
  while (columns * 2 <= m2 && columns * 2 * m1 <= Math.max(2048, m1) && 8 * columns * 2 * m1 <= rowBytes) columns *= 2;
  return { m, m1, m2, columns };
}

/** Radix-2 FFTs over `count` sequences of `len` complex values laid out one after another in m2buf. */
function fftFunctions(prefix: string, len: number, count: number, logN: number): string {
  const log = Math.round(Math.log2(len));
  const half = len >> 1;
  const threads = FOUR_STEP_THREADS;
  const butterfly = (inverse: boolean) => `
        let base = (j >> ${log - 1}u) * ${len}u;
        let jj = j & ${half - 1}u;
        let pos = jj & (span - 1u);
        let i0 = base + (((jj >> sh) << s) | pos);
        ${inverse ? `let a = m2Get(i0);
        let b = m2Mul(m2Get(i0 + span), m2Conj(m2Tw(pos << (${logN - 1}u - sh))));
        m2Set(i0, a + b);
        m2Set(i0 + span, a - b);` : `let a = m2Get(i0);
        let b = m2Get(i0 + span);
        m2Set(i0, a + b);
        m2Set(i0 + span, m2Mul(a - b, m2Tw(pos << (${logN - 1}u - sh))));`}`;
  return `
  fn ${prefix}Rev(k : u32) -> u32 { return reverseBits(k) >> ${32 - log}u; }
  // Decimation in frequency: natural order in, bit-reversed out, per sequence.
  fn ${prefix}Forward(t : u32) {
    for (var s : u32 = ${log}u; s > 0u; s = s - 1u) {
      let sh = s - 1u;
      let span = 1u << sh;
      for (var j = t; j < ${count * half}u; j = j + ${threads}u) {${butterfly(false)}
      }
      workgroupBarrier();
    }
  }
  // Decimation in time, conjugate twiddles: bit-reversed in, natural out (unscaled), per sequence.
  fn ${prefix}Inverse(t : u32) {
    for (var s : u32 = 1u; s <= ${log}u; s = s + 1u) {
      let sh = s - 1u;
      let span = 1u << sh;
      for (var j = t; j < ${count * half}u; j = j + ${threads}u) {${butterfly(true)}
      }
      workgroupBarrier();
    }
  }
  `;
}

function helpers(complexCount: number, n: number): string {
  return `
  var<workgroup> m2buf : array<f32, ${2 * complexCount}>;
  const m2Scale : f32 = ${1 / n};
  fn m2Get(i : u32) -> vec2<f32> { return vec2<f32>(m2buf[2u * i], m2buf[2u * i + 1u]); }
  fn m2Set(i : u32, v : vec2<f32>) { m2buf[2u * i] = v.x; m2buf[2u * i + 1u] = v.y; }
  ${WGSL_COMPLEX}`;
}

/** Which four-step pass, and what it reads or produces. */
export type FourStepPass =
  | { pass: 'columns'; source: 'signal' }
  | { pass: 'columns'; source: 'kernel'; reverse: boolean }
  | { pass: 'rows'; mode: 'conv'; conjugate: boolean }
  | { pass: 'rows'; mode: 'spectrum' }
  | { pass: 'rows'; mode: 'kernelGrad' }
  | { pass: 'columnsInverse'; mode: 'signal'; skip: boolean }
  | { pass: 'columnsInverse'; mode: 'kernelGrad' };

/**
 * WGSL declarations of the per-thread registers of a kernelGrad pass (also used by webgpu-long-conv.ts): the input
 * spectrum pairs `ua`, `ub` of one batch and the accumulated products `accA`, `accB`, `pairs` entries each.
 *
 * @param pairs - Frequency pairs per thread.
 * @returns The WGSL declarations.
 * @example
 * kernelGradRegisters(4).includes('var accA : array<vec2<f32>, 4>;'); // → true
 */
export function kernelGradRegisters(pairs: number): string {
  return `var ua : array<vec2<f32>, ${pairs}>;
    var ub : array<vec2<f32>, ${pairs}>;
    var accA : array<vec2<f32>, ${pairs}>;
    var accB : array<vec2<f32>, ${pairs}>;`;
}

/**
 * WGSL (tfjs-webgpu user code) of one four-step pass. Inputs: columns/signal `X, W`; columns/kernel `KF (, KR), W`;
 * rows/conv `S, K, W`; rows/spectrum `S, W`; rows/kernelGrad `SU, SG, W`; columnsInverse/signal `S, W (, X, D)`;
 * columnsInverse/kernelGrad `S, W`. Uniforms as webgpu-long-conv.ts: rows, channels, seqLen, kLen, rLen, batch.
 *
 * @param plan - The four-step sizes.
 * @param which - The pass and its variant.
 * @returns The shader body.
 * @example
 * fourStepShader(fourStepPlan(8192, 32768), { pass: 'rows', mode: 'spectrum' }).includes('fn main()'); // → true
 */
export function fourStepShader(plan: FourStepPlan, which: FourStepPass): string {
  const { m, m1, m2, columns } = plan;
  const n = 2 * m;
  const logN = Math.round(Math.log2(n));
  const threads = FOUR_STEP_THREADS;
  const blocks = m2 / columns;
  const workgroup = 'workgroupId.x + workgroupId.y * numWorkgroups.x';
  const log = (v: number) => Math.round(Math.log2(v));

  if (which.pass === 'columns' || which.pass === 'columnsInverse') {
    const elements = columns * m1;
    // Element e of a column workgroup: column e % columns (neighbouring threads, neighbouring addresses), digit e / columns.
    const head = `${helpers(elements, n)}${fftFunctions('m2Col', m1, columns, logN)}`;
    const prologue = `
    let t = localIndex;
    let total = u32(uniforms.rows) * ${blocks}u;
    let w = ${workgroup};
    let wc = min(w, total - 1u);
    let r = wc / ${blocks}u;
    let col0 = (wc % ${blocks}u) * ${columns}u;
    let len = u32(uniforms.seqLen);`;
    if (which.pass === 'columns') {
      const source = which.source === 'signal'
        ? `fn m2Sample(r : u32, j : u32, len : u32) -> f32 {
    if (j < len) { return X[r * len + j]; }
    return 0.0;
  }`
        : `${kernelTapFunction(n)}${placedKernelFunction(which.reverse)}
  fn m2Sample(c : u32, j : u32, len : u32) -> f32 { return m2Placed(c, j, len, u32(uniforms.kLen), u32(uniforms.rLen)); }`;
      return `${head}
  ${source}
  fn main() {${prologue}
    for (var e = t; e < ${elements}u; e = e + ${threads}u) {
      let m1i = e >> ${log(columns)}u;
      let col = e & ${columns - 1}u;
      let mm = ${m2}u * m1i + col0 + col;
      m2Set(col * ${m1}u + m1i, vec2<f32>(m2Sample(r, 2u * mm, len), m2Sample(r, 2u * mm + 1u, len)));
    }
    workgroupBarrier();
    m2ColForward(t);
    if (w < total) {
      for (var e = t; e < ${elements}u; e = e + ${threads}u) {
        let k1 = e >> ${log(columns)}u;
        let col = e & ${columns - 1}u;
        let m2i = col0 + col;
        let v = m2Mul(m2Get(col * ${m1}u + m2ColRev(k1)), m2Tw(2u * m2i * k1));
        let o = ((r * ${m1}u + k1) * ${m2}u + m2i) * 2u;
        result[o] = v.x;
        result[o + 1u] = v.y;
      }
    }
  }
  `;
    }
    // columnsInverse
    const store = which.mode === 'signal'
      ? `let j0 = 2u * mm;
        if (j0 < len) { result[r * len + j0] = v.x${which.skip ? ' + dc * X[r * len + j0]' : ''}; }
        if (j0 + 1u < len) { result[r * len + j0 + 1u] = v.y${which.skip ? ' + dc * X[r * len + j0 + 1u]' : ''}; }`
      : `m2StoreGrad(r, 2u * mm, v.x, len);
        m2StoreGrad(r, 2u * mm + 1u, v.y, len);`;
    const gradStore = which.mode === 'kernelGrad' ? `${kernelTapFunction(n)}
  // Scatters position p of the N-point correlation row into the kernels' gradient rows [kf | kr].
  fn m2StoreGrad(c : u32, p : u32, value : f32, len : u32) {
    let kLen = u32(uniforms.kLen);
    let rLen = u32(uniforms.rLen);
    let i = m2KernelTap(p, len, kLen, rLen);
    if (i != M2_NO_TAP) { result[c * (kLen + rLen) + i] = value; }
  }` : '';
    return `${head}${gradStore}
  fn main() {${prologue}
    for (var e = t; e < ${elements}u; e = e + ${threads}u) {
      let k1 = e >> ${log(columns)}u;
      let col = e & ${columns - 1}u;
      let o = ((r * ${m1}u + k1) * ${m2}u + col0 + col) * 2u;
      m2Set(col * ${m1}u + m2ColRev(k1), vec2<f32>(S[o], S[o + 1u]));
    }
    workgroupBarrier();
    m2ColInverse(t);
    ${which.mode === 'signal' && which.skip ? 'let dc = D[r % u32(uniforms.channels)];' : ''}
    if (w < total) {
      for (var e = t; e < ${elements}u; e = e + ${threads}u) {
        let m1i = e >> ${log(columns)}u;
        let col = e & ${columns - 1}u;
        let mm = ${m2}u * m1i + col0 + col;
        let v = m2Get(col * ${m1}u + m1i) * m2Scale;
        ${store}
      }
    }
  }
  `;
  }

  // rows: a workgroup holds the rows k1a = j and k1b = (M1 − j) mod M1 (j = 0 … M1/2), in slots 0 and 1.
  const rowPairs = m1 / 2 + 1;
  const pairsPerThread = Math.ceil(m2 / threads);
  const head = `${helpers(2 * m2, n)}${WGSL_REAL_PAIRS}${fftFunctions('m2Row', m2, 2, logN)}
  // Shared positions of Z[k] and Z[M − k] for the p-th frequency pair of the two rows, and k.
  fn m2PairOf(p : u32, k1a : u32, distinct : bool) -> vec3<u32> {
    if (distinct) { return vec3<u32>(m2RowRev(p), ${m2}u + m2RowRev(${m2 - 1}u - p), k1a + ${m1}u * p); }
    if (k1a == 0u) { return vec3<u32>(m2RowRev(p), m2RowRev((${m2}u - p) & ${m2 - 1}u), ${m1}u * p); }
    return vec3<u32>(m2RowRev(p), m2RowRev(${m2 - 1}u - p), k1a + ${m1}u * p);
  }
  fn m2PairCount(k1a : u32, distinct : bool) -> u32 {
    if (distinct) { return ${m2}u; }
    if (k1a == 0u) { return ${m2 / 2 + 1}u; }
    return ${m2 / 2}u;
  }
  fn m2LoadRows(src : u32, t : u32, rowBase : u32, k1a : u32, k1b : u32) {
    for (var e = t; e < ${2 * m2}u; e = e + ${threads}u) {
      let k1 = select(k1a, k1b, e >= ${m2}u);
      let o = ((rowBase + k1) * ${m2}u + (e & ${m2 - 1}u)) * 2u;
      ${which.pass === 'rows' && which.mode === 'kernelGrad'
        ? 'if (src == 0u) { m2Set(e, vec2<f32>(SU[o], SU[o + 1u])); } else { m2Set(e, vec2<f32>(SG[o], SG[o + 1u])); }'
        : 'm2Set(e, vec2<f32>(S[o], S[o + 1u]));'}
    }
  }`;
  const prologue = `
    let t = localIndex;
    let total = u32(${which.mode === 'kernelGrad' ? 'uniforms.channels' : 'uniforms.rows'}) * ${rowPairs}u;
    let w = ${workgroup};
    let wc = min(w, total - 1u);
    let r = wc / ${rowPairs}u;
    let k1a = wc % ${rowPairs}u;
    let k1b = (${m1}u - k1a) & ${m1 - 1}u;
    let distinct = k1a != k1b;
    let np = m2PairCount(k1a, distinct);`;
  // After the inverse row FFTs: ·ω_M^{−m2·k1}, written to the scratch output [rows, M1, M2].
  const storeRows = `
    if (w < total) {
      for (var e = t; e < ${2 * m2}u; e = e + ${threads}u) {
        if (e < ${m2}u || distinct) {
          let k1 = select(k1a, k1b, e >= ${m2}u);
          let m2i = e & ${m2 - 1}u;
          let v = m2Mul(m2Get(e), m2Conj(m2Tw(2u * m2i * k1)));
          let o = ((r * ${m1}u + k1) * ${m2}u + m2i) * 2u;
          result[o] = v.x;
          result[o + 1u] = v.y;
        }
      }
    }`;
  if (which.mode === 'conv') {
    const k = (index: string) => which.conjugate ? `m2Conj(vec2<f32>(K[${index}], K[${index} + 1u]))` : `vec2<f32>(K[${index}], K[${index} + 1u])`;
    return `${head}
  fn main() {${prologue}
    let kBase = (r % u32(uniforms.channels)) * ${m + 1}u;
    m2LoadRows(0u, t, r * ${m1}u, k1a, k1b);
    workgroupBarrier();
    m2RowForward(t);
    for (var p = t; p < np; p = p + ${threads}u) {
      let q = m2PairOf(p, k1a, distinct);
      let x = m2RealPair(q.x, q.y, q.z);
      let ka = 2u * (kBase + q.z);
      let kb = 2u * (kBase + ${m}u - q.z);
      m2StorePair(q.x, q.y, q.z, m2Mul(x.a, ${k('ka')}), m2Mul(x.b, ${k('kb')}));
    }
    workgroupBarrier();
    m2RowInverse(t);${storeRows}
  }
  `;
  }
  if (which.mode === 'spectrum') {
    return `${head}
  fn main() {${prologue}
    m2LoadRows(0u, t, r * ${m1}u, k1a, k1b);
    workgroupBarrier();
    m2RowForward(t);
    if (w < total) {
      for (var p = t; p < np; p = p + ${threads}u) {
        let q = m2PairOf(p, k1a, distinct);
        let x = m2RealPair(q.x, q.y, q.z);
        let oa = (r * ${m + 1}u + q.z) * 2u;
        result[oa] = x.a.x;
        result[oa + 1u] = x.a.y;
        if (q.y != q.x || q.z == 0u) {
          let ob = (r * ${m + 1}u + ${m}u - q.z) * 2u;
          result[ob] = x.b.x;
          result[ob + 1u] = x.b.y;
        }
      }
    }
  }
  `;
  }
  // kernelGrad: Σ_b Ĝ_b·conj(Û_b) per channel, accumulated in registers for the pairs p = t + i·threads.
  // The frequency pairs this thread owns, x = (Z[k], Z[M − k]) of the row in the buffer, each given to `a` and `b`.
  const eachOwnPair = (a: string, b: string): string => `for (var i = 0u; i < ${pairsPerThread}u; i = i + 1u) {
        let p = t + i * ${threads}u;
        if (p < np) {
          let q = m2PairOf(p, k1a, distinct);
          let x = m2RealPair(q.x, q.y, q.z);
          ${a}
          ${b}
        }
      }`;
  return `${head}
  fn main() {${prologue}
    let channels = u32(uniforms.channels);
    let batch = u32(uniforms.batch);
    ${kernelGradRegisters(pairsPerThread)}
    for (var b = 0u; b < batch; b = b + 1u) {
      let rowBase = (b * channels + r) * ${m1}u;
      m2LoadRows(0u, t, rowBase, k1a, k1b);
      workgroupBarrier();
      m2RowForward(t);
      ${eachOwnPair('ua[i] = x.a;', 'ub[i] = x.b;')}
      workgroupBarrier();
      m2LoadRows(1u, t, rowBase, k1a, k1b);
      workgroupBarrier();
      m2RowForward(t);
      ${eachOwnPair('accA[i] = accA[i] + m2Mul(x.a, m2Conj(ua[i]));', 'accB[i] = accB[i] + m2Mul(x.b, m2Conj(ub[i]));')}
      workgroupBarrier();
    }
    for (var i = 0u; i < ${pairsPerThread}u; i = i + 1u) {
      let p = t + i * ${threads}u;
      if (p < np) {
        let q = m2PairOf(p, k1a, distinct);
        m2StorePair(q.x, q.y, q.z, accA[i], accB[i]);
      }
    }
    workgroupBarrier();
    m2RowInverse(t);${storeRows}
  }
  `;
}
