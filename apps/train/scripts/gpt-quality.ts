// Issue 4's quality comparison: M2-GPT vs the attention GPT of the same parameter count, trained on the same
// tokens (same seed, same data draws), validation loss curves in ONE plot plus a JSON summary.
//
// Run both trainings, then this script (it also takes the runs' metrics.jsonl while they are in progress):
//   pnpm m2 train gpt --model m2        --preset tiny --steps 80 --seq-len 64 --batch-size 8 --eval-every 10 --seed 7 --out runs/q-m2  --json runs/q-m2.json
//   pnpm m2 train gpt --model attention --preset tiny --steps 80 --seq-len 64 --batch-size 8 --eval-every 10 --seed 7 --out runs/q-att --json runs/q-att.json
//   node --conditions=@monarch-mixer/source --import tsx apps/train/scripts/gpt-quality.ts runs/q-m2.json runs/q-att.json bench/results/gpt-quality
import { readFile, writeFile } from 'node:fs/promises';
import { writeCurvesSvg } from '../src/metrics.js';

const [m2Path, attentionPath, outPrefix = 'bench/results/gpt-quality'] = process.argv.slice(2);
if (!m2Path || !attentionPath) {
  process.stderr.write('usage: gpt-quality.ts M2.json ATTENTION.json [OUT_PREFIX]\n');
  process.exit(2);
}
type Result = { steps: number; evals: Array<{ step: number; loss: number }>; losses: number[]; final: { loss: number }; throughput: number; seconds: number };
/** Reads a `--json` result, or a run's metrics.jsonl (for a run still in progress). */
async function load(path: string): Promise<Result> {
  const text = await readFile(path, 'utf8');
  if (!path.endsWith('.jsonl')) return JSON.parse(text) as Result;
  const records = text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { kind: string; step: number; loss: number; units?: number; seconds?: number });
  const train = records.filter((r) => r.kind === 'train');
  const evals = records.filter((r) => r.kind === 'eval').map(({ step, loss }) => ({ step, loss }));
  const seconds = train.at(-1)?.seconds ?? 0;
  return {
    steps: train.length, evals, losses: train.map((r) => r.loss), final: { loss: evals.at(-1)?.loss ?? NaN },
    throughput: train.reduce((n, r) => n + (r.units ?? 0), 0) / Math.max(seconds, 1e-9), seconds,
  };
}
const m2 = await load(m2Path);
const attention = await load(attentionPath);
const curve = (r: Result) => r.evals.map((e) => [e.step, e.loss] as [number, number]);
await writeCurvesSvg(`${outPrefix}.svg`, [
  { name: 'M2-GPT tiny (validation)', points: curve(m2) },
  { name: 'attention GPT, same parameter count (validation)', points: curve(attention) },
], { title: 'M2-GPT vs attention GPT: validation loss on held-out SOTU tokens', yTitle: 'validation loss (nats)' });
const gap = m2.final.loss - attention.final.loss;
const summary = {
  description: 'Same tokens (seed 7, identical data draws), same parameter count (6,965,888 vs 6,965,000), tiny preset, wasm backend.',
  m2: { finalValidationLoss: m2.final.loss, evals: m2.evals, tokensPerSecond: m2.throughput, seconds: m2.seconds },
  attention: { finalValidationLoss: attention.final.loss, evals: attention.evals, tokensPerSecond: attention.throughput, seconds: attention.seconds },
  m2MinusAttention: gap,
  claimHolds: gap <= 0.05,
};
await writeFile(`${outPrefix}.json`, `${JSON.stringify(summary, null, 2)}\n`);
process.stdout.write(`M2 ${m2.final.loss.toFixed(4)} vs attention ${attention.final.loss.toFixed(4)} nats (M2 − attention = ${gap.toFixed(4)}); wrote ${outPrefix}.svg/.json\n`);
