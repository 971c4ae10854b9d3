// The pre-LN causal block against the golden m2-gpt/causal-block (original MonarchMixerSequenceMixing,
// bidirectional=False, plus LayerNorms and the GLU BlockdiagLinear MLP), and token-by-token decoding.
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadTorchWeights, M2CausalBlock, torchWeights } from './index.js';
import { fixtureTensor, readFixture, relativeL2 } from '../test/read-fixture.js';

const io = readFixture('causal-block/io.safetensors');
const weights = readFixture('causal-block/weights.safetensors');
const TOL = 1e-4;

describe('M2CausalBlock vs the golden causal block', () => {
  let block: M2CausalBlock;
  let x: tf.Tensor3D;
  beforeAll(() => {
    block = new M2CausalBlock({ modelDim: 64, maxLength: 64, intermediateDim: 256, filterOrder: 16, embDim: 5, name: 'golden_block' });
    block.build([null, 64, 64]);
    const { missing } = loadTorchWeights(block, (key) => (weights.has(key) ? fixtureTensor(weights, key) : undefined));
    expect(missing).toEqual([]);
    x = fixtureTensor(io, 'x') as tf.Tensor3D;
  });
  afterAll(() => block.dispose());

  it('reproduces both filters’ kernels', () => {
    const { filterFn, filterFn2 } = block.mixer.filterKernels(64);
    expect(filterFn.reverse).toBeUndefined();
    expect(relativeL2(filterFn.forward, fixtureTensor(io, 'filter_fn_k'))).toBeLessThan(TOL);
    expect(relativeL2(filterFn2!.forward, fixtureTensor(io, 'filter_fn2_k'))).toBeLessThan(TOL);
  });

  it('reproduces mixer_output and block_output', () => {
    const m = block.mixerOutput(x);
    expect(relativeL2(m, fixtureTensor(io, 'mixer_output'))).toBeLessThan(TOL);
    const y = block.apply(x) as tf.Tensor;
    expect(y.shape).toEqual([2, 64, 64]);
    expect(relativeL2(y, fixtureTensor(io, 'block_output'))).toBeLessThan(TOL);
  });

  it('is causal: a change at positions ≥ 40 leaves positions < 40 unchanged', () => {
    const y = block.apply(x) as tf.Tensor;
    const yp = block.apply(fixtureTensor(io, 'x_perturbed')) as tf.Tensor;
    expect(relativeL2(yp, fixtureTensor(io, 'block_output_perturbed'))).toBeLessThan(TOL);
    const before = tf.max(tf.abs(tf.sub(tf.slice(yp, [0, 0, 0], [2, 40, 64]), tf.slice(y, [0, 0, 0], [2, 40, 64])))).dataSync()[0]!;
    const after = tf.max(tf.abs(tf.sub(tf.slice(yp, [0, 40, 0], [2, 24, 64]), tf.slice(y, [0, 40, 0], [2, 24, 64])))).dataSync()[0]!;
    expect(before).toBeLessThanOrEqual(1e-5);
    expect(after).toBeGreaterThan(1);
  });

  it('accepts shorter inputs (kernels sliced, not rescaled) and equals the prefix of the full output', () => {
    const full = block.apply(x) as tf.Tensor;
    const short = block.apply(tf.slice(x, [0, 0, 0], [2, 17, 64])) as tf.Tensor;
    expect(relativeL2(short, tf.slice(full, [0, 0, 0], [2, 17, 64]))).toBeLessThan(1e-5);
  });

  it('decodes token by token exactly like the full forward', () => {
    const length = 24;
    const input = tf.slice(x, [0, 0, 0], [2, length, 64]);
    const full = block.apply(input) as tf.Tensor;
    const state = block.createStepState(2);
    const outputs: tf.Tensor[] = [];
    for (let t = 0; t < length; t++) {
      outputs.push(tf.tidy(() => block.step(tf.reshape(tf.slice(input, [0, t, 0], [2, 1, 64]), [2, 64]) as tf.Tensor2D, state)));
    }
    expect(state.position).toBe(length);
    const stepped = tf.stack(outputs, 1);
    const maxDiff = tf.max(tf.abs(tf.sub(stepped, full))).dataSync()[0]!;
    expect(maxDiff).toBeLessThan(1e-5);
    const zero = tf.zeros([2, 64]) as tf.Tensor2D;
    const before = tf.memory().numTensors;
    tf.dispose(block.step(zero, state));
    expect(tf.memory().numTensors).toBe(before); // the state's old tensors are freed, the new ones kept
    state.dispose();
  });

  it.each([1, 2, 9])('continues decoding after a prefill of %i positions exactly like the full forward', (prompt) => {
    const length = 14;
    const input = tf.slice(x, [0, 0, 0], [2, length, 64]) as tf.Tensor3D;
    const full = block.apply(input) as tf.Tensor;
    const state = block.createStepState(2);
    const outputs: tf.Tensor[] = [block.prefill(tf.slice(input, [0, 0, 0], [2, prompt, 64]) as tf.Tensor3D, state)];
    for (let t = prompt; t < length; t++) {
      outputs.push(tf.expandDims(block.step(tf.reshape(tf.slice(input, [0, t, 0], [2, 1, 64]), [2, 64]) as tf.Tensor2D, state), 1));
    }
    expect(state.position).toBe(length);
    const maxDiff = tf.max(tf.abs(tf.sub(tf.concat(outputs, 1), full))).dataSync()[0]!;
    expect(maxDiff).toBeLessThan(1e-5);
    expect(() => block.prefill(input, state)).toThrow(/prefill needs a fresh state \(position 0\)/);
    state.dispose();
  });

  it('writes the checkpoint back in PyTorch layout', () => {
    const state = torchWeights(block);
    expect([...state.keys()].sort()).toEqual([...weights.keys()].sort());
    for (const [key, value] of state) expect(relativeL2(value, fixtureTensor(weights, key)), key).toBe(0);
    tf.dispose([...state.values()]);
  });
});
