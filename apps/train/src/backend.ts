// Backend set-up for the training commands. Uses monarch-core's `setupBackend` (API.md) when it is exported;
// until then an interim fallback registers tfjs's gradients (through monarch-core's Node resolve hook) and
// picks cpu or wasm itself.
import * as tf from '@tensorflow/tfjs-core';
import * as core from '@monarch-mixer/monarch-core';
import { BackendError } from '@monarch-mixer/monarch-core';
import { createRequire, register } from 'node:module';
import { dirname } from 'node:path';

/** Backends accepted by `--backend`. */
export const BACKEND_NAMES = ['auto', 'cpu', 'wasm', 'webgpu', 'tensorflow'] as const;

type SetupBackend = (name?: string, options?: { threads?: number }) => Promise<{ name: string; description: string }>;

let gradientsRegistered = false;

/**
 * Sets the tfjs backend (`auto` = wasm, the fastest embedded one on CPUs) with gradients registered.
 * @returns The backend's name and a one-line description.
 * @throws BackendError (one line) for an unknown or unavailable backend.
 */
export async function useBackend(name: string): Promise<{ name: string; description: string }> {
  if (!(BACKEND_NAMES as readonly string[]).includes(name)) {
    throw new BackendError(`--backend must be one of ${BACKEND_NAMES.join(', ')}, got "${name}".`, { parameter: '--backend', value: name });
  }
  const setup = (core as unknown as Record<string, unknown>).setupBackend as SetupBackend | undefined;
  if (setup) return setup(name);
  if (!gradientsRegistered) {
    register(new URL('../../../packages/monarch-core/src/backends/tfjs-esm-hooks.mjs', import.meta.url));
    await import('@tensorflow/tfjs-backend-cpu');
    await import('@tensorflow/tfjs-core/dist/register_all_gradients.js');
    gradientsRegistered = true;
  }
  tf.env().set('PROD', true);
  const chosen = name === 'auto' ? 'wasm' : name;
  if (chosen === 'wasm') {
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    const require = createRequire(import.meta.url);
    wasm.setWasmPaths(`${dirname(require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm'))}/`);
  } else if (chosen !== 'cpu') {
    throw new BackendError(`--backend ${chosen} is not available in this build yet; use cpu or wasm.`, { parameter: '--backend', value: name });
  }
  if (!(await tf.setBackend(chosen))) throw new BackendError(`backend "${chosen}" failed to initialise.`, { parameter: '--backend' });
  await tf.ready();
  return { name: chosen, description: chosen === 'wasm' ? 'wasm (SIMD, 1 thread)' : 'cpu (pure JS)' };
}
