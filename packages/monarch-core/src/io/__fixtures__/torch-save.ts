/**
 * Test-only writers that produce PyTorch zip checkpoints the way `torch.save` (PyTorch ≥ 1.6, protocol 2)
 * does, opcode for opcode, so the reader can be tested on dtypes, strides, offsets, shared storages and
 * composer nesting that the golden file lacks. See torch/serialization.py (`_save`, `persistent_id`) and
 * torch/_tensor.py (`_reduce_ex_internal` → `torch._utils._rebuild_tensor_v2`).
 */

/** A storage: its class name in `torch` (e.g. `FloatStorage`) and raw little-endian bytes. */
export interface FakeStorage {
  type: string;
  bytes: Uint8Array;
  /** Elements (bytes for UntypedStorage). */
  numel: number;
}

/** A tensor as `_rebuild_tensor_v2` receives it. */
export interface FakeTensor {
  storage: FakeStorage;
  offset: number;
  size: number[];
  stride: number[];
  /** Wrap in `torch._utils._rebuild_parameter` (an nn.Parameter). */
  parameter?: boolean;
  /** Wrap in `torch._tensor._rebuild_from_type_v2` (a tensor with Python attributes, e.g. `t.tag = 1`). */
  withState?: boolean;
}

/** Python-ish values the writer can pickle. */
export type PyValue =
  | null
  | boolean
  | number
  | string
  | FakeTensor
  | PyValue[]
  | { tuple: PyValue[] }
  | { dict: [string, PyValue][]; ordered?: boolean; metadata?: boolean }
  | { numpyArray: true };

/** Makes a storage from a typed array. */
export function storage(type: string, data: ArrayBufferView & { length: number }): FakeStorage {
  return { type, bytes: new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice(), numel: data.length };
}

/** Pickles `root` as torch.save would, returning data.pkl bytes and the storages keyed as torch keys them. */
export function torchPickle(root: PyValue): { pickle: Uint8Array; storages: Map<string, FakeStorage> } {
  const out: number[] = [];
  const enc = new TextEncoder();
  const memo = new Map<string, number>();
  const storageKeys = new Map<FakeStorage, string>();
  const u32 = (v: number) => out.push(v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, (v >>> 24) & 0xff);
  let putCount = 0;
  const put = () => {
    const i = putCount++;
    if (i < 256) out.push(0x71, i);
    else {
      out.push(0x72);
      u32(i);
    }
    return i;
  };
  const get = (i: number) => {
    if (i < 256) out.push(0x68, i);
    else {
      out.push(0x6a);
      u32(i);
    }
  };
  const global = (module: string, name: string) => {
    const k = `${module}\n${name}`;
    const known = memo.get(k);
    if (known !== undefined) return get(known);
    out.push(0x63, ...enc.encode(`${module}\n${name}\n`));
    memo.set(k, put());
  };
  const int = (v: number) => {
    if (v >= 0 && v < 256) out.push(0x4b, v);
    else if (v >= 0 && v < 65536) out.push(0x4d, v & 0xff, v >> 8);
    else if (v >= -(2 ** 31) && v < 2 ** 31) {
      out.push(0x4a);
      u32(v);
    } else {
      const bytes: number[] = [];
      let b = BigInt(v);
      for (let i = 0; i < 8; i++) {
        bytes.push(Number(b & 0xffn));
        b >>= 8n;
      }
      out.push(0x8a, 8, ...bytes);
    }
  };
  const str = (s: string) => {
    const b = enc.encode(s);
    out.push(0x58);
    u32(b.length);
    out.push(...b);
    put();
  };
  const tuple = (items: PyValue[]) => {
    if (items.length === 0) return out.push(0x29);
    if (items.length <= 3) {
      items.forEach(save);
      out.push(0x84 + items.length);
    } else {
      out.push(0x28);
      items.forEach(save);
      out.push(0x74);
    }
    put();
  };
  const save = (v: PyValue): void => {
    if (v === null) out.push(0x4e);
    else if (v === true) out.push(0x88);
    else if (v === false) out.push(0x89);
    else if (typeof v === 'number') {
      if (Number.isInteger(v)) int(v);
      else {
        out.push(0x47);
        const b = new DataView(new ArrayBuffer(8));
        b.setFloat64(0, v, false);
        out.push(...new Uint8Array(b.buffer));
      }
    } else if (typeof v === 'string') str(v);
    else if (Array.isArray(v)) {
      out.push(0x5d);
      put();
      if (v.length) {
        out.push(0x28);
        v.forEach(save);
        out.push(0x65);
      }
    } else if ('tuple' in v) tuple(v.tuple);
    else if ('numpyArray' in v) {
      // numpy.core.multiarray._reconstruct(numpy.ndarray, (0,), b'b') then BUILD with the array state
      global('numpy.core.multiarray', '_reconstruct');
      global('numpy', 'ndarray');
      int(0);
      out.push(0x85, 0x43, 1, 0x62, 0x87, 0x52);
      put();
      out.push(0x28, 0x4b, 1, 0x4b, 3, 0x85);
      global('numpy', 'dtype');
      out.push(0x58);
      u32(2);
      out.push(...enc.encode('u4'), 0x89, 0x88, 0x87, 0x52, 0x4e, 0x89, 0x43, 12, ...new Array(12).fill(7), 0x74, 0x62);
    } else if ('dict' in v) {
      if (v.ordered) {
        global('collections', 'OrderedDict');
        out.push(0x29, 0x52);
      } else out.push(0x7d);
      put();
      if (v.dict.length) {
        out.push(0x28);
        for (const [k, item] of v.dict) {
          str(k);
          save(item);
        }
        out.push(0x75);
      }
      if (v.metadata) {
        // state_dict()._metadata = OrderedDict({'': {'version': 1}}) goes through BUILD
        out.push(0x7d);
        put();
        str('_metadata');
        global('collections', 'OrderedDict');
        out.push(0x29, 0x52);
        put();
        str('');
        out.push(0x7d);
        put();
        str('version');
        int(1);
        out.push(0x73, 0x73, 0x73, 0x62);
      }
    } else saveTensor(v);
  };
  const saveTensor = (t: FakeTensor) => {
    if (t.withState) {
      // _rebuild_from_type_v2(_rebuild_tensor_v2, torch.Tensor, (args...), {'tag': 1})
      global('torch._tensor', '_rebuild_from_type_v2');
      out.push(0x28);
    }
    if (t.parameter) global('torch._utils', '_rebuild_parameter');
    global('torch._utils', '_rebuild_tensor_v2');
    if (t.withState) global('torch', 'Tensor');
    out.push(0x28); // args
    let key = storageKeys.get(t.storage);
    if (key === undefined) {
      key = String(storageKeys.size);
      storageKeys.set(t.storage, key);
    }
    out.push(0x28);
    str('storage');
    global('torch', t.storage.type);
    str(key);
    str('cpu');
    int(t.storage.numel);
    out.push(0x74);
    put();
    out.push(0x51); // BINPERSID
    int(t.offset);
    tuple(t.size);
    tuple(t.stride);
    out.push(0x89); // requires_grad False
    global('collections', 'OrderedDict');
    out.push(0x29, 0x52);
    put();
    out.push(0x74);
    put();
    if (t.withState) {
      out.push(0x7d);
      put();
      str('tag');
      int(1);
      out.push(0x73, 0x74);
    }
    out.push(0x52);
    put();
    if (t.parameter) {
      out.push(0x89);
      global('collections', 'OrderedDict');
      out.push(0x29, 0x52, 0x87, 0x52);
      put();
    }
  };
  out.push(0x80, 0x02);
  save(root);
  out.push(0x2e);
  const storages = new Map<string, FakeStorage>();
  for (const [s, k] of storageKeys) storages.set(k, s);
  return { pickle: new Uint8Array(out), storages };
}

