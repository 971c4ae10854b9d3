// Picks the fastest TensorFlow.js backend this browser supports: webgpu → webgl → wasm → cpu.
// `?backend=NAME` in the page URL forces one (the end-to-end test uses it).
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-webgl';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import wasmSimdUrl from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm?url';
import wasmUrl from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm?url';
import wasmThreadedUrl from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-threaded-simd.wasm?url';

const ORDER = ['webgpu', 'webgl', 'wasm', 'cpu'] as const;

/** Starts the first backend in ORDER (or the forced one) that initialises, and returns its name. */
export async function startBackend(forced?: string | null): Promise<string> {
  setWasmPaths({
    'tfjs-backend-wasm.wasm': wasmUrl,
    'tfjs-backend-wasm-simd.wasm': wasmSimdUrl,
    'tfjs-backend-wasm-threaded-simd.wasm': wasmThreadedUrl,
  });
  if ('gpu' in navigator) await import('@tensorflow/tfjs-backend-webgpu');
  const candidates = forced ? [forced] : ORDER;
  for (const name of candidates) {
    if (!tf.findBackendFactory(name)) continue;
    try {
      if (await tf.setBackend(name)) {
        await tf.ready();
        return name;
      }
    } catch {
      // try the next backend
    }
  }
  throw new Error(`no TensorFlow.js backend could start (tried ${candidates.join(', ')})`);
}
