/**
 * Reads PyTorch zip checkpoints (`torch.save` since PyTorch 1.6: `pytorch_model.bin`, composer `.pt`) into
 * tensor records without running any Python: the zip is parsed defensively, `data.pkl` goes through
 * the restricted unpickler (allowlisted globals only), and each tensor is cut out of its storage entry
 * (`<archive>/data/<key>`) with its offset and strides, every size checked against the file first.
 */
import { InvalidArgumentError } from '../errors.js';
import { fileError, quote } from './file-error.js';
import { PyDict, TensorRef, restrictedUnpickle, type PickleValue } from './restricted-unpickler.js';
import { DTYPE_INFO, assertLittleEndian, shapeSize, viewOrCopy, type TensorData, type TensorRecord } from './tensor-record.js';
import { ZipArchive, type ZipEntry } from './zip-archive.js';

/** Options of {@link readTorchStateDict}. */
export interface ReadTorchStateDictOptions {
  /** File name used in error messages. Default `'<pytorch checkpoint>'`. */
  file?: string;
}

/**
 * Reads the state dict of a PyTorch zip checkpoint.
 *
 * - Any archive folder name (`archive/`, `pytorch_model/`, …); stored or deflated entries; zip64.
 * - fp32/fp64/fp16/bf16 and integer/bool storages; storage offsets; non-contiguous strides (copied to
 *   row-major); storages shared by several tensors (tied weights: each tensor gets its own view).
 * - A composer checkpoint's weights under `state.model` (or a training checkpoint's `state_dict`) are used
 *   when present; nested dicts are flattened
 *   with `.` (`{ a: { b: t } }` → `a.b`); non-tensor values (ints, strings, lists) are skipped.
 *
 * Contiguous tensors are zero-copy views into stored entries of `bytes` when aligned.
 *
 * Shapes: each record's data has product(shape) elements, row-major.
 * @param bytes - The whole checkpoint file.
 * @param options - `file`: name used in error messages.
 * @returns Name → record, in the pickle's order.
 * @throws FileFormatError (one line, naming the file) for a corrupt or truncated zip, a missing `data.pkl`,
 *   a malformed pickle, a global outside the allowlist (named in the message), a missing storage entry,
 *   a tensor that reaches outside its storage or would be larger than the file, or a file without tensors.
 * @example
 * const stateDict = readTorchStateDict(readFileSync('pytorch_model.bin'), { file: 'pytorch_model.bin' });
 * stateDict.get('bert.embeddings.word_embeddings.weight')?.shape; // → [30528, 768]
 */
export function readTorchStateDict(bytes: Uint8Array, options: ReadTorchStateDictOptions = {}): Map<string, TensorRecord> {
  const file = options.file ?? '<pytorch checkpoint>';
  if (!(bytes instanceof Uint8Array)) {
    throw new InvalidArgumentError(`readTorchStateDict: bytes must be a Uint8Array, got ${typeof bytes}.`);
  }
  assertLittleEndian('readTorchStateDict');
  const fail = (problem: string) => fileError(file, problem);
  const zip = new ZipArchive(bytes, file);

  const pickles = [...zip.entries.keys()].filter((name) => /^[^/]+\/data\.pkl$/.test(name));
  if (pickles.length !== 1) {
    throw fail(
      pickles.length === 0
        ? 'not a PyTorch zip checkpoint: no <archive>/data.pkl entry'
        : `not a PyTorch zip checkpoint: ${pickles.length} data.pkl entries`,
    );
  }
  const prefix = pickles[0].slice(0, -'data.pkl'.length);
  const byteorder = zip.entries.get(`${prefix}byteorder`);
  if (byteorder) {
    const order = new TextDecoder().decode(zip.read(byteorder)).trim();
    if (order !== 'little') throw fail(`storages are ${quote(order, 20)}-endian; only little-endian checkpoints are supported`);
  }

  const root = restrictedUnpickle(zip.read(zip.entries.get(pickles[0])!), file);
  const stateDict = selectStateDict(root);
  if (!stateDict) throw fail('the pickle does not hold a dict of tensors');

  // Copies (unaligned storages, non-contiguous tensors) may total at most twice the file size (+1 MiB), so
  // that many tensors expanded from one small storage cannot multiply memory use.
  let budget = 2 * bytes.length + (1 << 20);
  const spend = (n: number, what: string): void => {
    budget -= n;
    if (budget < 0) throw fail(`${what} would take the copies made while loading past twice the file size; the checkpoint is hostile or corrupt`);
  };
  const storages = new Map<string, Uint8Array>();
  const storageBytes = (key: string): Uint8Array => {
    let data = storages.get(key);
    if (!data) {
      const entry: ZipEntry | undefined = zip.entries.get(`${prefix}data/${key}`);
      if (!entry) throw fail(`storage ${quote(key)} has no entry ${quote(`${prefix}data/${key}`)} in the archive`);
      data = zip.read(entry);
      if (data.byteOffset % 8 !== 0) {
        // Unaligned stored entry: copy it once (counted against the budget) so that every tensor on it is a view.
        spend(data.length, `storage ${quote(key)}`);
        data = data.slice();
      }
      storages.set(key, data);
    }
    return data;
  };

  const tensors = new Map<string, TensorRecord>();
  for (const [name, ref] of flattenTensors(stateDict, fail)) {
    tensors.set(name, materialize(name, ref, storageBytes, bytes.length, spend, fail));
  }
  if (tensors.size === 0) throw fail('the checkpoint holds no tensors');
  return tensors;
}

