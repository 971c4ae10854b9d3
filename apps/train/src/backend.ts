// Backend set-up for the training commands: monarch-core's `setupBackend` (registers gradients in plain Node,
// wasm training kernels, threads) behind the `--backend` flag.
import { setupBackend } from '@monarch-mixer/monarch-core';
import type { BackendName } from '@monarch-mixer/monarch-core';

/**
 * Sets the tfjs backend (`auto` picks the fastest available one) with gradients registered.
 * @param name - `auto`, `cpu`, `wasm`, `webgpu` or `tensorflow`.
 * @returns The backend's name and a one-line description.
 * @throws BackendError (one line) for an unknown or unavailable backend.
 */
export async function useBackend(name: string): Promise<{ name: string; description: string }> {
  const info = await setupBackend(name as BackendName);
  return { name: info.name, description: info.description };
}
