/**
 * Loader fuzz suite (issue 10): seeded mutations of the golden safetensors and PyTorch files, of small
 * hand-made checkpoints, and random inputs. Every case must either parse into well-formed records or fail
 * with a one-line FileFormatError that names the file; no other exception, no slow case (hang), no large
 * allocation. Reproduce a failure with M2_FUZZ_SEED=<seed>; scale the run with M2_FUZZ_SCALE (default 1).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { FileFormatError, M2Error } from '../errors.js';
import { FuzzRng, INTERESTING_U64, mutateBytes, type Mutant } from '../fuzzing.js';
import { storage, torchSave, zipEntries, type PyValue } from './__fixtures__/torch-save.js';
import { detectCheckpointFormat } from './load-state-dict-file.js';
import { readSafetensors, writeSafetensors } from './safetensors.js';
import { DTYPE_INFO, shapeSize, type TensorRecord } from './tensor-record.js';
import { readTorchStateDict } from './torch-state-dict.js';
import { ZipArchive } from './zip-archive.js';

const SEED = Number(process.env.M2_FUZZ_SEED ?? 20261129);
const SCALE = Number(process.env.M2_FUZZ_SCALE ?? 1);
const CASE_TIME_LIMIT_MS = 2000;
const MEMORY_LIMIT_BYTES = 768 * 2 ** 20;

const fixtures = fileURLToPath(new URL('../../test/fixtures/io/', import.meta.url));
const goldenSafetensors = new Uint8Array(readFileSync(`${fixtures}model.safetensors`));
const goldenBin = new Uint8Array(readFileSync(`${fixtures}pytorch_model.bin`));

type Parser = (bytes: Uint8Array, file: string) => Map<string, TensorRecord>;
const parseSafetensors: Parser = (bytes, file) => readSafetensors(bytes, { file }).tensors;
const parseTorch: Parser = (bytes, file) => readTorchStateDict(bytes, { file });
const parseAny: Parser = (bytes, file) => (detectCheckpointFormat(bytes, file) === 'torch' ? parseTorch : parseSafetensors)(bytes, file);

interface Tally {
  cases: number;
  parsed: number;
  rejected: number;
  slowestMs: number;
  peakExtraBytes: number;
  failures: string[];
}
const tally: Tally = { cases: 0, parsed: 0, rejected: 0, slowestMs: 0, peakExtraBytes: 0, failures: [] };
const baselineBytes = process.memoryUsage().arrayBuffers;

/** Runs one case and records any violation of the loader contract. */
function runCase(target: string, parse: Parser, mutant: Mutant, file: string): void {
  tally.cases++;
  const where = `${target} case ${tally.cases} (seed ${SEED}): ${mutant.what}`;
  const start = performance.now();
  try {
    const tensors = parse(mutant.bytes, file);
    let fresh = 0;
    for (const [name, r] of tensors) {
      const info = DTYPE_INFO[r.dtype];
      if (!info || !(r.data instanceof info.ctor) || r.data.length !== shapeSize(r.shape)) {
        tally.failures.push(`${where}: parsed a malformed record ${JSON.stringify(name)}`);
      }
      if (r.data.buffer !== mutant.bytes.buffer) fresh += r.data.byteLength;
    }
    if (fresh > 4 * mutant.bytes.length + 2 ** 20) tally.failures.push(`${where}: allocated ${fresh} bytes for a ${mutant.bytes.length}-byte file`);
    tally.parsed++;
  } catch (e) {
    if (!(e instanceof FileFormatError) || !M2Error.isInstance(e)) {
      tally.failures.push(`${where}: threw ${(e as Error)?.name}: ${(e as Error)?.message}\n${(e as Error)?.stack?.split('\n').slice(1, 4).join('\n')}`);
    } else if (e.message.includes('\n') || !e.message.startsWith(`${file}: `)) {
      tally.failures.push(`${where}: message is not one line naming the file: ${JSON.stringify(e.message)}`);
    } else tally.rejected++;
  }
  const ms = performance.now() - start;
  tally.slowestMs = Math.max(tally.slowestMs, ms);
  if (ms > CASE_TIME_LIMIT_MS) tally.failures.push(`${where}: took ${ms.toFixed(0)} ms`);
  const extra = process.memoryUsage().arrayBuffers - baselineBytes;
  tally.peakExtraBytes = Math.max(tally.peakExtraBytes, extra);
  if (extra > MEMORY_LIMIT_BYTES) tally.failures.push(`${where}: ${extra} bytes of array buffers live after the case`);
}

// ---------- safetensors mutators ----------

function safetensorsParts(bytes: Uint8Array): { header: Record<string, unknown>; data: Uint8Array; n: number } {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) as Record<string, unknown>;
  return { header, data: bytes.subarray(8 + n), n };
}