/**
 * Composer checkpoints keep the weights under `state.model`, Lightning-style ones under `state_dict`; plain
 * checkpoints are the dict itself.
 */
function selectStateDict(root: PickleValue): PyDict | undefined {
  if (!(root instanceof PyDict)) return undefined;
  const state = root.map.get('state');
  if (state instanceof PyDict) {
    const model = state.map.get('model');
    if (model instanceof PyDict) return model;
  }
  const stateDict = root.map.get('state_dict');
  if (stateDict instanceof PyDict && ![...root.map.values()].some((v) => v instanceof TensorRef)) return stateDict;
  return root;
}

function flattenTensors(root: PyDict, fail: (p: string) => Error): [string, TensorRef][] {
  const out: [string, TensorRef][] = [];
  const seen = new Set<PyDict>();
  const names = new Set<string>();
  const walk = (dict: PyDict, prefix: string, depth: number): void => {
    if (depth > 32) throw fail('nested dicts deeper than 32 levels');
    if (seen.has(dict)) return; // a dict reachable twice (or a cycle): read it once
    seen.add(dict);
    for (const [key, value] of dict.map) {
      if (typeof key !== 'string' && typeof key !== 'number') continue;
      const name = prefix + String(key);
      if (value instanceof TensorRef) {
        if (names.has(name)) throw fail(`tensor name ${quote(name)} appears twice after flattening nested dicts`);
        names.add(name);
        out.push([name, value]);
      }
      else if (value instanceof PyDict) walk(value, `${name}.`, depth + 1);
    }
  };
  walk(root, '', 0);
  return out;
}

/** Cuts one tensor out of its storage, checking every index against the storage first. */
function materialize(
  name: string,
  ref: TensorRef,
  storageBytes: (key: string) => Uint8Array,
  fileSize: number,
  spend: (n: number, what: string) => void,
  fail: (p: string) => Error,
): TensorRecord {
  const who = `tensor ${quote(name)}`;
  const { dtype, key, numel: declared } = ref.storage;
  const elementBytes = DTYPE_INFO[dtype].bytes;
  const { size, stride, storageOffset } = ref;
  if (size.length > 64) throw fail(`${who} has ${size.length} dims (at most 64 allowed)`);
  if (size.some((d) => d < 0) || stride.some((s) => s < 0) || storageOffset < 0) {
    throw fail(`${who} has a negative size, stride or storage offset`);
  }
  const count = shapeSize(size);
  if (!Number.isSafeInteger(count) || count * elementBytes > fileSize) {
    throw fail(`${who} of shape [${size.join(', ')}] would need more bytes than the file has (${fileSize})`);
  }
  const data = storageBytes(key);
  const available = Math.floor(data.length / elementBytes);
  if (declared > available) {
    throw fail(`storage ${quote(key)} declares ${declared} ${dtype} elements but its entry holds ${available}`);
  }
  if (count > 0) {
    let last = storageOffset;
    for (let i = 0; i < size.length; i++) last += (size[i] - 1) * stride[i];
    if (last >= declared) throw fail(`${who} reaches element ${last} of storage ${quote(key)}, which has ${declared}`);
  }
  const shape = size.slice();
  let contiguous = true;
  for (let i = size.length - 1, expected = 1; i >= 0; i--) {
    if (size[i] !== 1 && stride[i] !== expected) contiguous = false;
    expected *= size[i];
  }
  if (contiguous || count === 0) {
    return { dtype, shape, data: viewOrCopy(data, storageOffset * elementBytes, dtype, count) };
  }
  // Non-contiguous: gather element by element into a row-major copy.
  spend(count * elementBytes, who);
  const source = viewOrCopy(data, 0, dtype, declared) as unknown as ArrayLike<number | bigint> & { [i: number]: number | bigint };
  const out = new DTYPE_INFO[dtype].ctor(count) as unknown as { [i: number]: number | bigint };
  const index = new Array<number>(size.length).fill(0);
  let at = storageOffset;
  for (let i = 0; i < count; i++) {
    out[i] = source[at];
    for (let d = size.length - 1; d >= 0; d--) {
      index[d]++;
      at += stride[d];
      if (index[d] < size[d]) break;
      at -= stride[d] * size[d];
      index[d] = 0;
    }
  }
  return { dtype, shape, data: out as unknown as TensorData };
}

