// Draws the architecture guide's figures as SVG (run: node docs/figures/make-figures.mjs).
// Pure geometry, no dependencies: block-diagonal factors, the reshape–transpose permutation,
// the Monarch product, the FFT as a Monarch product, and the M2 layer's data flow.
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const INK = '#1d1d1f';
const BLUE = '#3b6fd8';
const ORANGE = '#e08a2c';
const GREY = '#e6e6ea';

function svg(width, height, body) {
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, sans-serif" font-size="13">\n<rect width="100%" height="100%" fill="white"/>\n${body}\n</svg>\n`;
}

/** A matrix drawn cell by cell; `value(i, j)` returns a fill colour or null for an empty cell. */
function matrix(x, y, n, cell, value, label) {
  let out = `<rect x="${x}" y="${y}" width="${n * cell}" height="${n * cell}" fill="${GREY}" stroke="${INK}"/>`;
  for (let i = 0; i < n; i++)
    for (let j = 0; j < n; j++) {
      const fill = value(i, j);
      if (fill) out += `<rect x="${x + j * cell}" y="${y + i * cell}" width="${cell}" height="${cell}" fill="${fill}"/>`;
    }
  if (label) out += `<text x="${x + (n * cell) / 2}" y="${y + n * cell + 18}" text-anchor="middle">${label}</text>`;
  return out;
}

const m = 4;
const n = m * m;
const cell = 8;
const size = n * cell;
const blockDiag = (colour) => (i, j) => (Math.floor(i / m) === Math.floor(j / m) ? colour : null);
// P: the reshape–transpose permutation; row i = a·m + b picks column b·m + a.
const perm = (i, j) => (j === (i % m) * m + Math.floor(i / m) ? INK : null);

writeFileSync(join(here, 'block-diagonal.svg'), svg(size + 40, size + 50,
  matrix(20, 10, n, cell, blockDiag(BLUE), `block-diagonal: ${m} blocks of ${m}×${m} (n·b = ${n * m} weights, dense ${n * n})`)));

writeFileSync(join(here, 'permutation.svg'), svg(size + 40, size + 50,
  matrix(20, 10, n, cell, perm, 'P: view as m×m, transpose, flatten')));

const gap = 36;
let body = '';
const parts = [
  ['P', perm], ['L', blockDiag(ORANGE)], ['Pᵀ', perm], ['R', blockDiag(BLUE)],
];
parts.forEach(([name, value], k) => {
  const x = 20 + k * (size + gap);
  body += matrix(x, 10, n, cell, value, name);
  body += `<text x="${x + size + gap / 2}" y="${10 + size / 2 + 5}" text-anchor="middle" font-size="18">${k < 3 ? '·' : '='}</text>`;
});
const xDense = 20 + 4 * (size + gap);
body += matrix(xDense, 10, n, cell, () => '#8a7fc7', 'M = P·L·Pᵀ·R (dense)');
writeFileSync(join(here, 'monarch-product.svg'), svg(xDense + size + 40, size + 50, body));

// The FFT as a Monarch product: reshape, DFT down columns, twiddle, DFT along rows, read column-major.
const boxes = [
  ['x (length N)', 'reshape to N1×N2'],
  ['F_N1 on each column', 'block-diagonal (N2 blocks)'],
  ['twiddle ω_N^(k1·b)', 'diagonal, folds into a factor'],
  ['F_N2 on each row', 'block-diagonal (N1 blocks)'],
  ['read column-major', 'permutation: x̂[k1 + N1·k2]'],
];
body = '';
boxes.forEach(([title, sub], k) => {
  const x = 10 + k * 168;
  body += `<rect x="${x}" y="20" width="150" height="60" rx="6" fill="${k % 2 ? '#f3f0ff' : '#eef4ff'}" stroke="${INK}"/>`;
  body += `<text x="${x + 75}" y="45" text-anchor="middle" font-weight="600">${title}</text>`;
  body += `<text x="${x + 75}" y="65" text-anchor="middle" font-size="11">${sub}</text>`;
  if (k < boxes.length - 1) body += `<path d="M${x + 150} 50 h18" stroke="${INK}" marker-end="url(#arrow)"/>`;
});
const arrowDef = `<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto"><path d="M0 0 L10 5 L0 10 z" fill="${INK}"/></marker></defs>`;
writeFileSync(join(here, 'fft-as-monarch.svg'), svg(10 + boxes.length * 168, 100, arrowDef + body));

// The M2-BERT layer's data flow (post-LN encoder layer).
const flow = [
  ['h [B, L, d]', ''],
  ['in_linear d→3d', 'dense + bias'],
  ['short conv k=3', 'causal, depthwise'],
  ['split x1, x2, v', ''],
  ['v ⊙ x1', 'pre-gate'],
  ['long conv (kf, kr) + D₁', 'FFT as Monarch, size 2L'],
  ['⊙ x2', 'post-gate'],
  ['+ long conv₂(h) + D₂', 'residual long conv'],
  ['out_linear d→d', 's = mixer output'],
  ['GLU block-diag MLP', 'gelu(g₁) ⊙ g₂, 4 blocks'],
  ['LayerNorm(· + s)', 'post-LN'],
];
body = arrowDef;
flow.forEach(([title, sub], k) => {
  const y = 10 + k * 52;
  body += `<rect x="20" y="${y}" width="260" height="40" rx="6" fill="${k >= 9 ? '#fff3e6' : k >= 1 ? '#eef4ff' : '#f5f5f7'}" stroke="${INK}"/>`;
  body += `<text x="150" y="${y + (sub ? 18 : 25)}" text-anchor="middle" font-weight="600">${title}</text>`;
  if (sub) body += `<text x="150" y="${y + 33}" text-anchor="middle" font-size="11">${sub}</text>`;
  if (k < flow.length - 1) body += `<path d="M150 ${y + 40} v12" stroke="${INK}" marker-end="url(#arrow)"/>`;
});
body += `<text x="300" y="${10 + 5 * 52 + 25}" font-size="12">sequence mixer</text><text x="300" y="${10 + 9.5 * 52 + 10}" font-size="12">dimension mixer</text>`;
writeFileSync(join(here, 'm2-layer.svg'), svg(420, 10 + flow.length * 52, body));
console.log('wrote 5 figures to', here);
