import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { deflateSync } from 'fflate';
import { describe, expect, it } from 'vitest';
import { FileFormatError } from '../errors.js';
import { catchOneLineM2Error } from '../fuzzing.js';
import { storage, torchSave, zipEntries, type FakeTensor, type PyValue } from './__fixtures__/torch-save.js';
import { readSafetensors } from './safetensors.js';
import { toFloat32 } from './tensor-record.js';
import { readTorchStateDict } from './torch-state-dict.js';

const fixtures = fileURLToPath(new URL('../../test/fixtures/io/', import.meta.url));
const bin = new Uint8Array(readFileSync(`${fixtures}pytorch_model.bin`));
const safetensors = new Uint8Array(readFileSync(`${fixtures}model.safetensors`));

function formatError(fn: () => unknown, file: string): string {
  const error = catchOneLineM2Error(fn);
  expect(error).toBeInstanceOf(FileFormatError);
  expect(error!.message.startsWith(`${file}: `)).toBe(true);
  return error!.message;
}

const values = (data: ArrayLike<number | bigint>) => Array.from(data as ArrayLike<number>);

describe('readTorchStateDict on the golden tiny-mlm pytorch_model.bin', () => {
  const stateDict = readTorchStateDict(bin, { file: 'pytorch_model.bin' });
  const reference = readSafetensors(safetensors).tensors;

  it('equals model.safetensors tensor for tensor, bit for bit', () => {
    expect(stateDict.size).toBe(reference.size + 1);
    for (const [name, want] of reference) {
      const got = stateDict.get(name);
      expect(got, name).toBeDefined();
      expect(got!.dtype, name).toBe(want.dtype);
      expect(got!.shape, name).toEqual(want.shape);
      const a = new Uint8Array(got!.data.buffer, got!.data.byteOffset, got!.data.byteLength);
      const b = new Uint8Array(want.data.buffer, want.data.byteOffset, want.data.byteLength);
      expect(a.length, name).toBe(b.length);
      expect(a.findIndex((x, i) => x !== b[i]), name).toBe(-1);
    }
  });

  it('reads the I64 position_ids buffer', () => {
    const ids = stateDict.get('bert.embeddings.position_ids')!;
    expect(ids.dtype).toBe('I64');
    expect(ids.shape).toEqual([1, 32]);
    expect(values(ids.data)).toEqual(Array.from({ length: 32 }, (_, i) => BigInt(i)));
  });

  it('gives tensors that share a storage (tied weights) views of the same bytes, zero-copy', () => {
    const decoder = stateDict.get('cls.predictions.decoder.weight')!;
    const embeddings = stateDict.get('bert.embeddings.word_embeddings.weight')!;
    expect(decoder.data.buffer).toBe(bin.buffer);
    expect(decoder.data.buffer).toBe(embeddings.data.buffer);
    expect(decoder.data.byteOffset).toBe(embeddings.data.byteOffset);
  });
});

