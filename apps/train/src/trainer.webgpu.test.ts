// The trainer on webgpu (SwiftShader, a CPU Vulkan driver): a device error during a step's gradients (WebGPU reports
// out-of-memory and validation errors asynchronously, and the step's loss would come back as 0 or garbage) stops the
// run with one line naming the step, the error and a hint; nothing of that step is applied and the last good
// checkpoint stays as it was. Skipped, with the reason in the name, where SwiftShader is missing.
import * as tf from '@tensorflow/tfjs-core';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { M2Error, readSafetensors, toFloat32 } from '@monarch-mixer/monarch-core';
import { BERT_SPECIAL_IDS, M2Bert, savePretrained } from '@monarch-mixer/m2-bert';
import { describeWebGpu, swiftShaderWebGpu } from '../../../packages/monarch-core/test/webgpu-swiftshader.js';
import { runTraining } from './trainer.js';
import type { TrainTask } from './trainer.js';
import { createToyTask } from './toy-task.js';
import { createMlmTask, withSeededMathRandom } from './tasks/bert.js';
import { useTrainWorkspace } from '../test/helpers.js';

const gpu = await swiftShaderWebGpu();
const ws = useTrainWorkspace('m2-train-webgpu-');

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
    const outDir = join(ws.work, 'run');
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
      await tf.setBackend(ws.previousBackend);
    }
  }, 120_000);

  it('bert-mlm trains on webgpu with the cpu backend\'s losses and writes its checkpoint there (no synchronous read)', async () => {
    // One saved model, loaded on each backend: both runs start from the same weights.
    const init = join(ws.work, 'bert-init');
    await tf.setBackend('cpu');
    const saved = withSeededMathRandom(1, () => new M2Bert({ preset: 'tiny', vocabSize: 512, maxPositionEmbeddings: 16, longConvLMax: 16, hiddenDropout: 0 }));
    await savePretrained(saved, init);
    saved.dispose();
    const phrase = (k: number) => Array.from({ length: 12 }, (_, i) => 200 + ((k * 5 + i) % 40));
    const sequences = Array.from({ length: 16 }, (_, k) => Int32Array.from([BERT_SPECIAL_IDS.cls, ...phrase(k % 8), BERT_SPECIAL_IDS.sep, 201, 202]));
    const train = async (backend: string) => {
      await tf.setBackend(backend);
      // The task's own checkpoint hooks: m2-bert's savePretrained, HuggingFace layout, weights read asynchronously.
      const model = await M2Bert.fromPretrained(init);
      const task = createMlmTask(model, { batchSize: 2, train: sequences, validation: sequences.slice(0, 2) });
      try {
        const outDir = join(ws.work, `mlm-${backend}`);
        const result = await runTraining(task, {
          outDir, steps: 2, seed: 2, optimizer: { lr: 1e-3, weightDecay: 0 }, progress: false, runOptions: {}, warmupSteps: 1,
        });
        // The final checkpoint holds the trained weights exactly (read here asynchronously, on the run's backend).
        const saved = readSafetensors(new Uint8Array(readFileSync(join(outDir, 'step-000002', 'model.safetensors')))).tensors;
        const word = 'bert.embeddings.word_embeddings.weight';
        expect(Array.from(toFloat32(saved.get(word)!)), `${backend}: ${word}`).toEqual(Array.from(await model.namedWeights().get(word)!.data()));
        return { ...result, saved };
      } finally {
        task.dispose();
      }
    };
    try {
      const gpu = await train('webgpu');
      const cpu = await train('cpu');
      expect(gpu.losses).toHaveLength(2);
      // Step 1: the same weights, so the same loss to the webgpu kernels' float32 round-off (6.5e-5 of 6.18 on
      // SwiftShader). After one AdamW update the runs drift more:
      // Adam moves every weight by about lr whatever its gradient's size, so float noise in tiny gradients becomes
      // lr-sized differences (hence 1e-3 relative, still far below what a failed step's 0 or garbage would give).
      const relative = (a: number, b: number) => Math.abs(a - b) / Math.max(1, Math.abs(b));
      expect(relative(gpu.losses[0]!, cpu.losses[0]!)).toBeLessThan(1e-4);
      expect(relative(gpu.losses[1]!, cpu.losses[1]!)).toBeLessThan(1e-3);
      expect(relative(gpu.final.loss!, cpu.final.loss!)).toBeLessThan(1e-3);
      // The checkpoint written on webgpu: every tensor of the cpu run's, the same weights to ~2 lr (two AdamW steps).
      expect([...gpu.saved.keys()]).toEqual([...cpu.saved.keys()]);
      for (const [name, record] of cpu.saved) {
        if (record.dtype === 'I64') continue;
        const [a, b] = [toFloat32(gpu.saved.get(name)!), toFloat32(record)];
        let worst = 0;
        for (let i = 0; i < b.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
        expect(worst, name).toBeLessThan(5e-3);
      }
    } finally {
      await tf.setBackend(ws.previousBackend);
    }
  }, 120_000);
});
