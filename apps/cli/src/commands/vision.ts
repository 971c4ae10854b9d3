// `m2 vision classify | info`: top-k classes of image files with a trained M2 vision mixer (or ViT baseline).
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import * as tf from '@tensorflow/tfjs-core';
import * as core from '@monarch-mixer/monarch-core';
import { InvalidArgumentError } from '@monarch-mixer/monarch-core';
import { imageFileToTensor, loadImageClassifier } from '@monarch-mixer/m2-vision';

type SetupBackend = (name?: string) => Promise<unknown>;

/** Inference needs no gradients: monarch-core's setupBackend when present, else tfjs's cpu backend. */
async function useBackend(name: string): Promise<void> {
  const setup = (core as unknown as Record<string, unknown>).setupBackend as SetupBackend | undefined;
  if (setup) {
    await setup(name);
    return;
  }
  if (name !== 'cpu' && name !== 'auto') throw new core.BackendError(`--backend ${name} is not available in this build; use cpu.`);
  await import('@tensorflow/tfjs-backend-cpu');
  tf.env().set('PROD', true);
  await tf.setBackend('cpu');
  await tf.ready();
}

function positiveInteger(flag: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\s*\d+\s*$/.test(value) || !Number.isSafeInteger(n) || n < 1) {
      throw new InvalidArgumentError(`${flag} must be an integer ≥ 1, got "${value}".`, { parameter: flag, value });
    }
    return n;
  };
}

/** Registers the `m2 vision …` commands. */
export function registerVisionCommands(group: Command): void {
  group
    .command('classify')
    .description('Top-k classes of PNG/JPEG images with a trained model (a folder from `m2 train vision`)')
    .requiredOption('--model <dir>', 'model directory (config.json + model.safetensors), e.g. a training checkpoint')
    .argument('<images...>', 'PNG or JPEG files')
    .option('--top-k <k>', 'classes to print per image', positiveInteger('--top-k'), 3)
    .option('--resize', 'resize images of another size to the model input (bilinear) instead of failing', false)
    .option('--invert', 'invert intensities (dark digits on white paper, for an MNIST model)', false)
    .option('--json', 'print one JSON object per image instead of text', false)
    .option('--backend <name>', 'tfjs backend: auto, cpu, wasm, webgpu, tensorflow', 'cpu')
    .action(async (images: string[], options: { model: string; topK: number; resize: boolean; invert: boolean; json: boolean; backend: string }) => {
      await useBackend(options.backend);
      const model = await loadImageClassifier(options.model);
      try {
        const { imageSize, channels } = model.config;
        for (const file of images) {
          const image = imageFileToTensor(new Uint8Array(await readFile(file)), { imageSize, channels, resize: options.resize, invert: options.invert, file });
          try {
            const predictions = await model.classify(image, { topK: options.topK });
            if (options.json) {
              process.stdout.write(`${JSON.stringify({ file, predictions })}\n`);
            } else {
              const text = predictions.map((p) => `${p.label} ${(100 * p.probability).toFixed(1)}%`).join(', ');
              process.stdout.write(`${file}: ${text}\n`);
            }
          } finally {
            image.dispose();
          }
        }
      } finally {
        model.dispose();
      }
    });
}
