// setupBackend's choice (auto order, error messages) with injected set-up functions, and the real cpu,
// webgpu (no GPU on the test machines) and tensorflow (not installable here) paths.
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { BackendError } from '../errors.js';
import { BACKEND_NAMES, setupBackend, setupBackendWith } from './setup-backend.js';
import type { BackendSetter, BackendSetters } from './setup-backend.js';

/** Fake set-up functions: each either works (naming itself) or throws a BackendError; calls are logged. */
function fakes(working: string[], calls: string[] = []): BackendSetters {
  const make = (name: string): BackendSetter => async (options) => {
    calls.push(name);
    if (!working.includes(name)) throw new BackendError(`${name} is not available`);
    return { name, description: `${name} (fake)`, ...(name === 'wasm' ? { threads: options.threads ?? 1 } : {}) };
  };
  return { tensorflow: make('tensorflow'), webgpu: make('webgpu'), wasm: make('wasm'), cpu: make('cpu') };
}

describe('auto', () => {
  it.each([
    [['tensorflow', 'webgpu', 'wasm', 'cpu'], 'tensorflow', ['tensorflow']],
    [['webgpu', 'wasm', 'cpu'], 'webgpu', ['tensorflow', 'webgpu']],
    [['wasm', 'cpu'], 'wasm', ['tensorflow', 'webgpu', 'wasm']],
    [['cpu'], 'cpu', ['tensorflow', 'webgpu', 'wasm', 'cpu']],
  ])('with %j working picks %s, trying %j', async (working, expected, tried) => {
    const calls: string[] = [];
    const info = await setupBackendWith(fakes(working, calls), 'auto');
    expect(info).toMatchObject({ name: expected, requested: 'auto' });
    expect(calls).toEqual(tried);
  });

  it('passes threads on to wasm', async () => {
    const info = await setupBackendWith(fakes(['wasm']), 'auto', { threads: 3 });
    expect(info).toEqual({ name: 'wasm', requested: 'auto', threads: 3, description: 'wasm (fake)' });
  });

  it('lists every reason in one line when nothing works', async () => {
    const error = await setupBackendWith(fakes([]), 'auto').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BackendError);
    expect((error as Error).message).toBe('No backend could be set up (tensorflow: tensorflow is not available | ' +
      'webgpu: webgpu is not available | wasm: wasm is not available | cpu: cpu is not available).');
  });

  it('does not swallow errors other than BackendError', async () => {
    const setters = { ...fakes(['cpu']), webgpu: async () => { throw new TypeError('bug'); } };
    await expect(setupBackendWith(setters, 'auto')).rejects.toThrow(TypeError);
  });
});

describe('a named backend', () => {
  it('calls only that set-up function', async () => {
    const calls: string[] = [];
    const info = await setupBackendWith(fakes(['cpu', 'webgpu'], calls), 'webgpu');
    expect(info).toEqual({ name: 'webgpu', requested: 'webgpu', description: 'webgpu (fake)' });
    expect(calls).toEqual(['webgpu']);
    await expect(setupBackendWith(fakes(['cpu']), 'wasm')).rejects.toThrow('wasm is not available');
  });

  it('rejects unknown names and bad thread counts with one line', async () => {
    const error = await setupBackend('gpu' as never).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BackendError);
    expect(error).toMatchObject({ message: 'Unknown backend "gpu"; expected one of auto, tensorflow, webgpu, wasm, cpu.', parameter: 'backend', value: 'gpu' });
    expect(BACKEND_NAMES).toEqual(['auto', 'tensorflow', 'webgpu', 'wasm', 'cpu']);
    for (const threads of [0, 1.5, 9]) {
      await expect(setupBackend('cpu', { threads })).rejects.toThrow(/^threads must be an integer in 1…8, got/);
    }
  });
});

describe('real set-up on this machine', () => {
  it('sets up cpu', async () => {
    const info = await setupBackend('cpu');
    expect(info).toEqual({ name: 'cpu', requested: 'cpu', description: 'cpu (pure JavaScript)' });
    expect(tf.getBackend()).toBe('cpu');
  });

  it('explains in one line that tensorflow needs tfjs-node, and what tfjs-node-gpu needs', async () => {
    const error = await setupBackend('tensorflow').catch((e: unknown) => e) as Error;
    expect(error).toBeInstanceOf(BackendError);
    expect(error.message).not.toContain('\n');
    expect(error.message).toContain('npm install @tensorflow/tfjs-node@4.22.0');
    expect(error.message).toContain('CUDA 11.2 + cuDNN 8.1');
    expect(error.message).toContain('silently falls back to the CPU');
    expect(tf.getBackend()).toBe('cpu');
  });

  it('explains in one line that webgpu has no adapter here, leaving the backend as it was', async () => {
    const error = await setupBackend('webgpu').catch((e: unknown) => e) as Error;
    expect(error).toBeInstanceOf(BackendError);
    expect(error.message).not.toContain('\n');
    expect(error.message).toMatch(/^Backend "webgpu" is unavailable: no GPU adapter(: the Vulkan loader libvulkan\.so\.1 is missing| found)/);
    expect(tf.getBackend()).toBe('cpu');
  });
});