describe('readTorchStateDict on torch.save layouts built opcode by opcode', () => {
  const t = (s: ReturnType<typeof storage>, size: number[], stride?: number[], offset = 0): FakeTensor => {
    const st = stride ?? size.map((_, i) => size.slice(i + 1).reduce((a, b) => a * b, 1));
    return { storage: s, offset, size, stride: st };
  };

  it('reads every storage dtype of a plain OrderedDict state dict with _metadata', () => {
    const bf16 = storage('BFloat16Storage', new Uint16Array([0x3f80, 0xc000, 0x4040]));
    const f16 = storage('HalfStorage', new Uint16Array([0x3c00, 0x3800]));
    const f64 = storage('DoubleStorage', new Float64Array([Math.PI]));
    const i32 = storage('IntStorage', new Int32Array([-7, 8]));
    const i16 = storage('ShortStorage', new Int16Array([-3]));
    const i8 = storage('CharStorage', new Int8Array([-1]));
    const u8 = storage('ByteStorage', new Uint8Array([200]));
    const bool = storage('BoolStorage', new Uint8Array([1, 0, 1]));
    const i64 = storage('LongStorage', new BigInt64Array([2n ** 40n]));
    const root: PyValue = {
      ordered: true,
      metadata: true,
      dict: [
        ['bf16', t(bf16, [3])],
        ['f16', t(f16, [2, 1])],
        ['f64', t(f64, [])],
        ['i32', t(i32, [2])],
        ['i16', t(i16, [1])],
        ['i8', t(i8, [1])],
        ['u8', t(u8, [1])],
        ['bool', t(bool, [3])],
        ['i64', t(i64, [1])],
      ],
    };
    const sd = readTorchStateDict(torchSave(root), { file: 'x.bin' });
    expect([...sd.keys()]).toEqual(['bf16', 'f16', 'f64', 'i32', 'i16', 'i8', 'u8', 'bool', 'i64']);
    expect(sd.get('bf16')!.dtype).toBe('BF16');
    expect(values(toFloat32(sd.get('bf16')!))).toEqual([1, -2, 3]);
    expect(sd.get('f16')!.shape).toEqual([2, 1]);
    expect(values(toFloat32(sd.get('f16')!))).toEqual([1, 0.5]);
    expect(sd.get('f64')!.shape).toEqual([]);
    expect(values(sd.get('f64')!.data)).toEqual([Math.PI]);
    expect(values(sd.get('i32')!.data)).toEqual([-7, 8]);
    expect(values(sd.get('i16')!.data)).toEqual([-3]);
    expect(values(sd.get('i8')!.data)).toEqual([-1]);
    expect(values(sd.get('u8')!.data)).toEqual([200]);
    expect(sd.get('bool')!.dtype).toBe('BOOL');
    expect(values(sd.get('bool')!.data)).toEqual([1, 0, 1]);
    expect(values(sd.get('i64')!.data)).toEqual([2n ** 40n]);
  });

  it('applies storage offsets and strides (transposed, sliced and expanded views become row-major copies)', () => {
    // storage = 0..11 as a 3×4 matrix m
    const s = storage('FloatStorage', Float32Array.from({ length: 12 }, (_, i) => i));
    const root: PyValue = {
      dict: [
        ['m', t(s, [3, 4])],
        ['mT', t(s, [4, 3], [1, 4])], // m.t()
        ['row1', t(s, [4], [1], 4)], // m[1]
        ['col2', t(s, [3], [4], 2)], // m[:, 2]
        ['block', t(s, [2, 2], [4, 1], 5)], // m[1:3, 1:3]
        ['expanded', t(s, [2, 3], [0, 1], 1)], // m[0, 1:4].expand(2, 3)
        ['unitDims', t(s, [1, 4, 1], [99, 1, 7], 8)], // m[2] with size-1 dims of any stride
        ['tagged', { ...t(s, [2], [1], 3), withState: true }], // a tensor with a Python attribute
      ],
    };
    const sd = readTorchStateDict(torchSave(root), { file: 'x.bin' });
    expect(values(sd.get('m')!.data)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    expect(values(sd.get('mT')!.data)).toEqual([0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]);
    expect(values(sd.get('row1')!.data)).toEqual([4, 5, 6, 7]);
    expect(values(sd.get('col2')!.data)).toEqual([2, 6, 10]);
    expect(values(sd.get('block')!.data)).toEqual([5, 6, 9, 10]);
    expect(sd.get('expanded')!.shape).toEqual([2, 3]);
    expect(values(sd.get('expanded')!.data)).toEqual([1, 2, 3, 1, 2, 3]);
    expect(sd.get('unitDims')!.shape).toEqual([1, 4, 1]);
    expect(values(sd.get('unitDims')!.data)).toEqual([8, 9, 10, 11]);
    expect(values(sd.get('tagged')!.data)).toEqual([3, 4]);
  });

  it('finds composer weights under state.model, flattens nested dicts, skips optimizer state and numpy RNG', () => {
    const w = storage('FloatStorage', new Float32Array([1, 2, 3, 4]));
    const opt = storage('FloatStorage', new Float32Array([9]));
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
                  dict: [
                    ['model.encoder.weight', { ...t(w, [2, 2]), parameter: true }],
                    ['model.head', { dict: [['bias', t(w, [2], [1], 2)]] }],
                    ['model.steps', 17],
                  ],
                },
              ],
              ['optimizers', { dict: [['AdamW', { dict: [['exp_avg', t(opt, [1])]] }]] }],
              ['timestamp', { dict: [['epoch', 3]] }],
            ],
          },
        ],
        ['rng', [{ dict: [['numpy', { tuple: ['MT19937', { numpyArray: true }, 624, 0, 0.0] }], ['python', { tuple: [3, { tuple: [1, 2] }, null] }]] }]],
      ],
    };
    const sd = readTorchStateDict(torchSave(root), { file: 'ep1.pt' });
    expect([...sd.keys()]).toEqual(['model.encoder.weight', 'model.head.bias']);
    expect(values(sd.get('model.encoder.weight')!.data)).toEqual([1, 2, 3, 4]);
    expect(values(sd.get('model.head.bias')!.data)).toEqual([3, 4]);
  });

  it('uses state_dict of a training checkpoint that has no top-level tensors', () => {
    const w = storage('FloatStorage', new Float32Array([5, 6]));
    const root: PyValue = { dict: [['epoch', 3], ['state_dict', { ordered: true, dict: [['model.w', t(w, [2])]] }], ['optimizer_states', [{ dict: [] }]]] };
    expect([...readTorchStateDict(torchSave(root), { file: 'last.ckpt' }).keys()]).toEqual(['model.w']);
  });

  it('reads any archive folder name, zip64 records, deflated entries and unaligned entries', () => {
    const s = storage('FloatStorage', new Float32Array([1.5, -2.5, 3.5]));
    const root: PyValue = { dict: [['w', t(s, [3])]] };
    for (const options of [
      { archive: 'my_model' },
      { zip64: true },
      { deflate: (d: Uint8Array) => deflateSync(d) },
      { align: 1 },
      { zip64: true, deflate: (d: Uint8Array) => deflateSync(d), align: 1 },
    ]) {
      const sd = readTorchStateDict(torchSave(root, options), { file: 'x.bin' });
      expect(values(sd.get('w')!.data), JSON.stringify(Object.keys(options))).toEqual([1.5, -2.5, 3.5]);
    }
  });
});

