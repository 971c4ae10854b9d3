/**
 * safetensors reader and writer (https://huggingface.co/docs/safetensors).
 *
 * Layout: 8-byte little-endian header length N, N bytes of UTF-8 JSON
 * `{ "<name>": { "dtype", "shape", "data_offsets": [begin, end] }, "__metadata__"?: { string: string } }`,
 * then the data buffer, which the tensors must cover exactly (no gaps, no overlaps).
 * The reader checks every declared size against the file before it allocates anything.
 */
import { InvalidArgumentError } from '../errors.js';
import { fileError, quote } from './file-error.js';
import { JsonSyntaxError, parseStrictJson, type JsonValue } from './strict-json.js';
import {
  DTYPE_INFO,
  assertLittleEndian,
  checkRecord,
  isTensorDtype,
  viewOrCopy,
  type TensorRecord,
} from './tensor-record.js';

/** Largest header the reader accepts (the reference implementation uses the same 100 MB cap). */
export const SAFETENSORS_MAX_HEADER_BYTES = 100_000_000;

/** Options of {@link readSafetensors}. */
export interface ReadSafetensorsOptions {
  /** File name used in error messages. Default `'<safetensors>'`. */
  file?: string;
}

/** What {@link readSafetensors} returns. */
export interface SafetensorsContents {
  /** Tensors in header order. F16/BF16 data is raw bits in a Uint16Array. */
  tensors: Map<string, TensorRecord>;
  /** The `__metadata__` string map (empty if the file has none). */
  metadata: Record<string, string>;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Parses a safetensors file. Tensor data are zero-copy views into `bytes` where the element alignment
 * allows, copies otherwise, so keep `bytes` unmodified while you use the result.
 *
 * Shapes: each record's data has product(shape) elements.
 * @param bytes - The whole file.
 * @param options - `file`: name used in error messages.
 * @returns The tensors (header order) and the `__metadata__` map.
 * @throws FileFormatError (one line: file name and problem) for a truncated file, a header that is too large,
 *   not UTF-8, not JSON, not an object, or has duplicate keys; an unknown dtype; a bad shape; data_offsets that
 *   do not match dtype × shape, fall outside the buffer, overlap, or leave gaps.
 * @example
 * const { tensors } = readSafetensors(writeSafetensors({ w: { dtype: 'F32', shape: [2], data: new Float32Array([1, 2]) } }));
 * tensors.get('w')?.shape; // → [2]
 */
export function readSafetensors(bytes: Uint8Array, options: ReadSafetensorsOptions = {}): SafetensorsContents {
  const file = options.file ?? '<safetensors>';
  if (!(bytes instanceof Uint8Array)) {
    throw new InvalidArgumentError(`readSafetensors: bytes must be a Uint8Array, got ${typeof bytes}.`);
  }
  assertLittleEndian('readSafetensors');
  const fail = (problem: string) => fileError(file, `not a valid safetensors file: ${problem}`);
  if (bytes.length < 8) throw fail(`file is ${bytes.length} bytes, shorter than the 8-byte header length`);

  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = view.getBigUint64(0, true);
  if (headerLength > BigInt(SAFETENSORS_MAX_HEADER_BYTES)) {
    throw fail(`header length ${headerLength} bytes exceeds the ${SAFETENSORS_MAX_HEADER_BYTES}-byte limit`);
  }
  const n = Number(headerLength);
  if (n > bytes.length - 8) throw fail(`header length ${n} bytes is larger than the file (${bytes.length} bytes); truncated?`);
  if (n < 2) throw fail(`header length ${n} bytes is too short for a JSON object`);

  let text: string;
  try {
    text = utf8.decode(bytes.subarray(8, 8 + n));
  } catch {
    throw fail('header is not valid UTF-8');
  }
  let header: JsonValue;
  try {
    header = parseStrictJson(text, 8);
  } catch (e) {
    if (e instanceof JsonSyntaxError) throw fail(`header is not valid JSON (${e.message})`);
    throw e;
  }
  if (!(header instanceof Map)) throw fail('header must be a JSON object');

  const dataStart = 8 + n;
  const dataLength = bytes.length - dataStart;
  const metadata: Record<string, string> = {};
  const entries: { name: string; dtype: TensorRecord['dtype']; shape: number[]; begin: number; end: number }[] = [];

  for (const [name, info] of header) {
    if (name === '__metadata__') {
      if (!(info instanceof Map)) throw fail('__metadata__ must be an object of strings');
      for (const [k, v] of info) {
        if (typeof v !== 'string') throw fail(`__metadata__[${quote(k)}] must be a string, got ${jsonKind(v)}`);
        Object.defineProperty(metadata, k, { value: v, enumerable: true, writable: true, configurable: true });
      }
      continue;
    }
    const who = `tensor ${quote(name)}`;
    if (!(info instanceof Map)) throw fail(`${who} must be an object, got ${jsonKind(info)}`);
    const dtype = info.get('dtype');
    if (!isTensorDtype(dtype)) {
      throw fail(`${who} has unknown dtype ${typeof dtype === 'string' ? quote(dtype) : jsonKind(dtype)}; expected one of ${Object.keys(DTYPE_INFO).join(', ')}`);
    }
    const shape = info.get('shape');
    if (!Array.isArray(shape)) throw fail(`${who} shape must be an array, got ${jsonKind(shape)}`);
    if (shape.length > 64) throw fail(`${who} has ${shape.length} dims (at most 64 allowed)`);
    const bytesPer = DTYPE_INFO[dtype].bytes;
    let size = bytesPer;
    for (const d of shape) {
      if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) {
        throw fail(`${who} shape has an invalid dim ${JSON.stringify(d)?.slice(0, 30)} (dims are non-negative integers)`);
      }
      size *= d;
    }
    if (!Number.isSafeInteger(size)) throw fail(`${who} shape [${shape.join(', ')}] overflows`);
    const offsets = info.get('data_offsets');
    if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !offsets.every((o) => typeof o === 'number' && Number.isSafeInteger(o) && o >= 0)
    ) {
      throw fail(`${who} data_offsets must be two non-negative integers [begin, end]`);
    }
    const [begin, end] = offsets as number[];
    if (begin > end) throw fail(`${who} data_offsets [${begin}, ${end}] end before they begin`);
    if (end > dataLength) {
      throw fail(`${who} data_offsets [${begin}, ${end}] run past the data buffer (${dataLength} bytes); truncated?`);
    }
    if (end - begin !== size) {
      throw fail(`${who} data_offsets [${begin}, ${end}] span ${end - begin} bytes but ${dtype} [${shape.join(', ')}] needs ${size}`);
    }
    entries.push({ name, dtype, shape: shape as number[], begin, end });
  }

  // The tensors must tile the data buffer: sorted by offset, each begins where the previous ended.
  const sorted = entries.slice().sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  for (const e of sorted) {
    if (e.begin < cursor) throw fail(`tensor ${quote(e.name)} data_offsets [${e.begin}, ${e.end}] overlap another tensor`);
    if (e.begin > cursor) throw fail(`data buffer has a gap of ${e.begin - cursor} bytes at offset ${cursor}`);
    cursor = e.end;
  }
  if (cursor !== dataLength) {
    throw fail(`data buffer has ${dataLength - cursor} bytes not covered by any tensor at offset ${cursor}`);
  }

  const tensors = new Map<string, TensorRecord>();
  for (const e of entries) {
    const data = viewOrCopy(bytes, dataStart + e.begin, e.dtype, (e.end - e.begin) / DTYPE_INFO[e.dtype].bytes);
    tensors.set(e.name, { dtype: e.dtype, shape: e.shape, data });
  }
  return { tensors, metadata };
}

