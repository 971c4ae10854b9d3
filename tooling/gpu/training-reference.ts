// CPU reference of the M2-BERT-base training check (tooling/gpu/training-check.ts): runs the seeded model's Adam steps
// on a CPU backend and writes the losses as a JSON fixture that the H200 run (entry.ts --train-only) compares its
// webgpu losses to. Run it here, one thread, in the background, from its bundle (tooling/gpu is no package: its bare
// imports resolve only through build.mjs):
//
//   node tooling/gpu/build.mjs .device && nice -n 10 node .device/training-reference.mjs \
//     --backend cpu --out tooling/gpu/fixtures/training-reference-cpu.json
//
// (for wasm, M2_TFJS_WASM_DIR must name the folder of tfjs-backend-wasm's .wasm files).
//
// Options: --backend cpu | wasm (wasm runs 1 thread unless --threads), --length (2048), --steps (3),
// --weight-seed (1), --batch-seed (2), --optimizer adam | sgd (adam), --learning-rate (1e-3);
// --last-loss-only: the last step computes only its loss (no backward pass: same losses, less CPU time);
// --gradient-checkpointing: each encoder layer runs again in the backward pass (M2Bert's gradientCheckpointing: same
// losses; the tape keeps 12 layer inputs instead of every activation, what lets L = 2048 fit in 23 GB);
// --profile: one step under tf.profile, time per kernel (no fixture).
// The fixture is written after every step, so a run cut short keeps its steps.
import { execSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu'; // the seeded weights are built on cpu
import { setupBackend } from '@monarch-mixer/monarch-core';
import {
  DEFAULT_TRAINING_SETUP, modelWeights, modelWithWeights, optimizerLabel, runTrainingSteps, seededWeights, trainingBatch, weightDigest,
} from './training-check.js';
import type { TrainingSetup } from './training-check.js';

function argument(name: string): string | undefined {
  const index = process.argv.indexOf(name);
  return index < 0 ? undefined : process.argv[index + 1];
}

const backend = argument('--backend') ?? 'cpu';
if (backend !== 'cpu' && backend !== 'wasm') throw new Error(`training-reference: --backend must be cpu or wasm, got ${backend}`);
const out = argument('--out') ?? `tooling/gpu/fixtures/training-reference-${backend}.json`;
const setup: TrainingSetup = {
  length: Number(argument('--length') ?? DEFAULT_TRAINING_SETUP.length),
  steps: Number(argument('--steps') ?? DEFAULT_TRAINING_SETUP.steps),
  weightSeed: Number(argument('--weight-seed') ?? DEFAULT_TRAINING_SETUP.weightSeed),
  batchSeed: Number(argument('--batch-seed') ?? DEFAULT_TRAINING_SETUP.batchSeed),
  learningRate: Number(argument('--learning-rate') ?? DEFAULT_TRAINING_SETUP.learningRate),
  optimizer: (argument('--optimizer') ?? 'adam') as 'adam' | 'sgd',
};
if (setup.optimizer !== 'adam' && setup.optimizer !== 'sgd') throw new Error(`training-reference: --optimizer must be adam or sgd, got ${setup.optimizer}`);

const info = await setupBackend(backend, backend === 'wasm' ? { threads: Number(argument('--threads') ?? 1) } : {});
const gitCommit = execSync('git rev-parse HEAD', { encoding: 'utf8' }).trim();
const gitDirty = execSync('git status --porcelain -- packages tooling/gpu', { encoding: 'utf8' }).trim() !== '';
const started = Date.now();
const weights = await seededWeights(setup.length, setup.weightSeed);
const digest = weightDigest(weights);
const model = modelWithWeights(setup.length, weights);
weights.clear();
const modelDigest = weightDigest(await modelWeights(model));
if (modelDigest !== digest) throw new Error(`training-reference: the ${backend} model's weights differ from the seeded ones (${modelDigest} vs ${digest})`);
const batch = trainingBatch(setup.length, setup.batchSeed);
const fixture = {
  what: 'M2-BERT-base (80M, MLM head, no dropout) training losses, batch 1, from seeded weights (tooling/gpu/training-check.ts)',
  command: `node tooling/gpu/build.mjs .device && nice -n 10 node .device/training-reference.mjs ${process.argv.slice(2).join(' ')}`,
  backend: info.description,
  ...(backend === 'cpu' ? { kernelNote: 'tfjs-backend-cpu UnsortedSegmentSum replaced by a one-pass loop (monarch-core registerCpuKernels, run by setupBackend)' } : {}),
  gitCommit,
  gitDirty,
  date: new Date().toISOString(),
  node: process.version,
  setup,
  optimizer: optimizerLabel(setup),
  labelled: batch.labels[0]!.filter((label) => label > 0).length,
  weightDigest: digest,
  lastLossOnly: process.argv.includes('--last-loss-only'),
  gradientCheckpointing: process.argv.includes('--gradient-checkpointing'),
  losses: [] as number[],
  gradientNorms: [] as number[],
  msPerStep: [] as number[],
  finished: false,
};
const save = () => {
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(fixture, null, 2)}\n`);
};
if (process.argv.includes('--profile')) {
  // Where a step's time goes on this backend: one step under tf.profile, kernels summed by name.
  const profile = await tf.profile(async () => {
    await runTrainingSteps(model, { ...setup, steps: 1 });
  });
  const byKernel = new Map<string, { count: number; ms: number }>();
  for (const kernel of profile.kernels) {
    const entry = byKernel.get(kernel.name) ?? { count: 0, ms: 0 };
    entry.count += 1;
    entry.ms += Number(await kernel.kernelTimeMs) || 0;
    byKernel.set(kernel.name, entry);
  }
  for (const [name, { count, ms }] of [...byKernel.entries()].sort((a, b) => b[1].ms - a[1].ms).slice(0, 20)) {
    console.log(`${name.padEnd(28)} ${String(count).padStart(6)}× ${(ms / 1000).toFixed(2).padStart(8)} s`);
  }
  process.exit(0);
}
save();
console.log(`${info.description}: weights ${digest.slice(0, 16)}…, ${fixture.labelled} labelled positions, built in ${((Date.now() - started) / 1000).toFixed(1)} s`);
console.log(`model on ${backend}: ${(tf.memory().numBytes / 2 ** 20).toFixed(0)} MiB in ${tf.memory().numTensors} tensors`);
await runTrainingSteps(model, setup, (step, record) => {
  fixture.losses.push(record.loss);
  fixture.msPerStep.push(Math.round(record.ms));
  if (record.gradientNorm !== undefined) fixture.gradientNorms.push(record.gradientNorm);
  save();
  console.log(`step ${step + 1}: loss ${record.loss.toFixed(6)}${record.gradientNorm === undefined ? '' : `, ‖g‖ ${record.gradientNorm.toFixed(4)}`} (${(record.ms / 1000).toFixed(1)} s, ${(tf.memory().numBytes / 2 ** 20).toFixed(0)} MiB in ${tf.memory().numTensors} tensors)`);
}, { lastLossOnly: process.argv.includes('--last-loss-only'), gradientCheckpointing: process.argv.includes('--gradient-checkpointing') }).catch((error: Error) => {
  console.log(`failed with ${(tf.memory().numBytes / 2 ** 20).toFixed(0)} MiB in ${tf.memory().numTensors} tensors allocated`);
  throw error;
});
fixture.finished = true;
save();
model.dispose();
