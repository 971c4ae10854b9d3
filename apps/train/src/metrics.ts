// Run records: a JSONL metrics log (one line per step or evaluation) and SVG charts of the curves, drawn
// with vega-lite compiled to a vega view rendered headless (no browser, no canvas).
import { appendFile, readFile, writeFile } from 'node:fs/promises';
import * as vega from 'vega';
import * as vegaLite from 'vega-lite';
import { writeFileAtomic } from '@monarch-mixer/monarch-core';

/** One record of the metrics log. */
export interface MetricsRecord {
  /** `train` (one optimiser step) or `eval`. */
  kind: 'train' | 'eval';
  /** Optimiser step. */
  step: number;
  [key: string]: number | string;
}

/** Appends records to a JSONL file. */
export class MetricsLog {
  /** @param path - The `.jsonl` file (created on first write). */
  constructor(readonly path: string) {}

  /** Appends one record as a line. */
  async append(record: MetricsRecord): Promise<void> {
    await appendFile(this.path, `${JSON.stringify(record)}\n`);
  }

  /** Drops records after `step` (a resumed run re-does those steps). */
  async truncateAfter(step: number): Promise<void> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch {
      return;
    }
    const kept = text.split('\n').filter((line) => {
      if (!line.trim()) return false;
      try {
        return (JSON.parse(line) as MetricsRecord).step <= step;
      } catch {
        return false; // a line cut short by a kill
      }
    });
    await writeFileAtomic(this.path, new TextEncoder().encode(kept.map((l) => `${l}\n`).join('')));
  }
}

/** One curve of a chart. */
export interface CurveSeries {
  /** Legend label. */
  name: string;
  /** [step, value] points. */
  points: Array<[number, number]>;
}

/**
 * Renders curves as an SVG line chart (vega-lite → vega, headless).
 * @param series - The curves.
 * @param options - Title and axis labels.
 * @returns The SVG text.
 * @example
 * const svg = await renderCurvesSvg([{ name: 'train', points: [[1, 10], [2, 9]] }], { title: 'loss' });
 */
export async function renderCurvesSvg(
  series: CurveSeries[],
  options: { title: string; xTitle?: string; yTitle?: string; width?: number; height?: number },
): Promise<string> {
  const values = series.flatMap((s) => s.points.filter(([, y]) => Number.isFinite(y)).map(([x, y]) => ({ step: x, value: y, series: s.name })));
  const spec: vegaLite.TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: options.title,
    width: options.width ?? 560,
    height: options.height ?? 300,
    data: { values },
    mark: { type: 'line', point: values.length < 200 },
    encoding: {
      x: { field: 'step', type: 'quantitative', title: options.xTitle ?? 'step' },
      y: { field: 'value', type: 'quantitative', title: options.yTitle ?? 'loss (nats)', scale: { zero: false } },
      color: { field: 'series', type: 'nominal', title: null },
    },
  };
  const view = new vega.View(vega.parse(vegaLite.compile(spec).spec), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  return svg;
}

/** Writes {@link renderCurvesSvg} output to `path`. */
export async function writeCurvesSvg(path: string, series: CurveSeries[], options: { title: string; xTitle?: string; yTitle?: string }): Promise<void> {
  await writeFile(path, await renderCurvesSvg(series, options));
}

/** Exponential moving average of a curve (for readable training-loss plots). */
export function smooth(points: Array<[number, number]>, alpha = 0.1): Array<[number, number]> {
  let average: number | undefined;
  return points.map(([x, y]) => {
    average = average === undefined ? y : alpha * y + (1 - alpha) * average;
    return [x, average];
  });
}