function assemble(headerText: string, data: Uint8Array, pad = 0): Uint8Array {
  const json = new TextEncoder().encode(headerText + ' '.repeat(pad));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

const WEIRD_VALUES: unknown[] = [-1, 1.5, 2 ** 53, 2 ** 64, 1e300, -0, '3', null, true, [], {}, 'F32', 0, 1, 2 ** 31, 2 ** 32];

function mutateSafetensorsJson(rng: FuzzRng, seed: Uint8Array): Mutant {
  const { header, data } = safetensorsParts(seed);
  const names = Object.keys(header).filter((k) => k !== '__metadata__');
  const name = rng.pick(names);
  const entry = { ...(header[name] as Record<string, unknown>) };
  const shape = [...(entry.shape as number[])];
  const offsets = [...(entry.data_offsets as number[])];
  let what: string;
  let text: string | undefined;
  switch (rng.int(12)) {
    case 0:
      entry.dtype = rng.pick(['F8', 'f32', '', 7, null, 'BF16', 'I64', 'BOOL', 'U8', 'F64', 'I8', 'C64']);
      what = `dtype → ${JSON.stringify(entry.dtype)}`;
      break;
    case 1:
      if (shape.length) shape[rng.int(shape.length)] = rng.pick(WEIRD_VALUES) as number;
      else shape.push(rng.pick(WEIRD_VALUES) as number);
      entry.shape = shape;
      what = `shape → ${JSON.stringify(shape)}`;
      break;
    case 2:
      if (rng.int(2)) shape.push(rng.range(0, 4));
      else shape.pop();
      entry.shape = rng.int(8) ? shape : rng.pick(WEIRD_VALUES);
      what = `shape rank → ${JSON.stringify(entry.shape)}`;
      break;
    case 3: {
      const d = rng.pick([-8, -4, -1, 1, 2, 4, 8, 1 << 20, -(1 << 20)]);
      const which = rng.int(3);
      if (which !== 1) offsets[0] += d;
      if (which !== 0) offsets[1] += d;
      entry.data_offsets = offsets;
      what = `data_offsets → ${JSON.stringify(offsets)}`;
      break;
    }
    case 4:
      entry.data_offsets = rng.pick([[offsets[1], offsets[0]], [0, 0], [offsets[0]], [...offsets, 0], ['0', offsets[1]], [0, 2 ** 60], [-8, offsets[1]], 5, null]);
      what = `data_offsets → ${JSON.stringify(entry.data_offsets)}`;
      break;
    case 5:
      delete entry[rng.pick(['dtype', 'shape', 'data_offsets'])];
      what = 'delete a field';
      break;
    case 6:
      delete header[name];
      what = `delete tensor ${name}`;
      break;
    case 7:
      header[`${name}.copy`] = entry;
      what = `duplicate tensor ${name} under another name`;
      break;
    case 8:
      header.__metadata__ = rng.pick([{ a: 1 }, { a: null }, 'x', [], { format: 'pt' }, { nested: { a: 'b' } }]);
      what = `__metadata__ → ${JSON.stringify(header.__metadata__)}`;
      break;
    case 9: {
      const base = JSON.stringify(header);
      text = base.slice(0, -1) + `,${JSON.stringify(name)}:${JSON.stringify(header[name])}}`;
      what = `duplicate key ${name}`;
      break;
    }
    case 10:
      text = rng.pick(['[]', '1', '"x"', 'null', '{', '{"a":', `{"a":${'['.repeat(100)}`, '{}', '{"__proto__":{}}', '\u0000{}']);
      what = `header text → ${JSON.stringify(text.slice(0, 20))}`;
      break;
    default:
      entry[rng.pick(['extra', 'dtype', 'shape'])] = rng.pick(WEIRD_VALUES);
      what = 'set a field to a weird value';
  }
  if (!text) {
    header[name] = entry;
    if (what.startsWith('delete tensor')) delete header[name];
    text = JSON.stringify(header);
  }
  return { bytes: assemble(text, data, rng.pick([0, 0, 3, 7])), what: `json edit: ${what}` };
}

function mutateSafetensorsLength(rng: FuzzRng, seed: Uint8Array): Mutant {
  const b = seed.slice();
  const n = Number(new DataView(b.buffer).getBigUint64(0, true));
  const v = rng.int(2) ? rng.pick(INTERESTING_U64) : BigInt(Math.max(0, n + rng.range(-16, 16)));
  new DataView(b.buffer).setBigUint64(0, v, true);
  return { bytes: b, what: `header length → ${v}` };
}

function mutateSafetensors(rng: FuzzRng, seed: Uint8Array): Mutant {
  const headerEnd = 8 + safetensorsParts(seed).n;
  const r = rng.next();
  if (r < 0.35) return mutateSafetensorsJson(rng, seed);
  if (r < 0.5) return mutateSafetensorsLength(rng, seed);
  if (r < 0.85) return mutateBytes(rng, seed, 0, headerEnd + 16);
  return mutateBytes(rng, seed);
}

// ---------- PyTorch zip mutators ----------

interface ZipSeed {
  bytes: Uint8Array;
  entries: [string, Uint8Array][];
  pickleName: string;
  pickleRange: [number, number];
  records: number[]; // offsets of PK\x01\x02, PK\x03\x04, PK\x05\x06 records
}

function zipSeed(bytes: Uint8Array): ZipSeed {
  const zip = new ZipArchive(bytes, 'seed');
  const entries = [...zip.entries.values()].map((e) => [e.name, zip.read(e).slice()] as [string, Uint8Array]);
  const pickle = [...zip.entries.values()].find((e) => e.name.endsWith('/data.pkl'))!;
  const records: number[] = [];
  for (let i = 0; i + 4 <= bytes.length; i++) {
    if (bytes[i] === 0x50 && bytes[i + 1] === 0x4b && [1, 3, 5].includes(bytes[i + 2]) && bytes[i + 3] === bytes[i + 2] + 1) records.push(i);
  }
  return { bytes, entries, pickleName: pickle.name, pickleRange: [pickle.dataOffset, pickle.dataOffset + pickle.compressedSize], records };
}

function mutateTorch(rng: FuzzRng, seed: ZipSeed): Mutant {
  const r = rng.next();
  if (r < 0.3) {
    const m = mutateBytes(rng, seed.bytes, ...seed.pickleRange);
    return { ...m, what: `in-place data.pkl: ${m.what}` };
  }
  if (r < 0.55) {
    const b = seed.bytes.slice();
    const at = rng.pick(seed.records) + rng.range(4, 45);
    const width = rng.pick([1, 2, 4]);
    const v = rng.pick([0, 1, 0xff, 0xffff, 0xffffffff, rng.int(2 ** 32), rng.int(seed.bytes.length)]);
    const view = new DataView(b.buffer);
    if (at + width <= b.length) {
      if (width === 1) view.setUint8(at, v & 0xff);
      else if (width === 2) view.setUint16(at, v & 0xffff, true);
      else view.setUint32(at, v >>> 0, true);
    }
    return { bytes: b, what: `zip record field at ${at} (${width} bytes) → ${v}` };
  }
  if (r < 0.75) {
    // Rebuild a valid zip around a mutated pickle, so the mutation reaches the unpickler.
    const pickle = seed.entries.find(([n]) => n === seed.pickleName)![1];
    const m = mutateBytes(rng, pickle);
    const entries = seed.entries.map(([n, d]) => [n, n === seed.pickleName ? m.bytes : d] as [string, Uint8Array]);
    return { bytes: zipEntries(entries, { crc: false }), what: `rebuilt data.pkl: ${m.what}` };
  }
  if (r < 0.85) {
    // A storage entry cut short or dropped, in an otherwise valid zip.
    const storages = seed.entries.filter(([n]) => n.includes('/data/'));
    const [victim] = rng.pick(storages);
    const cut = rng.int(3) === 0 ? -1 : rng.int(seed.entries.find(([n]) => n === victim)![1].length);
    const entries = seed.entries
      .filter(([n]) => !(n === victim && cut < 0))
      .map(([n, d]) => [n, n === victim ? d.subarray(0, cut) : d] as [string, Uint8Array]);
    return { bytes: zipEntries(entries, { crc: false, align: rng.pick([1, 64]) }), what: `storage ${victim} ${cut < 0 ? 'dropped' : `cut to ${cut} bytes`}` };
  }
  return mutateBytes(rng, seed.bytes);
}

// ---------- random inputs ----------

function randomInput(rng: FuzzRng): Mutant {
  const body = rng.bytes(rng.int(2048));
  switch (rng.int(4)) {
    case 0:
      return { bytes: body, what: `${body.length} random bytes` };
    case 1: {
      const b = new Uint8Array(body.length + 4);
      b.set([0x50, 0x4b, 3, 4]);
      b.set(body, 4);
      return { bytes: b, what: `PK header + ${body.length} random bytes` };
    }
    case 2: {
      const b = new Uint8Array(body.length + 9);
      new DataView(b.buffer).setBigUint64(0, BigInt(rng.int(body.length + 16)), true);
      b[8] = 0x7b;
      b.set(body, 9);
      return { bytes: b, what: `safetensors length + '{' + ${body.length} random bytes` };
    }
    default: {
      const b = new Uint8Array(body.length + 22);
      b.set(body);
      b.set([0x50, 0x4b, 5, 6], body.length); // an end record over random bytes
      b.set(rng.bytes(18), body.length + 4);
      return { bytes: b, what: `${body.length} random bytes + random end-of-central-directory record` };
    }
  }
}

// ---------- small hand-made seeds ----------

function smallSafetensors(): Uint8Array {
  return writeSafetensors(
    {
      a: { dtype: 'BF16', shape: [2, 2], data: new Uint16Array([0x3f80, 0x4000, 0x4040, 0x4080]) },
      b: { dtype: 'I64', shape: [3], data: new BigInt64Array([1n, -2n, 3n]) },
      c: { dtype: 'BOOL', shape: [1], data: new Uint8Array([1]) },
      d: { dtype: 'F16', shape: [], data: new Uint16Array([0x3c00]) },
    },
    { format: 'pt' },
  );
}

function smallTorch(): Uint8Array {
  const f = storage('FloatStorage', Float32Array.from({ length: 12 }, (_, i) => i));
  const h = storage('BFloat16Storage', new Uint16Array([0x3f80, 0x4000]));
  const root: PyValue = {
    dict: [
      [
        'state',
        {
          dict: [
            [
              'model',
              {
                ordered: true,
                metadata: true,
                dict: [
                  ['w', { storage: f, offset: 0, size: [3, 4], stride: [4, 1], parameter: true }],
                  ['wT', { storage: f, offset: 1, size: [3, 3], stride: [1, 4] }],
                  ['h', { storage: h, offset: 0, size: [2], stride: [1] }],
                  ['nested', { dict: [['x', { storage: f, offset: 11, size: [1], stride: [1] }]] }],
                ],
              },
            ],
          ],
        },
      ],
      ['rng', [{ dict: [['numpy', { tuple: ['MT19937', { numpyArray: true }, 624, 0, 0.5] }]] }]],
    ],
  };
  return torchSave(root);
}

describe('loader fuzz suite', () => {
  it('survives thousands of mutated and random inputs with one-line FileFormatErrors only', () => {
    const rng = new FuzzRng(SEED);
    const plan: [string, number, () => void][] = [];
    const small = smallSafetensors();
    const goldenZip = zipSeed(goldenBin);
    const smallZip = zipSeed(smallTorch());
    const pythonZip = zipSeed(new Uint8Array(readFileSync(`${fixtures}python-p4.pt`)));
    // Sanity: every seed parses before it is mutated.
    expect(parseSafetensors(goldenSafetensors, 's').size).toBe(129);
    expect(parseSafetensors(small, 's').size).toBe(4);
    expect(parseTorch(goldenBin, 't').size).toBe(130);
    expect([...parseTorch(smallZip.bytes, 't').keys()]).toEqual(['w', 'wT', 'h', 'nested.x']);

    const n = (k: number) => Math.round(k * SCALE);
    plan.push(['golden model.safetensors', n(400), () => runCase('safetensors', parseSafetensors, mutateSafetensors(rng, goldenSafetensors), 'model.safetensors')]);
    plan.push(['small safetensors', n(1400), () => runCase('safetensors-small', parseSafetensors, mutateSafetensors(rng, small), 'small.safetensors')]);
    plan.push(['golden pytorch_model.bin', n(400), () => runCase('torch', parseTorch, mutateTorch(rng, goldenZip), 'pytorch_model.bin')]);
    plan.push(['small composer .pt', n(1400), () => runCase('torch-small', parseTorch, mutateTorch(rng, smallZip), 'ep0-rank0.pt')]);
    plan.push(['CPython protocol-4 .pt', n(500), () => runCase('torch-python', parseTorch, mutateTorch(rng, pythonZip), 'python-p4.pt')]);
    plan.push(['random bytes (format by magic)', n(800), () => runCase('random', parseAny, randomInput(rng), 'random.bin')]);

    const counts: string[] = [];
    for (const [label, count, step] of plan) {
      const t0 = performance.now();
      for (let i = 0; i < count; i++) step();
      counts.push(`${count} ${label} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    }
    const expected = plan.reduce((s, [, c]) => s + c, 0);
    console.log(
      `io fuzz (seed ${SEED}): ${tally.cases} cases (${counts.join(', ')}): ${tally.rejected} rejected with a one-line FileFormatError, ` +
        `${tally.parsed} parsed, ${tally.failures.length} failures; slowest case ${tally.slowestMs.toFixed(1)} ms, ` +
        `peak extra array-buffer memory ${(tally.peakExtraBytes / 2 ** 20).toFixed(0)} MiB`,
    );
    expect(tally.failures.slice(0, 5)).toEqual([]);
    expect(tally.cases).toBe(expected);
    expect(tally.cases).toBeGreaterThanOrEqual(4000 * Math.min(SCALE, 1));
    expect(tally.rejected).toBeGreaterThan(tally.cases / 2);
  });
});
