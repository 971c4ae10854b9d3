// Registers tfjs-core's gradients and chained ops (x.sum(), x.reshape(), …), which its Node entry leaves out.
//
// tfjs-core ships both only as ESM files with extensionless relative imports. Bundlers and vitest resolve
// those; plain Node does not, so there we first register a small resolve hook (tfjs-esm-hooks.mjs, inlined
// in esm-hooks-source.ts) with `module.register`. Both ESM copies share tfjs's global engine and kernel
// registry with the CommonJS entry, so the gradients they register apply to every tensor.
import { TFJS_ESM_HOOKS_SOURCE } from './esm-hooks-source.js';

let registration: Promise<void> | undefined;

/** True in Node (also under vitest, Electron's main process and bundles that run in Node). */
export function isNode(): boolean {
  return typeof process !== 'undefined' && typeof process.versions?.node === 'string';
}

/** Imports a module whose name is computed, so that bundlers leave it alone. */
export function importRuntime<T = Record<string, unknown>>(specifier: string): Promise<T> {
  return import(/* @vite-ignore */ specifier) as Promise<T>;
}

async function registerNodeHooks(): Promise<void> {
  // vitest transforms tfjs's ESM files itself; a bundle has them inlined. Only plain Node needs the hook.
  if (!isNode() || process.env.VITEST !== undefined) return;
  const nodeModule = await importRuntime<{ register?: (specifier: string) => void }>('node:module');
  nodeModule.register?.(`data:text/javascript,${encodeURIComponent(TFJS_ESM_HOOKS_SOURCE)}`);
}

/**
 * Registers tfjs-core's gradient functions and chained tensor methods, once per process.
 *
 * Idempotent and safe to call concurrently: every call returns the same promise.
 *
 * @returns A promise that resolves once `tf.grad` and `x.sum()` work.
 * @example
 * await registerGradients();
 * tf.grad((x) => tf.sum(tf.square(x)))(tf.tensor([1, 2])); // → [2, 4]
 */
export function registerGradients(): Promise<void> {
  registration ??= (async () => {
    await registerNodeHooks();
    await import('@tensorflow/tfjs-core/dist/register_all_gradients.js');
    await import('@tensorflow/tfjs-core/dist/public/chained_ops/register_all_chained_ops.js');
  })().catch((error: unknown) => {
    registration = undefined;
    throw error;
  });
  return registration;
}
