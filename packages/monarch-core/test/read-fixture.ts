// Test-only reader for the golden safetensors fixtures (JSON header + little-endian F32/F64/I64 data).
// Kept tiny on purpose: the package's real reader lives in src/io/.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';

/** One stored tensor: shape and values (as float64 numbers). */
export interface FixtureTensor {
  shape: number[];
  data: Float64Array;
}

/** Reads `test/fixtures/<name>` into a map of tensors. */
export function readFixture(name: string): Map<string, FixtureTensor> {
  const path = fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));
  const bytes = readFileSync(path);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = Number(view.getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength))) as Record<
    string,
    { dtype: string; shape: number[]; data_offsets: [number, number] }
  >;
  const base = 8 + headerLength;
  const out = new Map<string, FixtureTensor>();
  for (const [key, entry] of Object.entries(header)) {
    if (key === '__metadata__') continue;
    const [begin, end] = entry.data_offsets;
    const count = entry.shape.reduce((a, b) => a * b, 1);
    const data = new Float64Array(count);
    const width = { F32: 4, F64: 8, I64: 8 }[entry.dtype];
    if (width === undefined) throw new Error(`readFixture: unsupported dtype ${entry.dtype} for ${key}`);
    if (end - begin !== count * width) throw new Error(`readFixture: ${key} has ${end - begin} bytes, expected ${count * width}`);
    for (let i = 0; i < count; i++) {
      const at = base + begin + i * width;
      data[i] =
        entry.dtype === 'F32' ? view.getFloat32(at, true) : entry.dtype === 'F64' ? view.getFloat64(at, true) : Number(view.getBigInt64(at, true));
    }
    out.set(key, { shape: entry.shape, data });
  }
  return out;
}

/** Gets one fixture tensor as a float32 tfjs tensor. */
export function fixtureTensor<R extends tf.Rank = tf.Rank>(fixture: Map<string, FixtureTensor>, key: string): tf.Tensor<R> {
  const entry = fixture.get(key);
  if (entry === undefined) throw new Error(`fixture has no tensor "${key}"`);
  return tf.tensor(Float32Array.from(entry.data), entry.shape as tf.ShapeMap[R]) as tf.Tensor<R>;
}
