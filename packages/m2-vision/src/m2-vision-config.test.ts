import { describe, expect, it } from 'vitest';
import { ConfigError } from '@monarch-mixer/monarch-core';
import { countM2VisionParameters, numPatches, resolveM2VisionConfig } from './m2-vision-config.js';
import { countVitBaselineParameters, vitBaselineConfigFor } from './vit-baseline.js';

describe('M2VisionConfig', () => {
  it('resolves presets: tiny is MNIST-scale, base is the ViT-b/16 shape', () => {
    const tiny = resolveM2VisionConfig({ preset: 'tiny' });
    expect([tiny.imageSize, tiny.channels, tiny.patchSize, numPatches(tiny), tiny.modelDim, tiny.intermediateDim]).toEqual([28, 1, 4, 49, 64, 172]);
    expect(tiny.labels).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    expect(Object.isFrozen(tiny)).toBe(true);
    const base = resolveM2VisionConfig({ preset: 'base' });
    expect([base.imageSize, base.patchSize, numPatches(base), base.modelDim, base.numLayers, base.intermediateDim, base.numClasses]).toEqual([224, 16, 196, 768, 12, 2048, 1000]);
  });

  it('counts about 45M parameters for base (paper: M2-ViT-b 45M) and half of ViT-b (86.6M)', () => {
    const base = resolveM2VisionConfig({ preset: 'base' });
    const m2 = countM2VisionParameters(base).total;
    // ViT-B/16 (timm vit_base_patch16_224) has 86,567,656 parameters; ours has no CLS token (−768) and 196
    // instead of 197 position embeddings (−768).
    const vit = countVitBaselineParameters(vitBaselineConfigFor(base, { numHeads: 12 }));
    expect(vit).toBe(86_567_656 - 2 * 768);
    expect(Math.abs(m2 - 45e6) / 45e6).toBeLessThan(0.06);
    expect(m2 / vit).toBeLessThan(0.6);
  });

  it('rejects bad values with one-line hints', () => {
    expect(() => resolveM2VisionConfig({ imageSize: 30, patchSize: 4 })).toThrow(/^M2VisionConfig\.imageSize \(30\) must be divisible by patchSize \(4\)\. Try 28\.$/);
    expect(() => resolveM2VisionConfig({ modelDim: 66, intermediateDim: 256 })).toThrow(/modelDim \(66\) must be divisible by numBlocks \(4\)\. Try 68\./);
    expect(() => resolveM2VisionConfig({ preset: 'huge' })).toThrow(/Unknown M2Vision preset "huge"\. Expected one of: tiny, small, base\./);
    expect(() => resolveM2VisionConfig({ modelDimm: 3 } as never)).toThrow(ConfigError);
    expect(() => resolveM2VisionConfig({ channels: 2 })).toThrow(/channels must be 1 \(grayscale\) or 3 \(RGB\), got 2/);
    expect(() => resolveM2VisionConfig({ preset: 'tiny', labels: ['a'] })).toThrow(/labels must be 10 strings/);
  });
});
