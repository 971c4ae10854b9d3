// Timing and reporting shared by every bench suite: warm runs, medians, synced reads, live-tensor checks,
// peak memory, and JSON / markdown / SVG output.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { InvalidArgumentError, resetWasmHeapPeak, wasmHeapUsage } from '@monarch-mixer/monarch-core';

/** One timed measurement. */
export interface Timing {
  /** Median wall time of the warm runs, in milliseconds. */
  medianMs: number;
  /** Every warm run, in milliseconds. */
  runsMs: number[];
  /** Peak bytes held by tfjs during the runs: on wasm the heap guard's high-water mark of every allocation (wasm-heap-guard.ts); elsewhere tf.memory() sampled after each run (before its outputs are freed). */
  peakBytes: number;
}

/** Options for {@link timeIt}. */
export interface TimeOptions {
  /** Untimed runs first (compiles shaders, packs weights). Default 1. */
  warmup?: number;
  /** Timed runs. Default 5. */
  repeats?: number;
  /** Stop repeating once this much time has been spent (ms), keeping at least 2 runs. Default 60 000. */
  budgetMs?: number;
}

/**
 * One run: milliseconds until its outputs are read back (asynchronous backends finish), and the peak tfjs bytes
 * during it (wasm: the heap guard's high-water mark, reset at the start; elsewhere sampled before the outputs are
 * freed); then the outputs are freed.
 */
async function timeOnce(run: () => tf.Tensor | tf.Tensor[]): Promise<{ ms: number; peakBytes: number }> {
  const wasm = tf.getBackend() === 'wasm' ? tf.backend() : null;
  resetWasmHeapPeak(wasm);
  const start = performance.now();
  const out = run();
  const outs = Array.isArray(out) ? out : [out];
  await Promise.all(outs.map((t) => t.data()));
  const ms = performance.now() - start;
  const memory = tf.memory() as { numBytes: number; numBytesInGPU?: number };
  const peakBytes = Math.max(wasmHeapUsage(wasm)?.peakBytes ?? 0, memory.numBytes, memory.numBytesInGPU ?? 0);
  tf.dispose(outs);
  return { ms, peakBytes };
}

/**
 * Times `run`, which must return the tensors it produced; they are read back (`await data()`) inside the timing,
 * so asynchronous backends are measured to completion, then disposed. Throws if live tensors grow.
 */
export async function timeIt(label: string, run: () => tf.Tensor | tf.Tensor[], options: TimeOptions = {}): Promise<Timing> {
  const { warmup = 1, repeats = 5, budgetMs = 60_000 } = options;
  for (let i = 0; i < warmup; i++) await timeOnce(run);
  const before = tf.memory().numTensors;
  const runsMs: number[] = [];
  let peakBytes = tf.memory().numBytes;
  const startAll = performance.now();
  for (let i = 0; i < repeats; i++) {
    const once = await timeOnce(run);
    runsMs.push(once.ms);
    peakBytes = Math.max(peakBytes, once.peakBytes);
    if (i >= 1 && performance.now() - startAll > budgetMs) break;
  }
  const leaked = tf.memory().numTensors - before;
  if (leaked > 0) throw new Error(`bench ${label}: ${leaked} tensors leaked per ${runsMs.length} runs`);
  return { medianMs: median(runsMs), runsMs, peakBytes };
}

/**
 * Times several runs INTERLEAVED (run 1 of each, then run 2 of each, …) so that load changes on a shared machine
 * hit every candidate alike; otherwise as {@link timeIt} (warm-up, read-back inside the timing, leak check).
 * A candidate whose run exceeded `budgetMs` is not repeated further.
 */
