/**
 * Framework-neutral tensors as they sit in checkpoint files: a dtype tag, a shape and a typed array.
 *
 * Half-precision data (F16, BF16) is kept as raw 16-bit patterns in a `Uint16Array`; {@link toFloat32}
 * widens it. Nothing here touches the tfjs engine except {@link recordToTensor} / {@link tensorToRecord}.
 */
import * as tf from '@tensorflow/tfjs-core';
import { InvalidArgumentError } from '../errors.js';

/** Element types of safetensors / PyTorch checkpoints that Monarch Mixer reads and writes. */
export type TensorDtype = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

/** The typed array that holds each {@link TensorDtype} (F16/BF16 as raw bits; BOOL as 0/1 bytes). */
export interface TensorDataByDtype {
  F64: Float64Array;
  F32: Float32Array;
  F16: Uint16Array;
  BF16: Uint16Array;
  I64: BigInt64Array;
  I32: Int32Array;
  I16: Int16Array;
  I8: Int8Array;
  U8: Uint8Array;
  BOOL: Uint8Array;
}

/** Any typed array a {@link TensorRecord} may hold. */
export type TensorData = TensorDataByDtype[TensorDtype];

/**
 * One tensor of a checkpoint: dtype tag, row-major shape and little-endian data.
 *
 * Shapes: `data.length` equals the product of `shape` (1 for a scalar `[]`).
 */
export interface TensorRecord {
  /** Element type, spelled as in safetensors headers. */
  dtype: TensorDtype;
  /** Row-major dimensions; `[]` for a scalar. */
  shape: number[];
  /** Elements in row-major order (see {@link TensorDataByDtype} for the array type of each dtype). */
  data: TensorData;
}

interface DtypeInfo {
  bytes: number;
  make: (buffer: ArrayBufferLike, byteOffset: number, length: number) => TensorData;
  ctor: { new (n: number): TensorData; BYTES_PER_ELEMENT: number };
}

/** Byte width and array constructor of each dtype. */
export const DTYPE_INFO: Readonly<Record<TensorDtype, DtypeInfo>> = {
  F64: { bytes: 8, ctor: Float64Array, make: (b, o, n) => new Float64Array(b, o, n) },
  F32: { bytes: 4, ctor: Float32Array, make: (b, o, n) => new Float32Array(b, o, n) },
  F16: { bytes: 2, ctor: Uint16Array, make: (b, o, n) => new Uint16Array(b, o, n) },
  BF16: { bytes: 2, ctor: Uint16Array, make: (b, o, n) => new Uint16Array(b, o, n) },
  I64: { bytes: 8, ctor: BigInt64Array, make: (b, o, n) => new BigInt64Array(b, o, n) },
  I32: { bytes: 4, ctor: Int32Array, make: (b, o, n) => new Int32Array(b, o, n) },
  I16: { bytes: 2, ctor: Int16Array, make: (b, o, n) => new Int16Array(b, o, n) },
  I8: { bytes: 1, ctor: Int8Array, make: (b, o, n) => new Int8Array(b, o, n) },
  U8: { bytes: 1, ctor: Uint8Array, make: (b, o, n) => new Uint8Array(b, o, n) },
  BOOL: { bytes: 1, ctor: Uint8Array, make: (b, o, n) => new Uint8Array(b, o, n) },
};

/**
 * True if `value` names a supported dtype.
 * @param value - Anything (e.g. a `dtype` field read from a file header).
 * @example
 * isTensorDtype('BF16'); // → true
 */
