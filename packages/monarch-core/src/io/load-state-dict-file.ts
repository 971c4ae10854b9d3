/**
 * Node-only: loads a checkpoint file of either format, chosen by its first bytes (not its name).
 * `node:fs` is imported lazily so that browser bundles of monarch-core do not pull it in.
 */
import { M2Error } from '../errors.js';
import { fileError } from './file-error.js';
import { readSafetensors } from './safetensors.js';
import type { TensorRecord } from './tensor-record.js';
import { readTorchStateDict } from './torch-state-dict.js';

/**
 * Reads the whole file at `path` (Node) into one Uint8Array (files up to the typed-array limit, 4 GiB on 64-bit
 * Node 20, not just fs.readFile's 2 GiB), failing with a one-line FileFormatError for anything unreadable.
 * @internal
 */
export async function readWholeFile(path: string): Promise<Uint8Array> {
  const { open } = await import('node:fs/promises');
  const { constants } = await import('node:buffer');
  const why: Record<string, string> = {
    ENOENT: 'file not found',
    EISDIR: 'is a directory, expected a file',
    EACCES: 'permission denied',
    EPERM: 'permission denied',
  };
  const failWith = (e: unknown) => {
    const code = (e as NodeJS.ErrnoException).code;
    return fileError(path, why[code ?? ''] ?? `cannot read (${code ?? (e as Error).message})`);
  };
  let handle: import('node:fs/promises').FileHandle;
  try {
    handle = await open(path, 'r');
  } catch (e) {
    throw failWith(e);
  }
  try {
    const stat = await handle.stat();
    if (stat.isDirectory()) throw fileError(path, why.EISDIR);
    if (stat.size > constants.MAX_LENGTH) {
      throw fileError(path, `file is ${stat.size} bytes, more than one buffer can hold (${constants.MAX_LENGTH}); split it into shards`);
    }
    const bytes = new Uint8Array(stat.size);
    let at = 0;
    while (at < bytes.length) {
      const { bytesRead } = await handle.read(bytes, at, Math.min(bytes.length - at, 1 << 30), at);
      if (bytesRead === 0) break;
      at += bytesRead;
    }
    if (at !== bytes.length) throw fileError(path, `file shrank while it was read (${at} of ${bytes.length} bytes)`);
    return bytes;
  } catch (e) {
    throw M2Error.isInstance(e) ? e : failWith(e);
  } finally {
    await handle.close().catch(() => undefined);
  }
}

/**
 * Loads a state dict from a `.safetensors` file or a PyTorch zip checkpoint (`pytorch_model.bin`, `.pt`,
 * `.pth`), detected by magic bytes: `PK\x03\x04` → PyTorch zip, an 8-byte length followed by `{` → safetensors.
 *
 * Shapes: each record's data has product(shape) elements.
 * @param path - File path.
 * @returns Name → record (see {@link readSafetensors} / {@link readTorchStateDict} for the details).
 * @throws FileFormatError (one line, naming the file) if the file is missing, unreadable, truncated, in neither
 *   format (a Git LFS pointer, a legacy pre-1.6 PyTorch pickle, HTML, …) or fails the reader's checks.
 * @example
 * const weights = await loadStateDictFile('m2-bert-80M/pytorch_model.bin');
 * weights.size; // → number of tensors
 */
export async function loadStateDictFile(path: string): Promise<Map<string, TensorRecord>> {
  const bytes = await readWholeFile(path);
  const kind = detectCheckpointFormat(bytes, path);
  return kind === 'torch' ? readTorchStateDict(bytes, { file: path }) : readSafetensors(bytes, { file: path }).tensors;
}

/**
 * Tells a PyTorch zip checkpoint from a safetensors file by their first bytes.
 * @param bytes - The file (or at least its first 9 bytes).
 * @param file - Name used in error messages.
 * @returns `'torch'` or `'safetensors'`.
 * @throws FileFormatError for empty or truncated files and files in neither format.
 * @example
 * detectCheckpointFormat(new Uint8Array([0x50, 0x4b, 3, 4, 0, 0, 0, 0, 0]), 'x.bin'); // → 'torch'
 */
export function detectCheckpointFormat(bytes: Uint8Array, file: string): 'torch' | 'safetensors' {
  if (bytes.length === 0) throw fileError(file, 'file is empty');
  if (bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 0x03 && bytes[3] === 0x04) return 'torch';
  if (bytes.length >= 9 && bytes[8] === 0x7b) return 'safetensors';
  const head = new TextDecoder('latin1').decode(bytes.subarray(0, 64));
  if (head.startsWith('version https://git-lfs')) {
    throw fileError(file, 'is a Git LFS pointer, not the weights; fetch the real file with `git lfs pull`');
  }
  if (bytes[0] === 0x80 && bytes.length > 1 && bytes[1] <= 5) {
    throw fileError(file, 'is a legacy (pre-1.6, non-zip) PyTorch pickle, which is not supported; re-save it with a recent torch.save or convert it to safetensors');
  }
  if (bytes.length < 9) throw fileError(file, `file is ${bytes.length} bytes, too short to be a checkpoint (truncated?)`);
  const hex = Array.from(bytes.subarray(0, 8), (b) => b.toString(16).padStart(2, '0')).join(' ');
  throw fileError(file, `is neither safetensors (8-byte header length, then '{') nor a PyTorch zip checkpoint ('PK\\x03\\x04'); it starts with ${hex}`);
}
