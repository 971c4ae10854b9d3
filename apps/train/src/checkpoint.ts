// Training checkpoints as folders, written so that a crash at any moment leaves either the previous complete
// checkpoint or the new complete one, never a half-written one:
//
//   OUT/ckpt.tmp-<pid>-<step>/   written file by file, each fsync'ed, trainer-state.json last
//   OUT/step-000040/             the same folder after one atomic rename
//   OUT/latest                   "step-000040", replaced atomically (temp file + rename) after the rename
//
// A checkpoint folder holds config.json + model.safetensors (loadable by the model packages),
// optimizer.safetensors (AdamW m and v) and trainer-state.json (step, RNG state, data position, losses).
import * as tf from '@tensorflow/tfjs-core';
import { mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { FileFormatError, readSafetensors, removeAtomicTemporaries, toFloat32, writeFileAtomic, writeSafetensors } from '@monarch-mixer/monarch-core';
import type { TensorRecord } from '@monarch-mixer/monarch-core';
import type { AdamWState } from './adamw.js';

/** Everything besides tensors that a resumed run needs, stored as `trainer-state.json`. */
export interface TrainerState {
  /** File format version (1). */
  format: 1;
  /** Task name (`gpt`, `bert-mlm`, `classify`, `vision`). */
  task: string;
  /** Optimiser steps completed. */
  step: number;
  /** State of the trainer's {@link TrainRng} after `step`. */
  rngState: number;
  /** The task's data position (JSON), if it keeps one. */
  dataState: unknown;
  /** Training loss of every step from step 1. */
  losses: number[];
  /** Evaluation results so far. */
  evals: Array<{ step: number } & Record<string, number>>;
  /** Training units (tokens or samples) seen so far. */
  unitsSeen: number;
  /** Wall-clock seconds trained so far. */
  seconds: number;
  /** The options the run was started with (the command re-creates the task from them on resume). */
  runOptions: Record<string, unknown>;
}

/** A loaded checkpoint: where it is, its state, and its tensors. */
export interface LoadedCheckpoint {
  /** The checkpoint folder. */
  dir: string;
  /** The run folder that holds it. */
  runDir: string;
  /** Parsed `trainer-state.json`. */
  state: TrainerState;
}

const STEP_DIR = /^step-(\d+)$/;

/** Folder name of the checkpoint of `step`, e.g. `step-000040`. */
export function checkpointName(step: number): string {
  return `step-${String(step).padStart(6, '0')}`;
}

async function writeDurable(path: string, bytes: Uint8Array): Promise<void> {
  const handle = await open(path, 'w');
  try {
    await handle.writeFile(bytes);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function syncDir(path: string): Promise<void> {
  try {
    const handle = await open(path, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    // Some filesystems refuse fsync on directories; the rename is still atomic.
  }
}

async function recordsOf(tensors: Map<string, tf.Tensor>, prefix = ''): Promise<Record<string, TensorRecord>> {
  const records: Record<string, TensorRecord> = {};
  for (const [name, tensor] of tensors) {
    records[prefix + name] = { dtype: 'F32', shape: [...tensor.shape], data: (await tensor.data()) as Float32Array };
  }
  return records;
}

/** What {@link saveCheckpoint} writes. */
export interface CheckpointContents {
  /** Contents of `config.json` (the model package's format). */
  modelConfig: Record<string, unknown>;
  /** Model weights by name (written to `model.safetensors`). */
  weights: Map<string, tf.Tensor>;
  /** Writes config.json + model.safetensors itself instead (the model package's own format). */
  saveModel?: (dir: string) => Promise<void>;
  /** Optimiser state (written to `optimizer.safetensors`). */
  optimizer: AdamWState;
  /** Trainer state (written to `trainer-state.json`, last). */
  state: TrainerState;
}

/**
 * Writes a checkpoint folder atomically and points `latest` at it; then deletes all but the newest `keep`.
 * @param runDir - The run's output folder (must exist and be locked by the caller).
 * @returns The checkpoint folder.
 */
export async function saveCheckpoint(runDir: string, contents: CheckpointContents, keep = 3): Promise<string> {
  const step = contents.state.step;
  const name = checkpointName(step);
  const tmp = join(runDir, `ckpt.tmp-${process.pid}-${step}`);
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp);
  const meta = { format: 'pt', task: contents.state.task, step: String(step) };
  if (contents.saveModel) {
    await contents.saveModel(tmp);
  } else {
    await writeDurable(join(tmp, 'model.safetensors'), writeSafetensors(await recordsOf(contents.weights), meta));
    await writeDurable(join(tmp, 'config.json'), new TextEncoder().encode(`${JSON.stringify(contents.modelConfig, null, 2)}\n`));
  }
  const moments = {
    ...(await recordsOf(contents.optimizer.firstMoments, 'exp_avg.')),
    ...(await recordsOf(contents.optimizer.secondMoments, 'exp_avg_sq.')),
  };
  await writeDurable(join(tmp, 'optimizer.safetensors'), writeSafetensors(moments, { step: String(contents.optimizer.step) }));
  await writeDurable(join(tmp, 'trainer-state.json'), new TextEncoder().encode(JSON.stringify(contents.state)));
  await syncDir(tmp);
  const final = join(runDir, name);
  if (await exists(final)) {
    const old = join(runDir, `ckpt.tmp-old-${process.pid}-${step}`);
    await rename(final, old);
    await rename(tmp, final);
    await rm(old, { recursive: true, force: true });
  } else {
    await rename(tmp, final);
  }
  await syncDir(runDir);
  await writeFileAtomic(join(runDir, 'latest'), new TextEncoder().encode(`${name}\n`));
  await pruneCheckpoints(runDir, keep);
  return final;
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Complete checkpoint folders of a run, oldest first. */
export async function listCheckpoints(runDir: string): Promise<Array<{ step: number; dir: string }>> {
  let names: string[];
  try {
    names = await readdir(runDir);
  } catch {
    return [];
  }
  const found: Array<{ step: number; dir: string }> = [];
  for (const name of names) {
    const match = STEP_DIR.exec(name);
    if (match && (await exists(join(runDir, name, 'trainer-state.json')))) found.push({ step: Number(match[1]), dir: join(runDir, name) });
  }
  return found.sort((a, b) => a.step - b.step);
}

async function pruneCheckpoints(runDir: string, keep: number): Promise<void> {
  const all = await listCheckpoints(runDir);
  for (const { dir } of all.slice(0, Math.max(0, all.length - keep))) await rm(dir, { recursive: true, force: true });
}

const TEMP_DIR = /^ckpt\.tmp-(?:old-)?\d+-\d+$/;
const REPLACED_DIR = /^ckpt\.tmp-old-\d+-(\d+)$/;

/**
 * Cleans up after a run that was killed while writing (call while holding the run's lock, before anything else
 * touches the folder). A kill can leave:
 * - `ckpt.tmp-<pid>-<step>/`: a checkpoint not yet renamed into place (possibly half-written): deleted;
 * - `ckpt.tmp-old-<pid>-<step>/`: a complete checkpoint moved aside to be replaced by a new one of the same step
 *   (a run resumed from an older checkpoint). If the kill came before the new one was renamed into place, the old
 *   one is the only copy of that step: it is moved back to `step-<step>/`; otherwise it is deleted;
 * - `.latest.<pid>.<random>.tmp`, `.metrics.jsonl.<pid>.<random>.tmp`: monarch-core `writeFileAtomic`
 *   temporaries of dead processes: deleted.
 *
 * @param runDir - The run folder.
 * @returns The names removed and the checkpoint folders restored.
 */
export async function removeStaleTemporaries(runDir: string): Promise<{ removed: string[]; restored: string[] }> {
  let names: string[];
  try {
    names = await readdir(runDir);
  } catch {
    return { removed: [], restored: [] };
  }
  const removed: string[] = [];
  const restored: string[] = [];
  for (const name of names.sort()) {
    const replaced = REPLACED_DIR.exec(name);
    if (replaced) {
      const final = checkpointName(Number(replaced[1]));
      if (!(await exists(join(runDir, final))) && (await exists(join(runDir, name, 'trainer-state.json')))) {
        await rename(join(runDir, name), join(runDir, final));
        restored.push(final);
        continue;
      }
    }
    if (TEMP_DIR.test(name)) {
      await rm(join(runDir, name), { recursive: true, force: true });
      removed.push(name);
    }
  }
  removed.push(...(await removeAtomicTemporaries(runDir)));
  if (restored.length) await syncDir(runDir);
  return { removed, restored };
}

/**
 * Finds the checkpoint to resume from: `dir` itself if it is a checkpoint folder, else the folder named by
 * `dir/latest`, else the newest complete `step-*` folder in `dir`.
 * @throws FileFormatError (one line) when there is none or its state file is unreadable.
 */
export async function findCheckpoint(dir: string): Promise<LoadedCheckpoint> {
  let checkpointDir: string | undefined;
  if (await exists(join(dir, 'trainer-state.json'))) checkpointDir = dir;
  if (!checkpointDir) {
    try {
      const name = (await readFile(join(dir, 'latest'), 'utf8')).trim();
      if (STEP_DIR.test(name) && (await exists(join(dir, name, 'trainer-state.json')))) checkpointDir = join(dir, name);
    } catch {
      // no pointer: fall back to scanning
    }
  }
  if (!checkpointDir) checkpointDir = (await listCheckpoints(dir)).at(-1)?.dir;
  if (!checkpointDir) {
    throw new FileFormatError(`--resume ${dir}: no complete checkpoint found (expected ${dir}/step-NNNNNN/trainer-state.json).`, {
      parameter: '--resume',
      value: dir,
    });
  }
  const statePath = join(checkpointDir, 'trainer-state.json');
  let state: TrainerState;
  try {
    state = JSON.parse(await readFile(statePath, 'utf8')) as TrainerState;
  } catch (error) {
    throw new FileFormatError(`${statePath}: cannot read the trainer state (${(error as Error).message}).`, { parameter: statePath });
  }
  if (state.format !== 1 || !Number.isInteger(state.step) || !Array.isArray(state.losses)) {
    throw new FileFormatError(`${statePath}: not a trainer state of format 1.`, { parameter: statePath });
  }
  const runDir = STEP_DIR.test(basename(checkpointDir)) ? dirname(checkpointDir) : checkpointDir;
  return { dir: checkpointDir, runDir, state };
}

/**
 * The model folder that an `--init` path names: a model folder itself (it has `config.json`), a run folder (its
 * newest checkpoint, as `--resume` finds it), or a run's `latest` pointer file (the checkpoint it names).
 *
 * @param path - What the user gave.
 * @returns The folder to load; `path` unchanged when it is none of these (the model loader then says what is missing).
 * @throws FileFormatError (one line) when a run folder's newest checkpoint has an unreadable trainer state.
 * @example
 * await resolveModelFolder('runs/mlm/latest'); // → 'runs/mlm/step-000500'
 */
export async function resolveModelFolder(path: string): Promise<string> {
  if (await exists(join(path, 'config.json'))) return path;
  if (basename(path) === 'latest' && (await stat(path).then((s) => s.isFile(), () => false))) {
    const name = (await readFile(path, 'utf8')).trim();
    if (STEP_DIR.test(name)) return join(dirname(path), name);
  }
  if ((await exists(join(path, 'latest'))) || (await listCheckpoints(path)).length > 0) return (await findCheckpoint(path)).dir;
  return path;
}

/** Reads a safetensors file into float32 tensors by name. @throws FileFormatError when missing or malformed. */
export async function readTensorFile(path: string): Promise<Map<string, tf.Tensor>> {
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await readFile(path));
  } catch {
    throw new FileFormatError(`${path}: file not found.`, { parameter: path });
  }
  const { tensors } = readSafetensors(bytes, { file: path });
  const out = new Map<string, tf.Tensor>();
  for (const [name, record] of tensors) out.set(name, tf.tensor(toFloat32(record), record.shape, 'float32'));
  return out;
}

/**
 * Assigns the tensors of `dir/model.safetensors` to variables of the same name.
 * @param options - `allowMissing`: variables absent from the file keep their values (fine-tuning from a
 *   pretrained body, a new head); `allowUnexpected`: ignore tensors with no variable (a dropped MLM head).
 * @returns Names that were loaded and names left at their initial values.
 * @throws FileFormatError (one line) on missing, unexpected or misshapen tensors not allowed by the options.
 */
export async function loadWeightsInto(
  dir: string,
  variables: Map<string, tf.Variable>,
  options: { allowMissing?: boolean; allowUnexpected?: boolean } = {},
): Promise<{ loaded: string[]; missing: string[] }> {
  const path = join(dir, 'model.safetensors');
  const tensors = await readTensorFile(path);
  try {
    const missing = [...variables.keys()].filter((n) => !tensors.has(n));
    const unexpected = [...tensors.keys()].filter((n) => !variables.has(n));
    const misshapen = [...variables].filter(([n, v]) => tensors.has(n) && tensors.get(n)!.shape.join() !== v.shape.join());
    const problems = [
      missing.length && !options.allowMissing ? `missing ${short(missing)}` : '',
      unexpected.length && !options.allowUnexpected ? `unexpected ${short(unexpected)}` : '',
      misshapen.length ? `misshapen ${short(misshapen.map(([n, v]) => `${n} [${tensors.get(n)!.shape}] (expected [${v.shape}])`))}` : '',
    ].filter(Boolean);
    if (problems.length) throw new FileFormatError(`${path}: ${problems.join('; ')}.`, { parameter: path });
    const loaded: string[] = [];
    for (const [name, variable] of variables) {
      const value = tensors.get(name);
      if (value) {
        variable.assign(value);
        loaded.push(name);
      }
    }
    return { loaded, missing };
  } finally {
    for (const t of tensors.values()) t.dispose();
  }
}

function short(names: string[]): string {
  return names.length > 6 ? `${names.slice(0, 6).join(', ')} and ${names.length - 6} more` : names.join(', ');
}

/** Reads `dir/optimizer.safetensors` back into an {@link AdamWState} (caller disposes the tensors). */
export async function readOptimizerState(dir: string, step: number): Promise<AdamWState> {
  const tensors = await readTensorFile(join(dir, 'optimizer.safetensors'));
  const firstMoments = new Map<string, tf.Tensor>();
  const secondMoments = new Map<string, tf.Tensor>();
  for (const [name, tensor] of tensors) {
    if (name.startsWith('exp_avg_sq.')) secondMoments.set(name.slice('exp_avg_sq.'.length), tensor);
    else if (name.startsWith('exp_avg.')) firstMoments.set(name.slice('exp_avg.'.length), tensor);
    else tensor.dispose();
  }
  return { step, firstMoments, secondMoments };
}
