/**
 * A restricted unpickler for PyTorch state dicts. It interprets the pickle opcodes `torch.save` emits
 * (protocol 2, plus the protocol 3–5 framing/bytes/memo/set opcodes) as pure data: nothing is ever imported,
 * called or executed. `GLOBAL` is accepted only for the names a state dict needs; every other global is
 * refused with an error that names it. Every read is bounds-checked, and the stack, memo and containers
 * can only hold values the pickle itself spells out, so memory stays proportional to the pickle's size.
 */
import { fileError } from './file-error.js';
import type { TensorDtype } from './tensor-record.js';

/** A Python tuple. */
export class PyTuple {
  constructor(readonly items: PickleValue[]) {}
}
/** A Python dict or OrderedDict (insertion order kept). */
export class PyDict {
  readonly map = new Map<string | number | bigint | boolean | null | object, PickleValue>();
}
/** A whitelisted global such as `torch._utils._rebuild_tensor_v2` (a name only, never resolved). */
export class PyGlobal {
  constructor(
    readonly module: string,
    readonly name: string,
  ) {}
  get qualifiedName(): string {
    return `${this.module}.${this.name}`;
  }
}
/** A reference to `<archive>/data/<key>` from a persistent id `('storage', type, key, location, numel)`. */
export class StorageRef {
  constructor(
    readonly dtype: TensorDtype,
    readonly key: string,
    readonly numel: number,
  ) {}
}
/** A tensor rebuilt by `_rebuild_tensor_v2`: a strided view into a storage. */
export class TensorRef {
  constructor(
    readonly storage: StorageRef,
    readonly storageOffset: number,
    readonly size: number[],
    readonly stride: number[],
  ) {}
}
/** The inert result of a data-only global that is not a tensor (e.g. numpy RNG state in a composer checkpoint). */
export class Opaque {
  constructor(readonly what: string) {}
}

/** Any value the unpickler can produce. */
export type PickleValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | PickleValue[]
  | PyTuple
  | PyDict
  | PyGlobal
  | StorageRef
  | TensorRef
  | Opaque;

/** Storage classes and the dtype of their elements. */
const STORAGE_DTYPES: Record<string, TensorDtype> = {
  DoubleStorage: 'F64',
  FloatStorage: 'F32',
  HalfStorage: 'F16',
  BFloat16Storage: 'BF16',
  LongStorage: 'I64',
  IntStorage: 'I32',
  ShortStorage: 'I16',
  CharStorage: 'I8',
  ByteStorage: 'U8',
  BoolStorage: 'BOOL',
  UntypedStorage: 'U8',
};

/** Callable globals a state dict needs. */
const CALLABLES = new Set([
  'collections.OrderedDict',
  'torch._utils._rebuild_tensor',
  'torch._utils._rebuild_tensor_v2',
  'torch._utils._rebuild_parameter',
  'torch._utils._rebuild_parameter_with_state',
  'torch._tensor._rebuild_from_type_v2',
  'torch.Size',
]);

/** Classes that may appear as arguments (never called or instantiated). */
const TYPES = new Set(['torch.Tensor', 'torch.nn.parameter.Parameter', 'torch.nn.parameter.Buffer']);

/**
 * Data-only globals found outside the weights of composer checkpoints (numpy RNG state, …). They are never
 * called: applying them yields an inert {@link Opaque} placeholder that the state-dict reader skips.
 */
const INERT = new Set([
  'numpy.core.multiarray._reconstruct',
  'numpy._core.multiarray._reconstruct',
  'numpy.core.multiarray.scalar',
  'numpy._core.multiarray.scalar',
  'numpy.ndarray',
  'numpy.dtype',
  '_codecs.encode',
  'builtins.set',
  'builtins.frozenset',
  '__builtin__.set',
  '__builtin__.frozenset',
]);

function isStorageClass(module: string, name: string): boolean {
  return (module === 'torch' || module === 'torch.cuda' || module === 'torch.storage') && name in STORAGE_DTYPES;
}

const MARK = Symbol('mark');
type StackItem = PickleValue | typeof MARK;

/**
 * Unpickles `data` (the `data.pkl` entry of a PyTorch zip checkpoint).
 * @param data - Pickle bytes.
 * @param file - Name used in error messages (e.g. `pytorch_model.bin`).
 * @returns The unpickled root value.
 * @throws FileFormatError (one line) for truncated or malformed pickles, unsupported opcodes, and any global
 *   outside the allowlist (the message names it).
 */
