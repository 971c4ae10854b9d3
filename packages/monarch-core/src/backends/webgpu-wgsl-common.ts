// WGSL snippets shared by the fused long-convolution kernels (webgpu-long-conv.ts: one workgroup per row;
// webgpu-long-conv-four-step.ts: three passes for longer rows) and the fused mixer core (webgpu-mixer.ts).
// Each shader declares its own workgroup buffer with the accessors `m2Get(i)` / `m2Set(i, v)` (complex value i) and
// a storage input `W` holding ω_N^j = (cos, −sin)(2πj/N); the snippets below are written against those.

/**
 * Complex arithmetic on vec2 (re, im): `m2Mul`, `m2Conj`, and the twiddle read `m2Tw(j)` = ω_N^j from input `W`.
 *
 * @example
 * WGSL_COMPLEX.includes('fn m2Mul('); // → true
 */
export const WGSL_COMPLEX = `
  fn m2Mul(a : vec2<f32>, b : vec2<f32>) -> vec2<f32> { return vec2<f32>(a.x * b.x - a.y * b.y, a.x * b.y + a.y * b.x); }
  fn m2Conj(a : vec2<f32>) -> vec2<f32> { return vec2<f32>(a.x, -a.y); }
  fn m2Tw(j : u32) -> vec2<f32> { return vec2<f32>(W[2u * j], W[2u * j + 1u]); }
`;

/**
 * The real-signal untangling of a real 2M-point transform computed as an M-point complex one (z[m] = x[2m] +
 * i·x[2m+1]): `m2RealPair(ia, ib, k)` gives X[k] and X[M−k] (struct `M2Pair { a, b }`) from Z[k] at buffer slot
 * `ia` and Z[M−k] at slot `ib`; `m2StorePair(ia, ib, k, yk, ym)` folds the hermitian product Y[k], Y[M−k] back into
 * the half-length input W[k] (slot ia) and W[M−k] (slot ib) of the real inverse transform. Needs
 * {@link WGSL_COMPLEX}, `m2Get` and `m2Set`.
 *
 * @example
 * WGSL_REAL_PAIRS.includes('fn m2RealPair('); // → true
 */
export const WGSL_REAL_PAIRS = `
  struct M2Pair { a : vec2<f32>, b : vec2<f32>, };
  // X[k] and X[M − k] of the real signal from Z[k] (at ia) and Z[M − k] (at ib):
  // E = (Z[k] + Z̄[M−k])/2, O = (Z[k] − Z̄[M−k])/2i, X[k] = E + ω_N^k·O, X[M − k] = conj(E − ω_N^k·O).
  fn m2RealPair(ia : u32, ib : u32, k : u32) -> M2Pair {
    let zk = m2Get(ia);
    let zq = m2Conj(m2Get(ib));
    let e = 0.5 * (zk + zq);
    let d = 0.5 * (zk - zq);
    let wo = m2Mul(m2Tw(k), vec2<f32>(d.y, -d.x));
    return M2Pair(e + wo, m2Conj(e - wo));
  }
  // Stores the real inverse's half-length input W[k] (at ia) and W[M − k] (at ib) of Y[k], Y[M − k]:
  // W[k] = (Y[k] + Ȳ[M−k]) + i·ω_N^{−k}·(Y[k] − Ȳ[M−k]).
  fn m2StorePair(ia : u32, ib : u32, k : u32, yk : vec2<f32>, ym : vec2<f32>) {
    let s = yk + m2Conj(ym);
    let d = m2Mul(yk - m2Conj(ym), m2Conj(m2Tw(k)));
    m2Set(ia, s + vec2<f32>(-d.y, d.x));
    if (ib != ia) { m2Set(ib, m2Conj(s) + vec2<f32>(d.y, d.x)); }
  }
`;

/**
 * WGSL placing the long-convolution kernels on the N-point circle: `m2KernelTap(p, len, kLen, rLen)` is the index,
 * in a kernel row [kf (kLen) | kr (rLen)], of the tap at circle position p, or `M2_NO_TAP` (0xffffffff) where the
 * circle is zero. kf sits at lags 0…; a kf longer than L (at most 2L, fftConv's kernel) wraps to the negative lags;
 * kr[t] sits at lag −(t+1). The spectrum kernels read through it (`m2Placed` / `m2Sample`) and the kernel-gradient
 * pass of the four-step kernels scatters through it.
 *
 * @param n - The circle's length N = 2M.
 * @returns The WGSL declarations.
 * @example
 * kernelTapFunction(2048).includes('fn m2KernelTap('); // → true
 */
export function kernelTapFunction(n: number): string {
  return `
  const M2_NO_TAP : u32 = 0xffffffffu;
  fn m2KernelTap(p : u32, len : u32, kLen : u32, rLen : u32) -> u32 {
    if (p < min(kLen, len)) { return p; }
    if (kLen > len && p >= ${n}u - len) {
      let i = p + 2u * len - ${n}u;
      if (i < kLen) { return i; }
      return M2_NO_TAP;
    }
    if (p >= ${n}u - rLen) { return kLen + ${n - 1}u - p; }
    return M2_NO_TAP;
  }
`;
}

/**
 * WGSL function `m2Placed(c, j, len, kLen, rLen)`: sample j of channel c's kernel on the N-point circle, read from
 * inputs `KF` [C, kLen] (and `KR` [C, rLen] with `reverse`). Needs {@link kernelTapFunction}.
 *
 * @param reverse - Whether input KR exists.
 * @returns The WGSL declaration.
 * @example
 * placedKernelFunction(true).includes('KR['); // → true
 */
export function placedKernelFunction(reverse: boolean): string {
  return `
  fn m2Placed(c : u32, j : u32, len : u32, kLen : u32, rLen : u32) -> f32 {
    let i = m2KernelTap(j, len, kLen, rLen);
    if (i < kLen) { return KF[c * kLen + i]; }
    ${reverse ? 'if (i != M2_NO_TAP) { return KR[c * rLen + i - kLen]; }' : ''}
    return 0.0;
  }
`;
}

/**
 * WGSL loop of a one-workgroup-per-row kernel (webgpu-long-conv.ts's `singlePassCommon` in scope, the row's
 * forward transform in the buffer): for each frequency pair (p, M − p), p = 0…M/2, multiplies the row's spectrum by
 * the kernel spectrum and stores the real inverse's input. Expects `t` (local index) and `kBase` (the channel's
 * first complex index M+1 wide) in scope.
 *
 * @param m - Half the transform size.
 * @param threads - Workgroup size.
 * @param kernelAt - WGSL expression of K̂ at a complex index expression (e.g. reads of a packed [C, M+1, 2] input).
 * @returns The WGSL loop.
 * @example
 * spectrumProduct(1024, 256, (i) => `m2K(${i})`).includes('m2StoreInverse'); // → true
 */
export function spectrumProduct(m: number, threads: number, kernelAt: (index: string) => string): string {
  return `for (var p = t; p <= ${m >> 1}u; p = p + ${threads}u) {
      let x = m2RealSpectrum(p);
      m2StoreInverse(p, m2Mul(x.a, ${kernelAt('kBase + p')}), m2Mul(x.b, ${kernelAt(`kBase + ${m}u - p`)}));
    }`;
}
