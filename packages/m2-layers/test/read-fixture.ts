// Test-only reader for the golden safetensors fixtures (JSON header + little-endian F32/F64/I64 data), so the
// tests need nothing from ../shared and no I/O code of another package.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';

/** One stored tensor: shape and float32 values. */
export interface FixtureTensor {
  shape: number[];
  data: Float32Array;
}

/** Reads `test/fixtures/<name>` into a map of float32 arrays. */
export function readFixture(name: string): Map<string, FixtureTensor> {
  const bytes = readFileSync(fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url)));
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
    const count = entry.shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(count);
    const start = base + entry.data_offsets[0];
    for (let i = 0; i < count; i++) {
      if (entry.dtype === 'F32') data[i] = view.getFloat32(start + 4 * i, true);
      else if (entry.dtype === 'F64') data[i] = view.getFloat64(start + 8 * i, true);
      else if (entry.dtype === 'I64') data[i] = Number(view.getBigInt64(start + 8 * i, true));
      else throw new Error(`readFixture: unsupported dtype ${entry.dtype} for ${key}`);
    }
    out.set(key, { shape: entry.shape, data });
  }
  return out;
}

/** The fixture tensor `key` as a tf.Tensor. */
export function fixtureTensor(fixture: Map<string, FixtureTensor>, key: string): tf.Tensor {
  const entry = fixture.get(key);
  if (!entry) throw new Error(`fixture has no tensor ${key}`);
  return tf.tensor(entry.data, entry.shape);
}

/** Relative L2 error ‖a − b‖ / ‖b‖ in float64. */
export function relativeL2(actual: tf.Tensor, expected: tf.Tensor): number {
  const a = actual.dataSync();
  const b = expected.dataSync();
  if (a.length !== b.length) throw new Error(`relativeL2: sizes differ (${a.length} vs ${b.length})`);
  let diff = 0;
  let norm = 0;
  for (let i = 0; i < a.length; i++) {
    diff += (a[i]! - b[i]!) ** 2;
    norm += b[i]! ** 2;
  }
  return Math.sqrt(diff) / Math.sqrt(norm);
}
