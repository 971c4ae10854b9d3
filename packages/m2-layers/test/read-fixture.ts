// Test-only reader for the golden safetensors fixtures, through monarch-core's public `readSafetensors` (tested
// there), so the tests need nothing from ../shared.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { readSafetensors, toFloat32 } from '@monarch-mixer/monarch-core';

/** One stored tensor: shape and float32 values. */
export interface FixtureTensor {
  shape: number[];
  data: Float32Array;
}

/** Reads `test/fixtures/<name>` into a map of float32 arrays. */
export function readFixture(name: string): Map<string, FixtureTensor> {
  const path = fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));
  const { tensors } = readSafetensors(new Uint8Array(readFileSync(path)), { file: path });
  const out = new Map<string, FixtureTensor>();
  for (const [key, record] of tensors) out.set(key, { shape: [...record.shape], data: toFloat32(record) });
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