/**
 * Serialises tensors to safetensors bytes. Keys are written in sorted order with data in the same order,
 * and the header is padded with spaces so that the data starts at a multiple of 8 bytes: the same input
 * always gives the same bytes.
 *
 * Shapes: each record's data must have product(shape) elements.
 * @param tensors - Name → record (a Map or a plain object). Names may not be `__metadata__`.
 * @param metadata - Optional `__metadata__` string map (e.g. `{ format: 'pt' }`).
 * @returns The file contents.
 * @throws InvalidArgumentError for a malformed record (unknown dtype, wrong array type or length) or metadata
 *   that is not a string map.
 * @example
 * writeSafetensors({ w: { dtype: 'F32', shape: [1], data: new Float32Array([1]) } }, { format: 'pt' }).length; // → 96
 */
export function writeSafetensors(
  tensors: Map<string, TensorRecord> | Record<string, TensorRecord>,
  metadata?: Record<string, string>,
): Uint8Array {
  assertLittleEndian('writeSafetensors');
  const map = tensors instanceof Map ? tensors : new Map(Object.entries(tensors));
  const names = [...map.keys()].sort();
  const header: Record<string, unknown> = {};
  if (metadata !== undefined) {
    const meta: Record<string, string> = {};
    for (const k of Object.keys(metadata).sort()) {
      if (typeof metadata[k] !== 'string') {
        throw new InvalidArgumentError(`writeSafetensors: metadata[${quote(k)}] must be a string, got ${typeof metadata[k]}.`);
      }
      Object.defineProperty(meta, k, { value: metadata[k], enumerable: true });
    }
    header.__metadata__ = meta;
  }
  let offset = 0;
  for (const name of names) {
    if (name === '__metadata__') throw new InvalidArgumentError('writeSafetensors: a tensor may not be named __metadata__.');
    const record = map.get(name)!;
    checkRecord(record, `tensor ${quote(name)}`, 'writeSafetensors');
    const size = record.data.byteLength;
    Object.defineProperty(header, name, {
      value: { dtype: record.dtype, shape: record.shape, data_offsets: [offset, offset + size] },
      enumerable: true,
    });
    offset += size;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const headerLength = Math.ceil((8 + json.length) / 8) * 8 - 8;
  const out = new Uint8Array(8 + headerLength + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLength), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + headerLength);
  let at = 8 + headerLength;
  for (const name of names) {
    const data = map.get(name)!.data;
    out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), at);
    at += data.byteLength;
  }
  return out;
}

function jsonKind(v: JsonValue | undefined): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (v instanceof Map) return 'an object';
  return `a ${typeof v}`;
}
