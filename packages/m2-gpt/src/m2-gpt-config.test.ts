import { describe, expect, it } from 'vitest';
import { ConfigError } from '@monarch-mixer/monarch-core';
import { countM2GptParameters, PAPER_PARAMETER_COUNTS, resolveM2GptConfig } from './m2-gpt-config.js';

describe('resolveM2GptConfig', () => {
  it('fills defaults, applies presets and freezes', () => {
    const c = resolveM2GptConfig({ preset: 'tiny' });
    expect(c.modelDim).toBe(128);
    expect(c.intermediateDim).toBe(512);
    expect(c.vocabSize).toBe(50257);
    expect(Object.isFrozen(c)).toBe(true);
    expect(resolveM2GptConfig({ preset: 'tiny', modelDim: 64 }).intermediateDim).toBe(256);
  });

  it('rejects unknown keys, unknown presets and bad values with one line', () => {
    expect(() => resolveM2GptConfig({ preset: 'huge' })).toThrow('Unknown M2-GPT preset "huge". Expected one of: tiny, small, medium.');
    expect(() => resolveM2GptConfig({ modelDimm: 3 } as never)).toThrow(/no key "modelDimm"/);
    expect(() => resolveM2GptConfig({ modelDim: 770 })).toThrow('M2GptConfig.modelDim (770) must be divisible by numBlocks (4). Try 768.');
    expect(() => resolveM2GptConfig({ numLayers: 0 })).toThrow(ConfigError);
    expect(() => resolveM2GptConfig({ filterEmbDim: 4 })).toThrow(/odd/);
    expect(() => resolveM2GptConfig({ layerNormEps: -1 })).toThrow(/layerNormEps/);
  });
});

describe('countM2GptParameters', () => {
  it('counts the golden-block shapes by hand (d 64, I 256, o 16, e 5, L 64)', () => {
    // Per block, from the golden weights' shapes: norm1 128; in_linear 64·192+192; short conv 192·3+192;
    // per filter: z 64·5, Linear 5→16 96, freq 16, 2 × (16·16+16), Linear 16→64 1024, D 64;
    // out_linear 64·64+64; norm2 128; gated 4·16·128 = 8192; wo 4·64·16 + 64.
    const filter = 320 + 96 + 16 + 2 * 272 + 1024 + 64;
    const block = 128 + (12288 + 192) + (576 + 192) + 2 * filter + (4096 + 64) + 128 + 8192 + (4096 + 64);
    const c = resolveM2GptConfig({ modelDim: 64, intermediateDim: 256, filterOrder: 16, maxLength: 64, numLayers: 3, vocabSize: 100 });
    const n = countM2GptParameters(c);
    expect(n.perBlock).toBe(block);
    expect(n.total).toBe(100 * 64 + 3 * block + 128);
  });

  it('puts small and medium next to the paper (145M, 360M) within 0.5%', () => {
    const small = countM2GptParameters(resolveM2GptConfig({ preset: 'small' })).total;
    const medium = countM2GptParameters(resolveM2GptConfig({ preset: 'medium' })).total;
    expect(small).toBe(144_951_552);
    expect(medium).toBe(360_027_136);
    expect(Math.abs(small / PAPER_PARAMETER_COUNTS.small.m2Gpt - 1)).toBeLessThan(0.005);
    expect(Math.abs(medium / PAPER_PARAMETER_COUNTS.medium.m2Gpt - 1)).toBeLessThan(0.005);
  });
});