function crc32(data: Uint8Array): number {
  let crc = ~0;
  for (const byte of data) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = (crc >>> 1) ^ (0xedb88320 & -(crc & 1));
  }
  return ~crc >>> 0;
}

/** Options of {@link zipEntries}. */
export interface ZipOptions {
  /** Pad local headers so data starts at a multiple of this (torch uses 64). Default 64. */
  align?: number;
  /** Write zip64 records (sizes and offsets as 0xffffffff + extra field), as torch does for > 4 GB files. */
  zip64?: boolean;
  /** Compute CRC-32s (slow in JS; the reader ignores them). Default true. */
  crc?: boolean;
  /** Deflate entries with this function instead of storing them. */
  deflate?: (data: Uint8Array) => Uint8Array;
}

/** Writes a zip the way PyTorch's miniz writer lays it out: stored, aligned entries, then the central directory. */
export function zipEntries(entries: [string, Uint8Array][], options: ZipOptions = {}): Uint8Array {
  const align = options.align ?? 64;
  const parts: Uint8Array[] = [];
  const central: Uint8Array[] = [];
  let offset = 0;
  const enc = new TextEncoder();
  for (const [name, raw] of entries) {
    const crc = options.crc === false ? 0 : crc32(raw);
    const nameBytes = enc.encode(name);
    const data = options.deflate ? options.deflate(raw) : raw;
    const method = options.deflate ? 8 : 0;
    const zip64Extra = options.zip64 ? 20 : 0;
    let pad = 0;
    if (align > 1) pad = (align - ((offset + 30 + nameBytes.length + zip64Extra + 4) % align)) % align;
    const extraLength = zip64Extra + (align > 1 ? 4 + pad : 0);
    const local = new DataView(new ArrayBuffer(30 + nameBytes.length + extraLength));
    local.setUint32(0, 0x04034b50, true);
    local.setUint16(4, options.zip64 ? 45 : 20, true);
    local.setUint16(8, method, true);
    local.setUint32(14, crc, true);
    local.setUint32(18, options.zip64 ? 0xffffffff : data.length, true);
    local.setUint32(22, options.zip64 ? 0xffffffff : raw.length, true);
    local.setUint16(26, nameBytes.length, true);
    local.setUint16(28, extraLength, true);
    new Uint8Array(local.buffer).set(nameBytes, 30);
    let e = 30 + nameBytes.length;
    if (options.zip64) {
      local.setUint16(e, 1, true);
      local.setUint16(e + 2, 16, true);
      local.setBigUint64(e + 4, BigInt(raw.length), true);
      local.setBigUint64(e + 12, BigInt(data.length), true);
      e += 20;
    }
    if (align > 1) {
      local.setUint16(e, 0x5346, true); // miniz/torch padding field id "FS"
      local.setUint16(e + 2, pad, true);
    }
    const cExtra = options.zip64 ? 28 : 0;
    const c = new DataView(new ArrayBuffer(46 + nameBytes.length + cExtra));
    c.setUint32(0, 0x02014b50, true);
    c.setUint16(4, 45, true);
    c.setUint16(6, options.zip64 ? 45 : 20, true);
    c.setUint16(10, method, true);
    c.setUint32(16, crc, true);
    c.setUint32(20, options.zip64 ? 0xffffffff : data.length, true);
    c.setUint32(24, options.zip64 ? 0xffffffff : raw.length, true);
    c.setUint16(28, nameBytes.length, true);
    c.setUint16(30, cExtra, true);
    c.setUint32(42, options.zip64 ? 0xffffffff : offset, true);
    new Uint8Array(c.buffer).set(nameBytes, 46);
    if (options.zip64) {
      const x = 46 + nameBytes.length;
      c.setUint16(x, 1, true);
      c.setUint16(x + 2, 24, true);
      c.setBigUint64(x + 4, BigInt(raw.length), true);
      c.setBigUint64(x + 12, BigInt(data.length), true);
      c.setBigUint64(x + 20, BigInt(offset), true);
    }
    parts.push(new Uint8Array(local.buffer), data);
    central.push(new Uint8Array(c.buffer));
    offset += local.byteLength + data.length;
  }
  const cdOffset = offset;
  const cdSize = central.reduce((n, c) => n + c.length, 0);
  parts.push(...central);
  if (options.zip64) {
    const z = new DataView(new ArrayBuffer(56 + 20));
    z.setUint32(0, 0x06064b50, true);
    z.setBigUint64(4, 44n, true);
    z.setUint16(12, 45, true);
    z.setUint16(14, 45, true);
    z.setBigUint64(24, BigInt(entries.length), true);
    z.setBigUint64(32, BigInt(entries.length), true);
    z.setBigUint64(40, BigInt(cdSize), true);
    z.setBigUint64(48, BigInt(cdOffset), true);
    z.setUint32(56, 0x07064b50, true);
    z.setBigUint64(64, BigInt(cdOffset + cdSize), true);
    z.setUint32(72, 1, true);
    parts.push(new Uint8Array(z.buffer));
  }
  const end = new DataView(new ArrayBuffer(22));
  end.setUint32(0, 0x06054b50, true);
  end.setUint16(8, options.zip64 ? 0xffff : entries.length, true);
  end.setUint16(10, options.zip64 ? 0xffff : entries.length, true);
  end.setUint32(12, options.zip64 ? 0xffffffff : cdSize, true);
  end.setUint32(16, options.zip64 ? 0xffffffff : cdOffset, true);
  parts.push(new Uint8Array(end.buffer));
  const total = parts.reduce((n, p) => n + p.length, 0);
  const file = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    file.set(p, at);
    at += p.length;
  }
  return file;
}

/** torch.save(root, f) for a file whose archive folder is `archive`: data.pkl, byteorder, data/<key>, version. */
export function torchSave(root: PyValue, options: ZipOptions & { archive?: string; byteorder?: string } = {}): Uint8Array {
  const archive = options.archive ?? 'archive';
  const { pickle, storages } = torchPickle(root);
  const enc = new TextEncoder();
  const entries: [string, Uint8Array][] = [
    [`${archive}/data.pkl`, pickle],
    [`${archive}/.format_version`, enc.encode('1')],
    [`${archive}/.storage_alignment`, enc.encode('64')],
    [`${archive}/byteorder`, enc.encode(options.byteorder ?? 'little')],
  ];
  for (const [key, s] of storages) entries.push([`${archive}/data/${key}`, s.bytes]);
  entries.push([`${archive}/version`, enc.encode('3\n')], [`${archive}/.data/serialization_id`, enc.encode('1234567890')]);
  return zipEntries(entries, options);
}