describe('readTorchStateDict on pickles written by CPython itself (test/fixtures/io/make-python-pickles.py)', () => {
  for (const protocol of [2, 4]) {
    it(`reads protocol ${protocol} (${protocol === 4 ? 'FRAME, SHORT_BINUNICODE, MEMOIZE, STACK_GLOBAL, sets' : 'GLOBAL, BINPUT, LONG1, builtins.set'})`, () => {
      const sd = readTorchStateDict(new Uint8Array(readFileSync(`${fixtures}python-p${protocol}.pt`)), { file: `python-p${protocol}.pt` });
      expect([...sd.keys()]).toEqual(['encoder.weight', 'encoder.weight_t', 'encoder.bias', 'head.bf16', 'head.ids', 'head.half']);
      expect(values(sd.get('encoder.weight')!.data)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
      expect(values(sd.get('encoder.weight_t')!.data)).toEqual([0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]);
      expect(values(sd.get('encoder.bias')!.data)).toEqual([5, 8]);
      expect(values(toFloat32(sd.get('head.bf16')!))).toEqual([1, 2, -3]);
      expect(sd.get('head.ids')!.shape).toEqual([1, 2]);
      expect(values(sd.get('head.ids')!.data)).toEqual([-5n, 2n ** 40n]);
      expect(values(toFloat32(sd.get('head.half')!))).toEqual([-1]);
    });
  }
});

describe('readTorchStateDict refuses hostile and broken checkpoints with one line', () => {
  const file = 'evil.bin';
  const s = storage('FloatStorage', new Float32Array([1, 2]));
  const ok: PyValue = { dict: [['w', { storage: s, offset: 0, size: [2], stride: [1] }]] };
  const withPickle = (pickle: Uint8Array, extra: [string, Uint8Array][] = []) => zipEntries([['archive/data.pkl', pickle], ...extra]);
  const enc = (text: string) => new TextEncoder().encode(text);

  it('refuses os.system, builtins.eval and friends, naming the global', () => {
    // cos\nsystem\n(S'echo pwned'\ntR. in protocol 2 style
    const evil = new Uint8Array([0x80, 2, ...enc('cos\nsystem\n'), 0x58, 4, 0, 0, 0, ...enc('true'), 0x85, 0x52, 0x2e]);
    expect(formatError(() => readTorchStateDict(withPickle(evil), { file }), file)).toMatch(/refusing to load global "os.system"/);
    const evalPickle = new Uint8Array([0x80, 2, ...enc('cbuiltins\neval\n'), 0x2e]);
    expect(formatError(() => readTorchStateDict(withPickle(evalPickle), { file }), file)).toMatch(/"builtins.eval"/);
    const stackGlobal = new Uint8Array([0x80, 4, 0x8c, 10, ...enc('subprocess'), 0x8c, 5, ...enc('Popen'), 0x93, 0x2e]);
    expect(formatError(() => readTorchStateDict(withPickle(stackGlobal), { file }), file)).toMatch(/"subprocess.Popen"/);
  });

  it('refuses calling a storage class or an inert global as a class', () => {
    const callStorage = new Uint8Array([0x80, 2, ...enc('ctorch\nFloatStorage\n'), 0x29, 0x52, 0x2e]);
    expect(formatError(() => readTorchStateDict(withPickle(callStorage), { file }), file)).toMatch(/torch.FloatStorage cannot be called/);
  });

  it('refuses protocol-0 text opcodes, truncated pickles and unbalanced stacks', () => {
    expect(formatError(() => readTorchStateDict(withPickle(enc('I1\n.')), { file }), file)).toMatch(/unsupported pickle opcode 0x49/);
    expect(formatError(() => readTorchStateDict(withPickle(new Uint8Array([0x80, 2, 0x58, 0xff, 0, 0, 0, 0x61])), { file }), file)).toMatch(/truncated/);
    expect(formatError(() => readTorchStateDict(withPickle(new Uint8Array([0x80, 2, 0x2e])), { file }), file)).toMatch(/STOP with 0 values/);
    expect(formatError(() => readTorchStateDict(withPickle(new Uint8Array([0x80, 2, 0x68, 5, 0x2e])), { file }), file)).toMatch(/memo entry 5/);
  });

  it('refuses a missing data.pkl, a missing storage entry and a big-endian archive', () => {
    expect(formatError(() => readTorchStateDict(zipEntries([['archive/other', enc('x')]]), { file }), file)).toMatch(/no <archive>\/data.pkl/);
    const saved = torchSave(ok);
    expect(formatError(() => readTorchStateDict(torchSave(ok, { byteorder: 'big' }), { file }), file)).toMatch(/"big"-endian/);
    // Rename the storage entry so it cannot be found.
    const renamed = saved.slice();
    const text = new TextDecoder('latin1').decode(renamed);
    for (let at = text.indexOf('archive/data/0'); at >= 0; at = text.indexOf('archive/data/0', at + 1)) renamed[at + 13] = 0x39;
    expect(formatError(() => readTorchStateDict(renamed, { file }), file)).toMatch(/storage "0" has no entry "archive\/data\/0"/);
  });

  it('refuses tensors that reach outside their storage or would exceed the file size', () => {
    const outside: PyValue = { dict: [['w', { storage: s, offset: 1, size: [2], stride: [1] }]] };
    expect(formatError(() => readTorchStateDict(torchSave(outside), { file }), file)).toMatch(/reaches element 2 of storage "0", which has 2/);
    const huge: PyValue = { dict: [['w', { storage: s, offset: 0, size: [1 << 30, 1 << 20], stride: [0, 0] }]] };
    expect(formatError(() => readTorchStateDict(torchSave(huge), { file }), file)).toMatch(/more bytes than the file has/);
    const many: PyValue = {
      dict: Array.from({ length: 200 }, (_, i): [string, PyValue] => [`w${i}`, { storage: s, offset: 0, size: [40, 60], stride: [0, 0] }]),
    };
    const file40 = torchSave(many);
    expect(file40.length).toBeGreaterThan(9600); // each expanded tensor alone is smaller than the file
    expect(formatError(() => readTorchStateDict(file40, { file }), file)).toMatch(/copies made while loading past twice the file size/);
    const lying = { type: 'FloatStorage', bytes: new Uint8Array(8), numel: 1000 };
    const lies: PyValue = { dict: [['w', { storage: lying, offset: 0, size: [2], stride: [1] }]] };
    expect(formatError(() => readTorchStateDict(torchSave(lies), { file }), file)).toMatch(/declares 1000 F32 elements but its entry holds 2/);
  });

  it('refuses two tensors with the same name after flattening', () => {
    const twice: PyValue = { dict: [['a.b', { storage: s, offset: 0, size: [1], stride: [1] }], ['a', { dict: [['b', { storage: s, offset: 1, size: [1], stride: [1] }]] }]] };
    expect(formatError(() => readTorchStateDict(torchSave(twice), { file }), file)).toMatch(/tensor name "a.b" appears twice/);
  });

  it('refuses a truncated file and a file with no tensors', () => {
    expect(formatError(() => readTorchStateDict(bin.subarray(0, bin.length - 100), { file }), file)).toMatch(/end-of-central-directory|truncated/);
    expect(formatError(() => readTorchStateDict(bin.subarray(0, 300_000), { file }), file)).toMatch(/end-of-central-directory|truncated/);
    expect(formatError(() => readTorchStateDict(torchSave({ dict: [['n', 1]] }), { file }), file)).toMatch(/no tensors/);
  });
});
