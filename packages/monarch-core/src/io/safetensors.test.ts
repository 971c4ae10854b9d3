import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { FileFormatError, InvalidArgumentError, M2Error } from '../errors.js';
import { catchOneLineM2Error } from '../fuzzing.js';
import { readSafetensors, writeSafetensors } from './safetensors.js';
import { recordToTensor, tensorToRecord, toFloat32, toInt32, type TensorRecord } from './tensor-record.js';

const fixtures = fileURLToPath(new URL('../../test/fixtures/io/', import.meta.url));
const golden = new Uint8Array(readFileSync(`${fixtures}model.safetensors`));
const stats = JSON.parse(readFileSync(`${fixtures}model-safetensors-stats.json`, 'utf8')) as {
  tensors: Record<string, { dtype: string; shape: number[]; sum: number; sumsq: number; first: number[] }>;
};

/** Builds a safetensors file by hand from a header object and a data buffer (no padding rules applied). */
function handMade(header: unknown, data: Uint8Array = new Uint8Array(0), headerText?: string): Uint8Array {
  const json = new TextEncoder().encode(headerText ?? JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

function expectFormatError(fn: () => unknown, pattern: RegExp, file = 'bad.safetensors'): void {
  const error = catchOneLineM2Error(fn);
  expect(error).toBeInstanceOf(FileFormatError);
  expect(error!.message.startsWith(`${file}: `)).toBe(true);
  expect(error!.message).toMatch(pattern);
}

describe('readSafetensors on the golden tiny-mlm checkpoint', () => {
  const { tensors, metadata } = readSafetensors(golden, { file: 'model.safetensors' });

  it('reads every tensor with the dtype, shape and values numpy sees', () => {
    expect(tensors.size).toBe(Object.keys(stats.tensors).length);
    expect(metadata).toEqual({});
    for (const [name, want] of Object.entries(stats.tensors)) {
      const record = tensors.get(name)!;
      expect(record.dtype, name).toBe(want.dtype);
      expect(record.shape, name).toEqual(want.shape);
      const values = toFloat32(record);
      let sum = 0;
      let sumsq = 0;
      for (const v of values) {
        sum += v;
        sumsq += v * v;
      }
      expect(sum, name).toBeCloseTo(want.sum, 9);
      expect(sumsq, name).toBeCloseTo(want.sumsq, 9);
      expect(Array.from(values.slice(0, 3)), name).toEqual(want.first);
    }
  });

  it('returns zero-copy views into the file bytes when aligned', () => {
    const record = tensors.get('bert.embeddings.word_embeddings.weight')!;
    expect(record.data.buffer).toBe(golden.buffer);
  });

  it('copies when the data is misaligned', () => {
    const shifted = new Uint8Array(golden.length + 1).subarray(1);
    shifted.set(golden);
    const again = readSafetensors(shifted).tensors.get('bert.embeddings.LayerNorm.weight')!;
    expect(again.data.buffer).not.toBe(shifted.buffer);
    expect(Array.from(toFloat32(again).slice(0, 3))).toEqual(stats.tensors['bert.embeddings.LayerNorm.weight'].first);
  });
});

describe('writeSafetensors', () => {
  it('writes the exact bytes of the spec: sorted keys, space padding to 8, data in key order', () => {
    const bytes = writeSafetensors(
      {
        b: { dtype: 'I8', shape: [3], data: new Int8Array([-1, 2, -3]) },
        a: { dtype: 'F32', shape: [], data: new Float32Array([1.5]) },
      },
      { format: 'pt' },
    );
    const json =
      '{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[],"data_offsets":[0,4]},"b":{"dtype":"I8","shape":[3],"data_offsets":[4,7]}}';
    const padded = Math.ceil((8 + json.length) / 8) * 8 - 8;
    const expected = new Uint8Array(8 + padded + 7);
    new DataView(expected.buffer).setBigUint64(0, BigInt(padded), true);
    expected.set(new TextEncoder().encode(json.padEnd(padded, ' ')), 8);
    expected.set([0x00, 0x00, 0xc0, 0x3f, 0xff, 0x02, 0xfd], 8 + padded); // 1.5f little-endian, then int8s
    expect(Array.from(bytes)).toEqual(Array.from(expected));
    expect((8 + padded) % 8).toBe(0);
  });

  it('round-trips every dtype, including scalars and empty tensors', () => {
    const records: Record<string, TensorRecord> = {
      f64: { dtype: 'F64', shape: [2], data: new Float64Array([Math.PI, -1e300]) },
      f32: { dtype: 'F32', shape: [2, 1], data: new Float32Array([1, -2]) },
      f16: { dtype: 'F16', shape: [2], data: new Uint16Array([0x3c00, 0xc000]) },
      bf16: { dtype: 'BF16', shape: [2], data: new Uint16Array([0x3f80, 0xc040]) },
      i64: { dtype: 'I64', shape: [2], data: new BigInt64Array([-(2n ** 62n), 7n]) },
      i32: { dtype: 'I32', shape: [1], data: new Int32Array([-5]) },
      i16: { dtype: 'I16', shape: [1], data: new Int16Array([-300]) },
      i8: { dtype: 'I8', shape: [1], data: new Int8Array([-7]) },
      u8: { dtype: 'U8', shape: [1], data: new Uint8Array([250]) },
      bool: { dtype: 'BOOL', shape: [2], data: new Uint8Array([1, 0]) },
      scalar: { dtype: 'F32', shape: [], data: new Float32Array([4]) },
      empty: { dtype: 'F32', shape: [0, 3], data: new Float32Array(0) },
    };
    const back = readSafetensors(writeSafetensors(records, { a: 'b' }));
    expect(back.metadata).toEqual({ a: 'b' });
    expect([...back.tensors.keys()]).toEqual(Object.keys(records).sort());
    for (const [name, r] of Object.entries(records)) {
      const got = back.tensors.get(name)!;
      expect(got.dtype).toBe(r.dtype);
      expect(got.shape).toEqual(r.shape);
      expect(got.data.constructor).toBe(r.data.constructor);
      expect(Array.from(got.data as ArrayLike<number>)).toEqual(Array.from(r.data as ArrayLike<number>));
    }
  });

  it('rewrites the golden file to a readable file with the same tensors', () => {
    const { tensors } = readSafetensors(golden);
    const again = readSafetensors(writeSafetensors(tensors)).tensors;
    for (const [name, r] of tensors) expect(Array.from(again.get(name)!.data as Float32Array)).toEqual(Array.from(r.data as Float32Array));
  });

  it('rejects malformed records with InvalidArgumentError', () => {
    expect(() => writeSafetensors({ w: { dtype: 'F32', shape: [3], data: new Float32Array(2) } })).toThrow(InvalidArgumentError);
    expect(() => writeSafetensors({ w: { dtype: 'F32', shape: [2], data: new Int32Array(2) } as never })).toThrow(/Float32Array/);
    expect(() => writeSafetensors({ w: { dtype: 'F8' as never, shape: [1], data: new Uint8Array(1) } })).toThrow(/unknown dtype/);
    expect(() => writeSafetensors({ w: { dtype: 'F32', shape: [-1], data: new Float32Array(0) } })).toThrow(/non-negative/);
  });
});

describe('readSafetensors rejects hostile input with a one-line FileFormatError', () => {
  const file = 'bad.safetensors';
  const ok = { w: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } };
  const eight = new Uint8Array(8);
  const cases: [string, () => Uint8Array, RegExp][] = [
    ['too short', () => new Uint8Array(5), /shorter than the 8-byte header length/],
    ['header length past the end', () => handMade(ok, eight).subarray(0, 40), /larger than the file/],
    [
      'absurd header length',
      () => {
        const b = handMade(ok, eight);
        new DataView(b.buffer).setBigUint64(0, 2n ** 63n, true);
        return b;
      },
      /exceeds the 100000000-byte limit/,
    ],
    ['invalid UTF-8', () => handMade(null, eight, '{"\xff":1}').map((x, i) => (i === 10 ? 0xff : x)), /not valid UTF-8/],
    ['invalid JSON', () => handMade(null, eight, '{"w": {'), /not valid JSON/],
    ['array header', () => handMade([1, 2]), /must be a JSON object/],
    ['unknown dtype', () => handMade({ w: { dtype: 'F8', shape: [2], data_offsets: [0, 8] } }, eight), /unknown dtype "F8"/],
    ['negative dim', () => handMade({ w: { dtype: 'F32', shape: [-2], data_offsets: [0, 8] } }, eight), /invalid dim -2/],
    ['fractional dim', () => handMade({ w: { dtype: 'F32', shape: [1.5], data_offsets: [0, 8] } }, eight), /invalid dim 1.5/],
    ['overflowing shape', () => handMade({ w: { dtype: 'F32', shape: [2 ** 30, 2 ** 30, 2 ** 10], data_offsets: [0, 8] } }, eight), /overflows/],
    ['size mismatch', () => handMade({ w: { dtype: 'F64', shape: [2], data_offsets: [0, 8] } }, eight), /needs 16/],
    ['offsets past the end', () => handMade({ w: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, eight), /run past the data buffer/],
    ['reversed offsets', () => handMade({ w: { dtype: 'F32', shape: [0], data_offsets: [8, 0] } }, eight), /end before they begin/],
    [
      'overlap',
      () => handMade({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, eight),
      /overlap/,
    ],
    ['gap', () => handMade({ w: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, eight), /gap of 4 bytes at offset 0/],
    ['uncovered tail', () => handMade({ w: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, eight), /4 bytes not covered/],
    [
      'duplicate key',
      () => handMade(null, eight, '{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}'),
      /duplicate key "w"/,
    ],
    ['metadata not strings', () => handMade({ __metadata__: { a: 1 }, ...ok }, eight), /__metadata__\["a"\] must be a string/],
    ['tensor info not an object', () => handMade({ w: 3 }), /must be an object/],
    ['missing offsets', () => handMade({ w: { dtype: 'F32', shape: [2] } }, eight), /data_offsets must be/],
  ];
  for (const [what, make, pattern] of cases) {
    it(what, () => expectFormatError(() => readSafetensors(make(), { file }), pattern, file));
  }

  it('treats __proto__ and constructor as plain tensor names', () => {
    const bytes = handMade(null, new Uint8Array(8), '{"__proto__":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"constructor":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}');
    expect([...readSafetensors(bytes).tensors.keys()]).toEqual(['__proto__', 'constructor']);
  });

  it('errors are M2Errors', () => {
    try {
      readSafetensors(new Uint8Array(3), { file: 'x' });
    } catch (e) {
      expect(M2Error.isInstance(e)).toBe(true);
    }
  });
});

describe('record helpers', () => {
  it('toFloat32 widens F16, BF16, F64 and integers exactly', () => {
    expect(Array.from(toFloat32({ dtype: 'F16', shape: [6], data: new Uint16Array([0x3c00, 0xc000, 0x0001, 0x7bff, 0x7c00, 0x3555]) }))).toEqual([
      1, -2, 2 ** -24, 65504, Infinity, Math.fround(0.333251953125),
    ]);
    expect(Number.isNaN(toFloat32({ dtype: 'F16', shape: [1], data: new Uint16Array([0x7e00]) })[0])).toBe(true);
    expect(Array.from(toFloat32({ dtype: 'BF16', shape: [2], data: new Uint16Array([0x3f80, 0xc0a0]) }))).toEqual([1, -5]);
    expect(Array.from(toFloat32({ dtype: 'F64', shape: [1], data: new Float64Array([0.1]) }))).toEqual([Math.fround(0.1)]);
    expect(Array.from(toFloat32({ dtype: 'I64', shape: [1], data: new BigInt64Array([-3n]) }))).toEqual([-3]);
  });

  it('toInt32 range-checks I64 and refuses floats', () => {
    expect(Array.from(toInt32({ dtype: 'I64', shape: [2], data: new BigInt64Array([2147483647n, -2147483648n]) }))).toEqual([2147483647, -2147483648]);
    expect(() => toInt32({ dtype: 'I64', shape: [1], data: new BigInt64Array([2147483648n]) }, 'input_ids')).toThrow(/input_ids\[0\] = 2147483648 does not fit/);
    expect(() => toInt32({ dtype: 'F32', shape: [1], data: new Float32Array(1) })).toThrow(InvalidArgumentError);
  });

  it('recordToTensor / tensorToRecord round-trip without leaking tensors', () => {
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) {
      const t = recordToTensor({ dtype: 'BF16', shape: [2, 1], data: new Uint16Array([0x3f80, 0x4000]) });
      expect(t.dtype).toBe('float32');
      expect(t.shape).toEqual([2, 1]);
      expect(tensorToRecord(t)).toEqual({ dtype: 'F32', shape: [2, 1], data: new Float32Array([1, 2]) });
      t.dispose();
      const ids = recordToTensor({ dtype: 'I64', shape: [2], data: new BigInt64Array([5n, 6n]) });
      expect(ids.dtype).toBe('int32');
      expect(Array.from(ids.dataSync())).toEqual([5, 6]);
      ids.dispose();
      const mask = recordToTensor({ dtype: 'BOOL', shape: [2], data: new Uint8Array([1, 0]) });
      expect(tensorToRecord(mask)).toEqual({ dtype: 'BOOL', shape: [2], data: new Uint8Array([1, 0]) });
      mask.dispose();
    }
    expect(tf.memory().numTensors).toBe(before);
  });
});
