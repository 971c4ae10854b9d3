// The trainer on webgpu (SwiftShader, a CPU Vulkan driver): a device error during a step's gradients (WebGPU reports
// out-of-memory and validation errors asynchronously, and the step's loss would come back as 0 or garbage) stops the
// run with one line naming the step, the error and a hint; nothing of that step is applied and the last good
// checkpoint stays as it was. Skipped, with the reason in the name, where SwiftShader is missing.
import * as tf from '@tensorflow/tfjs-core';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { M2Error, readSafetensors, toFloat32 } from '@monarch-mixer/monarch-core';
import { describeWebGpu, swiftShaderWebGpu } from '../../../packages/monarch-core/test/webgpu-swiftshader.js';
import { runTraining } from './trainer.js';
import type { TrainTask } from './trainer.js';
import { createToyTask } from './toy-task.js';

const gpu = await swiftShaderWebGpu();
let work: string;
let previousBackend = '';

beforeAll(async () => {
  previousBackend = tf.getBackend();
  work = await mkdtemp(join(tmpdir(), 'm2-train-webgpu-'));
});

afterAll(async () => {
  await tf.setBackend(previousBackend);
  await rm(work, { recursive: true, force: true });
});

/** Every file under `dir` (the run's lock aside) with its bytes, read synchronously (also from inside a step). */
function snapshot(dir: string): Map<string, string> {
  const files = new Map<string, string>();
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile() && entry.name !== '.m2.lock') files.set(join(entry.parentPath, entry.name), readFileSync(join(entry.parentPath, entry.name)).toString('base64'));
  }
  return files;
}

describeWebGpu(gpu, 'runTraining on webgpu (SwiftShader)', () => {
  it('a device validation error in step 3 stops the run in one line; step 3 is not applied and checkpoint 2 is untouched', async () => {
    await tf.setBackend('webgpu');
    const device = (tf.backend() as unknown as { device: GPUDevice }).device;
    const outDir = join(work, 'run');
    const toy = createToyTask();
    let calls = 0;
    let atFailure: Map<string, string> | undefined;
    const task: TrainTask = {
      ...toy,
      trainLoss(rng) {
        if (++calls === 3) {
          atFailure = snapshot(outDir); // step 2's checkpoint is complete: the trainer writes it before step 3
          // Mapping flags WebGPU forbids together: a validation error, reported asynchronously, not thrown.
          device.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.MAP_WRITE });
        }
        return toy.trainLoss(rng);
      },
    };
    const losses: number[] = [];
    const error = await runTraining(task, {
      outDir, steps: 5, seed: 3, optimizer: { lr: 0.05, weightDecay: 0.01 }, progress: false, runOptions: {}, warmupSteps: 1,
      checkpointEvery: 1, onStep: ({ loss }) => losses.push(loss),
    }).then(() => undefined, (e: unknown) => e);
    try {
      expect(M2Error.isInstance(error), String(error)).toBe(true);
      const message = (error as Error).message;
      expect(message).not.toContain('\n');
      expect(message).toMatch(/^the GPU reported an error in step 3: .+ \(the update was not applied; the last good checkpoint is .*step-000002\)\. /);
      expect(message).toMatch(/Hint: --gradient-checkpointing, a smaller --batch-size or a smaller --seq-len, then --resume /);
      // Steps 1 and 2 trained normally (real losses, not the zeros of a failed device).
      expect(losses).toHaveLength(2);
      for (const loss of losses) expect(loss).toBeGreaterThan(0.1);
      // The run folder is as step 2 left it, and the weights are step 2's: nothing of step 3 was applied.
      expect(snapshot(outDir)).toEqual(atFailure);
      expect(readFileSync(join(outDir, 'latest'), 'utf8').trim()).toBe('step-000002');
      const saved = readSafetensors(new Uint8Array(readFileSync(join(outDir, 'step-000002', 'model.safetensors')))).tensors;
      for (const [name, variable] of toy.parameters()) {
        expect(Array.from(await variable.data()), name).toEqual(Array.from(toFloat32(saved.get(name)!)));
      }
    } finally {
      toy.dispose();
      await tf.setBackend(previousBackend);
    }
  }, 120_000);
});
