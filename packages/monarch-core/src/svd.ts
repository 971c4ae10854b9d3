// A small float64 SVD (one-sided Jacobi) for the blocks of a Monarch projection. Blocks are tiny (≤ 64×64), so a
// clear O(n³·sweeps) method is right; it converges to full float64 precision.

/** Result of {@link svd}: A = U · diag(S) · Vᵀ, singular values descending. */
export interface SvdResult {
  /** Left singular vectors, row-major [m, k] with k = min(m, n). */
  u: Float64Array;
  /** Singular values [k], descending. */
  s: Float64Array;
  /** Right singular vectors, row-major [n, k]. */
  v: Float64Array;
}

/**
 * Thin SVD of a row-major m×n float64 matrix by one-sided Jacobi rotations (Hestenes).
 *
 * Shapes: a [m, n] → u [m, k], s [k], v [n, k], k = min(m, n)
 * @param a - The matrix, row-major (not modified).
 * @param m - Rows.
 * @param n - Columns.
 * @returns The factors, singular values in descending order.
 * @example
 * svd(Float64Array.of(3, 0, 0, 4), 2, 2).s; // → [4, 3]
 */
export function svd(a: Float64Array, m: number, n: number): SvdResult {
  if (m < n) {
    // Work on the transpose so columns ≤ rows, then swap the roles of U and V.
    const t = new Float64Array(n * m);
    for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) t[j * m + i] = a[i * n + j];
    const r = svd(t, n, m);
    return { u: r.v, s: r.s, v: r.u };
  }
  // Column-major working copy of A (n columns of length m) and V = I.
  const w = new Float64Array(m * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) w[j * m + i] = a[i * n + j];
  const v = new Float64Array(n * n);
  for (let j = 0; j < n; j++) v[j * n + j] = 1;
  const eps = 1e-15;
  for (let sweep = 0; sweep < 60; sweep++) {
    let rotated = false;
    for (let p = 0; p < n - 1; p++) {
      for (let q = p + 1; q < n; q++) {
        let alpha = 0;
        let beta = 0;
        let gamma = 0;
        for (let i = 0; i < m; i++) {
          const x = w[p * m + i];
          const y = w[q * m + i];
          alpha += x * x;
          beta += y * y;
          gamma += x * y;
        }
        if (gamma === 0 || Math.abs(gamma) <= eps * Math.sqrt(alpha * beta)) continue;
        rotated = true;
        const zeta = (beta - alpha) / (2 * gamma);
        const t = Math.sign(zeta || 1) / (Math.abs(zeta) + Math.sqrt(1 + zeta * zeta));
        const c = 1 / Math.sqrt(1 + t * t);
        const s = c * t;
        for (let i = 0; i < m; i++) {
          const x = w[p * m + i];
          const y = w[q * m + i];
          w[p * m + i] = c * x - s * y;
          w[q * m + i] = s * x + c * y;
        }
        for (let i = 0; i < n; i++) {
          const x = v[i * n + p];
          const y = v[i * n + q];
          v[i * n + p] = c * x - s * y;
          v[i * n + q] = s * x + c * y;
        }
      }
    }
    if (!rotated) break;
  }
  const norms = Array.from({ length: n }, (_, j) => {
    let acc = 0;
    for (let i = 0; i < m; i++) acc += w[j * m + i] ** 2;
    return Math.sqrt(acc);
  });
  const order = norms.map((_, j) => j).sort((x, y) => norms[y] - norms[x]);
  const u = new Float64Array(m * n);
  const s = new Float64Array(n);
  const vOut = new Float64Array(n * n);
  order.forEach((j, col) => {
    s[col] = norms[j];
    for (let i = 0; i < m; i++) u[i * n + col] = norms[j] > 0 ? w[j * m + i] / norms[j] : 0;
    for (let i = 0; i < n; i++) vOut[i * n + col] = v[i * n + j];
  });
  return { u, s, v: vOut };
}