export function isTensorDtype(value: unknown): value is TensorDtype {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(DTYPE_INFO, value);
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** @internal Throws unless the platform is little-endian (all checkpoint formats here are). */
export function assertLittleEndian(who: string): void {
  if (!LITTLE_ENDIAN) throw new InvalidArgumentError(`${who}: big-endian platforms are not supported.`);
}

/**
 * Views `length` elements of `dtype` at `bytes[byteOffset...]`: zero-copy when the offset is aligned to the
 * element size, a copy otherwise.
 * @internal
 */
export function viewOrCopy(bytes: Uint8Array, byteOffset: number, dtype: TensorDtype, length: number): TensorData {
  const info = DTYPE_INFO[dtype];
  const start = bytes.byteOffset + byteOffset;
  if (start % info.bytes === 0) return info.make(bytes.buffer, start, length);
  const copy = new Uint8Array(length * info.bytes);
  copy.set(bytes.subarray(byteOffset, byteOffset + length * info.bytes));
  return info.make(copy.buffer, 0, length);
}

/**
 * Number of elements of a shape: the product of its dims (1 for a scalar `[]`).
 *
 * Shapes: [d0, d1, …] → d0·d1·…
 * @param shape - Dims.
 * @example
 * shapeSize([2, 3, 4]); // → 24
 */
export function shapeSize(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/**
 * Converts one IEEE 754 half-precision (F16) bit pattern to a number (exact; subnormals, ±Infinity, NaN kept).
 * @param h - 16-bit pattern.
 * @example
 * halfToFloat(0x3c00); // → 1
 */
export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 0x1f) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/**
 * Returns the record's values as float32 (F32 is returned as is, without a copy; F16, BF16, F64 and the
 * integer types are converted).
 *
 * Shapes: record [...] → Float32Array of length product(shape).
 * @param record - Any tensor record.
 * @returns The values as a Float32Array (shares memory with `record.data` when the dtype is F32).
 * @example
 * toFloat32({ dtype: 'BF16', shape: [1], data: new Uint16Array([0x3f80]) }); // → Float32Array [1]
 */
export function toFloat32(record: TensorRecord): Float32Array {
  const { dtype, data } = record;
  if (dtype === 'F32') return data as Float32Array;
  const out = new Float32Array(data.length);
  if (dtype === 'BF16') {
    const bits = new Uint32Array(out.buffer);
    const src = data as Uint16Array;
    for (let i = 0; i < src.length; i++) bits[i] = src[i] << 16;
  } else if (dtype === 'F16') {
    const src = data as Uint16Array;
    for (let i = 0; i < src.length; i++) out[i] = halfToFloat(src[i]);
  } else if (dtype === 'I64') {
    const src = data as BigInt64Array;
    for (let i = 0; i < src.length; i++) out[i] = Number(src[i]);
  } else {
    out.set(data as Exclude<TensorData, BigInt64Array>);
  }
  return out;
}

/**
 * Returns the record's values as int32, checking that every value fits.
 *
 * Shapes: record [...] → Int32Array of length product(shape).
 * @param record - An integer or BOOL record (I64, I32, I16, I8, U8, BOOL).
 * @param name - Tensor name used in error messages. Default `'tensor'`.
 * @returns The values as an Int32Array (shares memory with `record.data` when the dtype is I32).
 * @throws InvalidArgumentError for float dtypes or an I64 value outside the int32 range.
 * @example
 * toInt32({ dtype: 'I64', shape: [2], data: new BigInt64Array([1n, 2n]) }); // → Int32Array [1, 2]
 */
export function toInt32(record: TensorRecord, name = 'tensor'): Int32Array {
  const { dtype, data } = record;
  if (dtype === 'I32') return data as Int32Array;
  if (dtype === 'F32' || dtype === 'F64' || dtype === 'F16' || dtype === 'BF16') {
    throw new InvalidArgumentError(`toInt32: ${name} must have an integer dtype, got ${dtype}.`, { parameter: name, value: dtype });
  }
  const out = new Int32Array(data.length);
  if (dtype === 'I64') {
    const src = data as BigInt64Array;
    for (let i = 0; i < src.length; i++) {
      const v = src[i];
      if (v > 2147483647n || v < -2147483648n) {
        throw new InvalidArgumentError(`toInt32: ${name}[${i}] = ${v} does not fit in int32.`, { parameter: name, value: v });
      }
      out[i] = Number(v);
    }
  } else {
    out.set(data as Int16Array | Int8Array | Uint8Array);
  }
  return out;
}

/**
 * Makes a tfjs tensor from a record: float dtypes become float32, integer dtypes int32 (range-checked),
 * BOOL becomes bool.
 *
 * Shapes: record [...] → Tensor [...].
 * @param record - The record to convert.
 * @param name - Tensor name used in error messages. Default `'tensor'`.
 * @returns A new tensor (the caller disposes it).
 * @throws InvalidArgumentError if an I64 value does not fit in int32.
 * @example
 * recordToTensor({ dtype: 'F32', shape: [2], data: new Float32Array([1, 2]) }).shape; // → [2]
 */
export function recordToTensor(record: TensorRecord, name = 'tensor'): tf.Tensor {
  checkRecord(record, name, 'recordToTensor');
  switch (record.dtype) {
    case 'F64':
    case 'F32':
    case 'F16':
    case 'BF16':
      return tf.tensor(toFloat32(record), record.shape, 'float32');
    case 'BOOL':
      return tf.tensor(Uint8Array.from(record.data as Uint8Array), record.shape, 'bool');
    default:
      return tf.tensor(toInt32(record, name), record.shape, 'int32');
  }
}

/**
 * Reads a tfjs tensor back into a record (float32 → F32, int32 → I32, bool → BOOL).
 *
 * Shapes: Tensor [...] → record [...].
 * @param tensor - A float32, int32 or bool tensor (not disposed by this call).
 * @returns A record that owns a copy of the values.
 * @throws InvalidArgumentError for complex64 or string tensors.
 * @example
 * tensorToRecord(tf.tensor1d([1, 2])).dtype; // → 'F32'
 */
export function tensorToRecord(tensor: tf.Tensor): TensorRecord {
  const shape = tensor.shape.slice();
  switch (tensor.dtype) {
    case 'float32':
      return { dtype: 'F32', shape, data: Float32Array.from(tensor.dataSync() as Float32Array) };
    case 'int32':
      return { dtype: 'I32', shape, data: Int32Array.from(tensor.dataSync() as Int32Array) };
    case 'bool':
      return { dtype: 'BOOL', shape, data: Uint8Array.from(tensor.dataSync() as Uint8Array) };
    default:
      throw new InvalidArgumentError(`tensorToRecord: dtype ${tensor.dtype} has no checkpoint equivalent; expected float32, int32 or bool.`);
  }
}

/**
 * Checks that a record is well formed: known dtype, non-negative integer dims, the right typed array and length.
 * @internal
 */
export function checkRecord(record: TensorRecord, name: string, who: string): void {
  if (record === null || typeof record !== 'object') {
    throw new InvalidArgumentError(`${who}: ${name} must be a tensor record { dtype, shape, data }, got ${String(record)}.`);
  }
  if (!isTensorDtype(record.dtype)) {
    throw new InvalidArgumentError(`${who}: ${name} has unknown dtype ${JSON.stringify(record.dtype)}; expected one of ${Object.keys(DTYPE_INFO).join(', ')}.`);
  }
  if (!Array.isArray(record.shape) || !record.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new InvalidArgumentError(`${who}: ${name} shape must be an array of non-negative integers, got ${JSON.stringify(record.shape)}.`);
  }
  const info = DTYPE_INFO[record.dtype];
  if (!(record.data instanceof info.ctor)) {
    throw new InvalidArgumentError(`${who}: ${name} with dtype ${record.dtype} needs a ${info.ctor.name}, got ${record.data?.constructor?.name ?? typeof record.data}.`);
  }
  const n = shapeSize(record.shape);
  if (record.data.length !== n) {
    throw new InvalidArgumentError(`${who}: ${name} shape [${record.shape.join(', ')}] needs ${n} elements, got ${record.data.length}.`);
  }
}
