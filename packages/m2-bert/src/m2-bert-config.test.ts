import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ConfigError, readSafetensors } from '@monarch-mixer/monarch-core';
import { configFromHuggingFace, configToHuggingFace, m2BertPresets, resolveM2BertConfig } from './m2-bert-config.js';
import type { M2BertPresetName } from './m2-bert-config.js';
import { countM2BertParameters, m2BertStateDict, normalizeKey, originalKey } from './state-dict.js';

const fixture = (path: string) => new URL(`../test/fixtures/${path}`, import.meta.url);

describe('M2BertConfig', () => {
  it('fills defaults, rejects unknown keys and bad values, and freezes', () => {
    const config = resolveM2BertConfig({ preset: 'tiny' });
    expect(config.modelDim).toBe(64);
    expect(Object.isFrozen(config)).toBe(true);
    expect(() => resolveM2BertConfig({ hiddenSize: 3 } as never)).toThrow(/M2BertConfig has no key "hiddenSize"/);
    expect(() => resolveM2BertConfig({ modelDim: 770 })).toThrow(/modelDim \(770\) must be divisible by numBlocks \(4\)\. Try 768/);
    expect(() => resolveM2BertConfig({ preset: 'm2-bert-999M' })).toThrow(ConfigError);
    expect(() => resolveM2BertConfig({ filterEmbDim: 4 })).toThrow(/odd/);
    expect(() => resolveM2BertConfig({ hiddenDropout: 1.5 })).toThrow(/probability/);
  });

  // §2.7 counts, computed analytically from the state_dict table (nothing allocated).
  it('has parameter counts equal to m2-architecture.md §2.7 for every released configuration', () => {
    const total = (preset: M2BertPresetName, extra = {}) => countM2BertParameters(resolveM2BertConfig({ preset, ...extra })).total;
    expect(total('tiny')).toBe(147_200);
    expect(total('m2-bert-80M', { hyenaTrainingAdditions: false })).toBe(80_267_328);
    expect(total('m2-bert-80M')).toBe(80_267_328 + 18_432);
    expect(total('m2-bert-110M')).toBe(115_583_616);
    expect(total('m2-bert-260M')).toBe(259_133_760);
    expect(total('m2-bert-341M')).toBe(341_038_144);
    // BertModel + pooler of the long-context models: 81.94M / 87.40M / 109.22M.
    expect((total('m2-bert-80M-2k-retrieval') / 1e6).toFixed(2)).toBe('81.94');
    expect((total('m2-bert-80M-8k-retrieval') / 1e6).toFixed(2)).toBe('87.40');
    expect((total('m2-bert-80M-32k-retrieval') / 1e6).toFixed(2)).toBe('109.22');
    expect(Object.keys(m2BertPresets)).toHaveLength(11);
  });

  it('lists exactly the parameter keys of the original model (the 121 gradient keys of the golden MLM)', () => {
    const { tensors } = readSafetensors(readFileSync(fixture('tiny-mlm/grads.safetensors')));
    const golden = [...tensors.keys()].filter((k) => k.startsWith('grad.')).map((k) => k.slice(5)).sort();
    const config = resolveM2BertConfig({ preset: 'tiny' });
    const ours = m2BertStateDict(config).filter((e) => e.kind === 'parameter').map((e) => originalKey(config, e.key)).sort();
    expect(ours).toEqual(golden);
    for (const entry of m2BertStateDict(config)) {
      const record = tensors.get(`grad.${originalKey(config, entry.key)}`);
      if (record) expect(record.shape).toEqual(entry.shape);
    }
    expect(normalizeKey('state.model.model.bert.encoder.layer.1.mlp.wo.bias')).toBe('encoder.layer.1.mlp.wo.bias');
  });

  it('reads the HuggingFace config.json layout and writes it back', () => {
    const mlm = configFromHuggingFace(JSON.parse(readFileSync(fixture('tiny-mlm/config.json'), 'utf8')));
    expect(mlm).toEqual(resolveM2BertConfig({ preset: 'tiny' }));
    const cls = configFromHuggingFace(JSON.parse(readFileSync(fixture('tiny-cls/config.json'), 'utf8')));
    expect(cls.head).toBe('sequence-classification');
    expect(cls.labels).toEqual(['LABEL_0', 'LABEL_1', 'LABEL_2']);
    expect(configFromHuggingFace(configToHuggingFace(cls))).toEqual(cls);
    // A retrieval config.json: BertForSequenceClassification mapped to BertForTextEncoding, no M2 runtime keys.
    const retrieval = configFromHuggingFace({
      architectures: ['BertForSequenceClassification'],
      auto_map: { AutoModelForSequenceClassification: 'bert_layers.BertForTextEncoding' },
      hidden_size: 768, intermediate_size: 3072, max_position_embeddings: 2048, long_conv_l_max: 2048, vocab_size: 30528,
      alibi_starting_size: 2048, model_type: 'm2_bert',
    });
    expect(retrieval.head).toBe('text-encoding');
    expect(retrieval).toEqual(resolveM2BertConfig({ preset: 'm2-bert-80M-2k-retrieval' }));
    expect(configFromHuggingFace(configToHuggingFace(retrieval))).toEqual(retrieval);
    expect(() => configFromHuggingFace({ use_flash_mm: true })).toThrow(/use_flash_mm is true.*not checkpoint-compatible/);
    expect(() => configFromHuggingFace({ architectures: ['BertForQuestionAnswering'] })).toThrow(/unsupported architecture/);
  });
});
