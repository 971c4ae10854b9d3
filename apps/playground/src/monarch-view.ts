// The interactive Monarch-matrix view: two random block-diagonal factors and the dense matrix they make.
import * as tf from '@tensorflow/tfjs-core';
import { monarchToDense } from '@monarch-mixer/monarch-core';

/** Draws |values| of a square matrix as grey levels (darker = larger) on a canvas. */
function drawMatrix(canvas: HTMLCanvasElement, values: Float32Array, size: number): void {
  const context = canvas.getContext('2d')!;
  const image = context.createImageData(size, size);
  let max = 0;
  for (const v of values) max = Math.max(max, Math.abs(v));
  for (let i = 0; i < size * size; i++) {
    const level = 255 - Math.round((255 * Math.abs(values[i])) / (max || 1));
    image.data.set([level, level, level, 255], 4 * i);
  }
  const scratch = document.createElement('canvas');
  scratch.width = scratch.height = size;
  scratch.getContext('2d')!.putImageData(image, 0, 0);
  context.imageSmoothingEnabled = false;
  context.clearRect(0, 0, canvas.width, canvas.height);
  context.drawImage(scratch, 0, 0, canvas.width, canvas.height);
}

/** Dense matrix [m·m, m·m] of a block-diagonal factor given as blocks [m, m(out), m(in)] (PyTorch layout). */
function blockDiagonalDense(blocks: Float32Array, m: number): Float32Array {
  const n = m * m;
  const dense = new Float32Array(n * n);
  for (let k = 0; k < m; k++)
    for (let q = 0; q < m; q++)
      for (let p = 0; p < m; p++) dense[(k * m + q) * n + k * m + p] = blocks[(k * m + q) * m + p];
  return dense;
}

/** Renders the view for m blocks of size m×m (n = m²) and fills the statistics table. */
export function renderMonarch(m: number, seed: number): void {
  const n = m * m;
  const [w1, w2, dense] = tf.tidy(() => {
    const a = tf.randomNormal([m, m, m], 0, 1, 'float32', seed) as tf.Tensor3D;
    const b = tf.randomNormal([m, m, m], 0, 1, 'float32', seed + 1) as tf.Tensor3D;
    return [a.dataSync() as Float32Array, b.dataSync() as Float32Array, monarchToDense(a, b).dataSync() as Float32Array];
  });
  drawMatrix(document.getElementById('factor-r') as HTMLCanvasElement, blockDiagonalDense(w1, m), n);
  drawMatrix(document.getElementById('factor-l') as HTMLCanvasElement, blockDiagonalDense(w2, m), n);
  drawMatrix(document.getElementById('dense') as HTMLCanvasElement, dense, n);
  const monarchParams = 2 * m * m * m;
  const rows: Array<[string, string]> = [
    ['size n = m²', `${n} × ${n}`],
    ['Monarch parameters (2·n^1.5)', monarchParams.toLocaleString()],
    ['dense parameters (n²)', (n * n).toLocaleString()],
    ['multiply-adds per vector: Monarch vs dense', `${monarchParams.toLocaleString()} vs ${(n * n).toLocaleString()} (${(n * n / monarchParams).toFixed(1)}× fewer)`],
  ];
  const table = document.getElementById('monarch-stats') as HTMLTableElement;
  table.replaceChildren(...rows.map(([k, v]) => {
    const tr = document.createElement('tr');
    tr.innerHTML = `<td>${k}</td><td><strong>${v}</strong></td>`;
    return tr;
  }));
}