export function restrictedUnpickle(data: Uint8Array, file: string): PickleValue {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const latin1 = new TextDecoder('latin1');
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  const stack: StackItem[] = [];
  const memo = new Map<number, PickleValue>();
  let pos = 0;
  let opAt = 0;

  const fail = (problem: string) => fileError(file, `not a valid PyTorch checkpoint pickle: ${problem} (at byte ${opAt} of data.pkl)`);
  const need = (n: number): number => {
    if (n < 0 || pos + n > data.length) throw fail('truncated');
    const at = pos;
    pos += n;
    return at;
  };
  const u8 = () => data[need(1)];
  const u16 = () => view.getUint16(need(2), true);
  const u32 = () => view.getUint32(need(4), true);
  const u64 = (): number => {
    const v = view.getBigUint64(need(8), true);
    if (v > BigInt(data.length)) throw fail(`length ${v} is larger than the pickle`);
    return Number(v);
  };
  const bytes = (n: number) => data.subarray(need(n), pos);
  const text = (n: number) => {
    const raw = bytes(n);
    try {
      return utf8.decode(raw);
    } catch {
      throw fail('string is not valid UTF-8');
    }
  };
  const line = (): string => {
    const end = data.indexOf(0x0a, pos);
    if (end < 0 || end - pos > 256) throw fail('unterminated GLOBAL name');
    const s = latin1.decode(data.subarray(pos, end));
    pos = end + 1;
    return s;
  };
  const pop = (): PickleValue => {
    if (stack.length === 0) throw fail('stack underflow');
    const v = stack.pop()!;
    if (v === MARK) throw fail('unexpected MARK');
    return v;
  };
  const top = (): PickleValue => {
    const v = stack[stack.length - 1];
    if (stack.length === 0 || v === MARK) throw fail('stack underflow');
    return v;
  };
  const popMark = (): PickleValue[] => {
    const at = stack.lastIndexOf(MARK);
    if (at < 0) throw fail('no MARK on the stack');
    const items = stack.splice(at) as PickleValue[];
    items.shift();
    return items;
  };
  const makeGlobal = (module: string, name: string): PyGlobal => {
    const g = new PyGlobal(module, name);
    const known = CALLABLES.has(g.qualifiedName) || INERT.has(g.qualifiedName) || TYPES.has(g.qualifiedName);
    if (!known && !isStorageClass(module, name)) {
      throw fileError(
        file,
        `refusing to load global ${JSON.stringify(g.qualifiedName).slice(0, 120)}: only tensors and plain containers are allowed in a state dict (nothing in the file is executed)`,
      );
    }
    return g;
  };
  const int = (v: PickleValue, what: string): number => {
    if (typeof v === 'number' && Number.isSafeInteger(v)) return v;
    if (typeof v === 'bigint' && v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER)) return Number(v);
    throw fail(`${what} must be an integer`);
  };
  const intTuple = (v: PickleValue, what: string): number[] => {
    if (!(v instanceof PyTuple) && !Array.isArray(v)) throw fail(`${what} must be a tuple`);
    const items = v instanceof PyTuple ? v.items : v;
    return items.map((x) => int(x, what));
  };
  const setItem = (dict: PickleValue, key: PickleValue, value: PickleValue): void => {
    if (dict instanceof Opaque) return;
    if (!(dict instanceof PyDict)) throw fail('SETITEM on a non-dict');
    dict.map.set(key instanceof Uint8Array ? latin1.decode(key) : key, value);
  };
  const append = (list: PickleValue, items: PickleValue[]): void => {
    if (list instanceof Opaque) return;
    if (!Array.isArray(list)) throw fail('APPEND on a non-list');
    for (const item of items) list.push(item);
  };

  const call = (fn: PickleValue, argsValue: PickleValue): PickleValue => {
    if (!(fn instanceof PyGlobal)) throw fail('REDUCE on something that is not an allowed global');
    if (!(argsValue instanceof PyTuple)) throw fail(`arguments of ${fn.qualifiedName} must be a tuple`);
    const args = argsValue.items;
    const name = fn.qualifiedName;
    if (INERT.has(name)) return new Opaque(name);
    switch (name) {
      case 'collections.OrderedDict':
        return new PyDict();
      case 'torch._utils._rebuild_tensor':
      case 'torch._utils._rebuild_tensor_v2': {
        if (args.length < 4) throw fail(`${name} needs at least 4 arguments, got ${args.length}`);
        const storage = args[0];
        if (!(storage instanceof StorageRef)) throw fail(`${name} needs a storage as first argument`);
        const size = intTuple(args[2], 'tensor size');
        const stride = intTuple(args[3], 'tensor stride');
        if (size.length !== stride.length) throw fail(`tensor size has ${size.length} dims but stride ${stride.length}`);
        return new TensorRef(storage, int(args[1], 'storage offset'), size, stride);
      }
      case 'torch._tensor._rebuild_from_type_v2': {
        // (func, new_type, args, state): a Tensor/Parameter with Python state; the state is not kept
        const [func, type, inner] = args;
        if (!(type instanceof PyGlobal) || !TYPES.has(type.qualifiedName)) throw fail(`${name} needs torch.Tensor or torch.nn.Parameter as type`);
        if (func instanceof PyGlobal && func.qualifiedName === name) throw fail(`${name} cannot rebuild itself`);
        return call(func, inner);
      }
      case 'torch.Size':
        if (args.length !== 1 || !(args[0] instanceof PyTuple)) throw fail('torch.Size needs one tuple');
        return args[0];
      case 'torch._utils._rebuild_parameter':
      case 'torch._utils._rebuild_parameter_with_state': {
        if (!(args[0] instanceof TensorRef)) throw fail(`${name} needs a tensor as first argument`);
        return args[0];
      }
      default:
        throw fail(`${name} cannot be called`);
    }
  };

  if (data.length === 0) throw fail('empty pickle');
  for (;;) {
    opAt = pos;
    const op = u8();
    switch (op) {
      case 0x80: // PROTO
        if (u8() > 5) throw fail('pickle protocol newer than 5');
        break;
      case 0x95: // FRAME (protocol 4): an 8-byte length, frames are just a hint
        u64();
        break;
      case 0x2e: // STOP
        if (stack.length !== 1) throw fail(`STOP with ${stack.length} values on the stack`);
        return pop();
      case 0x28: // MARK
        stack.push(MARK);
        break;
      case 0x30: // POP
        if (stack.length === 0) throw fail('stack underflow');
        stack.pop();
        break;
      case 0x31: // POP_MARK
        popMark();
        break;
      case 0x32: // DUP
        stack.push(top());
        break;
      case 0x4e: // NONE
        stack.push(null);
        break;
      case 0x88: // NEWTRUE
        stack.push(true);
        break;
      case 0x89: // NEWFALSE
        stack.push(false);
        break;
      case 0x4a: // BININT
        stack.push(view.getInt32(need(4), true));
        break;
      case 0x4b: // BININT1
        stack.push(u8());
        break;
      case 0x4d: // BININT2
        stack.push(u16());
        break;
      case 0x8a: // LONG1
      case 0x8b: {
        // LONG4
        const n = op === 0x8a ? u8() : u32();
        if (n > 64) throw fail(`integer of ${n} bytes is too large`);
        const b = bytes(n);
        let v = 0n;
        for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
        if (n > 0 && b[n - 1] & 0x80) v -= 1n << BigInt(8 * n);
        stack.push(v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);
        break;
      }
      case 0x47: // BINFLOAT (big-endian double)
        stack.push(view.getFloat64(need(8), false));
        break;
      case 0x58: // BINUNICODE
        stack.push(text(u32()));
        break;
      case 0x8c: // SHORT_BINUNICODE
        stack.push(text(u8()));
        break;
      case 0x8d: // BINUNICODE8
        stack.push(text(u64()));
        break;
      case 0x54: // BINSTRING (python 2 str)
        stack.push(latin1.decode(bytes(u32())));
        break;
      case 0x55: // SHORT_BINSTRING
        stack.push(latin1.decode(bytes(u8())));
        break;
      case 0x42: // BINBYTES
        stack.push(bytes(u32()));
        break;
      case 0x43: // SHORT_BINBYTES
        stack.push(bytes(u8()));
        break;
      case 0x8e: // BINBYTES8
        stack.push(bytes(u64()));
        break;
      case 0x7d: // EMPTY_DICT
        stack.push(new PyDict());
        break;
      case 0x5d: // EMPTY_LIST
        stack.push([]);
        break;
      case 0x29: // EMPTY_TUPLE
        stack.push(new PyTuple([]));
        break;
      case 0x8f: // EMPTY_SET (kept as a list: sets hold no tensors of a state dict)
        stack.push([]);
        break;
      case 0x90: {
        // ADDITEMS
        const items = popMark();
        append(top(), items);
        break;
      }
      case 0x91: // FROZENSET
        stack.push(popMark());
        break;
      case 0x74: // TUPLE
        stack.push(new PyTuple(popMark()));
        break;
      case 0x85: // TUPLE1
      case 0x86: // TUPLE2
      case 0x87: {
        // TUPLE3
        const n = op - 0x84;
        const items: PickleValue[] = [];
        for (let i = 0; i < n; i++) items.unshift(pop());
        stack.push(new PyTuple(items));
        break;
      }
      case 0x6c: // LIST
        stack.push(popMark());
        break;
      case 0x64: {
        // DICT
        const items = popMark();
        if (items.length % 2) throw fail('DICT with an odd number of items');
        const dict = new PyDict();
        for (let i = 0; i < items.length; i += 2) setItem(dict, items[i], items[i + 1]);
        stack.push(dict);
        break;
      }
      case 0x61: {
        // APPEND
        const item = pop();
        append(top(), [item]);
        break;
      }
      case 0x65: {
        // APPENDS
        const items = popMark();
        append(top(), items);
        break;
      }
      case 0x73: {
        // SETITEM
        const value = pop();
        const key = pop();
        setItem(top(), key, value);
        break;
      }
      case 0x75: {
        // SETITEMS
        const items = popMark();
        if (items.length % 2) throw fail('SETITEMS with an odd number of items');
        const dict = top();
        for (let i = 0; i < items.length; i += 2) setItem(dict, items[i], items[i + 1]);
        break;
      }
      case 0x71: // BINPUT
        memo.set(u8(), top());
        break;
      case 0x72: // LONG_BINPUT
        memo.set(u32(), top());
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, top());
        break;
      case 0x68: // BINGET
      case 0x6a: {
        // LONG_BINGET
        const index = op === 0x68 ? u8() : u32();
        if (!memo.has(index)) throw fail(`memo entry ${index} is not defined`);
        stack.push(memo.get(index)!);
        break;
      }
      case 0x63: {
        // GLOBAL
        const module = line();
        const name = line();
        stack.push(makeGlobal(module, name));
        break;
      }
      case 0x93: {
        // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') throw fail('STACK_GLOBAL needs two strings');
        stack.push(makeGlobal(module, name));
        break;
      }
      case 0x52: {
        // REDUCE
        const args = pop();
        const fn = pop();
        stack.push(call(fn, args));
        break;
      }
      case 0x81: {
        // NEWOBJ: cls.__new__(cls, *args); only OrderedDict (and inert globals) may be instantiated
        const args = pop();
        const cls = pop();
        if (cls instanceof PyGlobal && cls.qualifiedName === 'collections.OrderedDict') stack.push(new PyDict());
        else if (cls instanceof PyGlobal && INERT.has(cls.qualifiedName)) stack.push(new Opaque(cls.qualifiedName));
        else throw fail('NEWOBJ on something that is not an allowed class');
        void args;
        break;
      }
      case 0x62: {
        // BUILD: object state (a state dict's `_metadata`, numpy array contents); kept out of the result
        pop();
        const target = top();
        if (!(target instanceof PyDict || target instanceof TensorRef || target instanceof Opaque)) {
          throw fail('BUILD on an object that takes no state');
        }
        break;
      }
      case 0x51: {
        // BINPERSID: ('storage', storage_type, key, location, numel)
        const pid = pop();
        if (!(pid instanceof PyTuple) || pid.items.length < 5 || pid.items[0] !== 'storage') {
          throw fail("persistent id must be ('storage', type, key, location, numel)");
        }
        const [, type, key, , numel] = pid.items;
        if (!(type instanceof PyGlobal) || !isStorageClass(type.module, type.name)) throw fail('persistent id has no storage class');
        if (typeof key !== 'string') throw fail('storage key must be a string');
        const n = int(numel, 'storage size');
        if (n < 0) throw fail('storage size is negative');
        stack.push(new StorageRef(STORAGE_DTYPES[type.name], key, n));
        break;
      }
      default:
        throw fail(`unsupported pickle opcode 0x${op.toString(16).padStart(2, '0')}`);
    }
  }
}