export async function timeInterleaved(runs: Array<{ label: string; run: () => tf.Tensor | tf.Tensor[] }>, options: TimeOptions = {}): Promise<Timing[]> {
  const { warmup = 1, repeats = 5, budgetMs = 60_000 } = options;
  for (const r of runs) for (let i = 0; i < warmup; i++) await timeOnce(r.run);
  const before = tf.memory().numTensors;
  const results = runs.map(() => ({ runsMs: [] as number[], peakBytes: tf.memory().numBytes }));
  for (let i = 0; i < repeats; i++) {
    for (const [k, r] of runs.entries()) {
      const res = results[k]!;
      if (i >= 1 && res.runsMs.some((ms) => ms > budgetMs)) continue;
      const once = await timeOnce(r.run);
      res.runsMs.push(once.ms);
      res.peakBytes = Math.max(res.peakBytes, once.peakBytes);
    }
  }
  const leaked = tf.memory().numTensors - before;
  if (leaked > 0) throw new Error(`bench ${runs.map((r) => r.label).join(' / ')}: ${leaked} tensors leaked`);
  return results.map((r) => ({ medianMs: median(r.runsMs), runsMs: r.runsMs, peakBytes: r.peakBytes }));
}

/** The median of a non-empty list. */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Parses a comma-separated list of positive integers (`--lengths 512,1024`). */
export function parseIntList(flag: string, text: string): number[] {
  const values = text.split(',').map((s) => Number(s.trim()));
  if (values.length === 0 || values.some((v) => !Number.isInteger(v) || v <= 0)) {
    throw new InvalidArgumentError(`${flag} must be a comma-separated list of positive integers, got "${text}"`, { parameter: flag, value: text });
  }
  return values;
}

/** Writes a file, creating its folder. */
export function writeOutput(path: string, text: string): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, text);
}

/** A markdown table of rows (columns = keys of the first row); numbers rounded for reading. */
export function markdownTable(rows: Array<Record<string, unknown>>): string {
  if (rows.length === 0) return '(no rows)\n';
  const columns = Object.keys(rows[0]);
  const cell = (v: unknown) => (v === null || v === undefined ? '–' : typeof v === 'number' ? formatNumber(v) : String(v));
  return [
    `| ${columns.join(' | ')} |`,
    `| ${columns.map(() => '---').join(' | ')} |`,
    ...rows.map((r) => `| ${columns.map((c) => cell(r[c])).join(' | ')} |`),
  ].join('\n') + '\n';
}

function formatNumber(v: number): string {
  if (Number.isInteger(v)) return String(v);
  const abs = Math.abs(v);
  return abs >= 100 ? v.toFixed(0) : abs >= 10 ? v.toFixed(1) : abs >= 1 ? v.toFixed(2) : v.toPrecision(3);
}

/** A line chart as SVG, rendered with vega-lite in Node (no canvas needed). */
export async function lineChartSvg(options: {
  title: string;
  rows: Array<Record<string, unknown>>;
  x: string;
  y: string;
  series: string;
  logX?: boolean;
  logY?: boolean;
  xTitle?: string;
  yTitle?: string;
  /** Grouped bars over a nominal x instead of lines over a quantitative x. */
  bars?: boolean;
}): Promise<string> {
  const vega = await import('vega');
  const vl = await import('vega-lite');
  const spec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: options.title,
    width: 520,
    height: 300,
    data: { values: options.rows.filter((r) => r[options.y] !== null && r[options.y] !== undefined) },
    mark: options.bars ? { type: 'bar' } : { type: 'line', point: true },
    encoding: {
      x: options.bars
        ? { field: options.x, type: 'nominal', title: options.xTitle ?? options.x }
        : { field: options.x, type: 'quantitative', title: options.xTitle ?? options.x, scale: options.logX ? { type: 'log', base: 2 } : {} },
      ...(options.bars ? { xOffset: { field: options.series, type: 'nominal' } } : {}),
      y: { field: options.y, type: 'quantitative', title: options.yTitle ?? options.y, scale: options.logY ? { type: 'log' } : {} },
      color: { field: options.series, type: 'nominal', title: null },
    },
  };
  const compiled = vl.compile(spec as never).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  return view.toSVG();
}

/** Turns wide rows ({L, a, b}) into long rows ({L, series, value}) for charts. */
export function toSeries(rows: Array<Record<string, unknown>>, x: string, columns: Record<string, string>): Array<Record<string, unknown>> {
  return rows.flatMap((r) => Object.entries(columns).map(([column, series]) => ({ [x]: r[x], series, value: r[column] ?? null })));
}
