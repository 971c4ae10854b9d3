// `m2 train gpt` and `m2 train vision` on webgpu (SwiftShader, a CPU Vulkan driver), run in this process: no step,
// evaluation, checkpoint or sample reads a tensor back synchronously (webgpu in Node has no synchronous read), and
// the losses are the cpu backend's for the same run. Skipped, with the reason in the name, where SwiftShader is missing.
import * as tf from '@tensorflow/tfjs-core';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { readSafetensors, toFloat32 } from '@monarch-mixer/monarch-core';
import { M2Gpt } from '@monarch-mixer/m2-gpt';
import { M2Vision } from '@monarch-mixer/m2-vision';
import { describeWebGpu, swiftShaderWebGpu } from '../../../packages/monarch-core/test/webgpu-swiftshader.js';
import { m2Train, useTrainWorkspace, writeMobyDickCorpus, writeNoisyImageFolder } from '../test/helpers.js';

const gpu = await swiftShaderWebGpu();
const ws = useTrainWorkspace('m2-train-commands-webgpu-');

/** Runs the command on cpu and on webgpu (2 steps, checkpoint at the end) and compares the losses. */
async function expectWebGpuRunMatchesCpu(command: string, args: string[]): Promise<{ gpuStdout: string }> {
  const run = async (backend: string) => {
    const out = join(ws.work, `${command}-${backend}`);
    const { stdout } = await m2Train([command, ...args, '--steps', '2', '--seed', '3', '--backend', backend, '--no-progress', '--out', out, '--json', `${out}.json`]);
    const metrics = (await readFile(join(out, 'metrics.jsonl'), 'utf8')).trim().split('\n').map((line) => JSON.parse(line) as { kind: string; gradNorm?: number });
    const gradNorms = metrics.filter((m) => m.kind === 'train').map((m) => m.gradNorm!);
    return { out, stdout, gradNorms, losses: JSON.parse(await readFile(`${out}.json`, 'utf8')).losses as number[] };
  };
  try {
    const onGpu = await run('webgpu');
    const onCpu = await run('cpu');
    expect(onGpu.losses).toHaveLength(2);
    // Step 1 from the same weights: the same loss to the webgpu kernels' float32 round-off. After one AdamW update
    // float noise in tiny gradients becomes lr-sized weight differences, hence 1e-3 (a failed step gives 0 or garbage).
    const relative = (a: number, b: number) => Math.abs(a - b) / Math.max(1, Math.abs(b));
    expect(relative(onGpu.losses[0]!, onCpu.losses[0]!), 'step 1').toBeLessThan(1e-4);
    expect(relative(onGpu.losses[1]!, onCpu.losses[1]!), 'step 2').toBeLessThan(1e-3);
    // The global gradient norm (the clip) of step 1 too: a sum over every gradient, which must not depend on how many
    // buffers one WGSL dispatch may bind (tf.addN over the 37 gradients of the gpt model was 3.4% off on webgpu). Float
    // round-off alone gave 1.1e-4 … 1.3e-3 for the vision model (its M2 layers' initial values are not seeded, so each
    // process trains another model: measured 1.7e-4, 2.1e-4, 4.8e-4, 1.3e-3), hence 1e-2.
    expect(onGpu.gradNorms).toHaveLength(2);
    expect(Math.abs(onGpu.gradNorms[0]! - onCpu.gradNorms[0]!) / onCpu.gradNorms[0]!, 'gradient norm of step 1').toBeLessThan(1e-2);
    // The checkpoint written on webgpu holds the trained weights: close to the cpu run's, far from the initial ones.
    const weights = async (dir: string) => readSafetensors(new Uint8Array(await readFile(join(dir, 'step-000002', 'model.safetensors')))).tensors;
    const [gpuWeights, cpuWeights] = [await weights(onGpu.out), await weights(onCpu.out)];
    expect([...gpuWeights.keys()].sort()).toEqual([...cpuWeights.keys()].sort());
    // Two AdamW steps move a weight by about 2 lr whatever its gradient: the runs' weights agree to ~lr, where a
    // checkpoint of zeros or garbage would be off by the weights' own size (LayerNorm gains are 1).
    for (const [name, record] of cpuWeights) {
      const [a, b] = [toFloat32(gpuWeights.get(name)!), toFloat32(record)];
      let worst = 0;
      for (let i = 0; i < b.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
      expect(worst, name).toBeLessThan(1e-2);
    }
    return { gpuStdout: onGpu.stdout };
  } finally {
    await tf.setBackend(ws.previousBackend);
  }
}

describeWebGpu(gpu, 'm2 train gpt / vision on webgpu (SwiftShader)', () => {
  it('gpt: 2 steps, evaluation, checkpoint and sample on webgpu, with the cpu losses', async () => {
    const corpus = await writeMobyDickCorpus(join(ws.work, 'corpus.txt'), { first: 1, count: 1, maxChars: 2000 });
    // A narrow one-block M2-GPT with the GPT-2 vocabulary: fast enough on SwiftShader.
    const init = join(ws.work, 'gpt-init');
    await tf.setBackend('cpu');
    const model = new M2Gpt({ preset: 'tiny', modelDim: 32, numLayers: 1, filterOrder: 8, maxLength: 16 }, { seed: 3 });
    await model.save(init);
    model.dispose();
    const { gpuStdout } = await expectWebGpuRunMatchesCpu('gpt', ['--init', init, '--text', corpus, '--seq-len', '8', '--batch-size', '2', '--sample-tokens', '2', '--prompt', 'The']);
    expect(gpuStdout).toMatch(/\nsample:\nThe\S*( \S+)*/); // 2 tokens sampled from webgpu logits (read asynchronously)
  }, 300_000);

  it('vision: 2 steps, evaluation and checkpoint on webgpu, with the cpu losses', async () => {
    // An image folder of two classes (dark or bright noisy 28×28 PNGs) and a narrow model.
    const folder = await writeNoisyImageFolder(join(ws.work, 'images'), 6);
    const init = join(ws.work, 'vision-init');
    await tf.setBackend('cpu');
    const model = new M2Vision({ imageSize: 28, channels: 1, patchSize: 7, modelDim: 16, numLayers: 1, filterOrder: 8, numClasses: 2, labels: ['bright', 'dark'] }, { seed: 1 });
    await model.save(init);
    model.dispose();
    await expectWebGpuRunMatchesCpu('vision', ['--init', init, '--dataset', folder, '--batch-size', '4', '--crop-padding', '0']);
  }, 300_000);
});
