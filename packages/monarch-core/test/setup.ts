// Shared vitest set-up: registers tfjs gradients and picks the test backend (M2_TEST_BACKEND, default cpu).
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-core/dist/register_all_gradients.js';

tf.env().set('PROD', true);
const backend = process.env.M2_TEST_BACKEND ?? 'cpu';
if (backend === 'wasm') {
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  const { createRequire } = await import('node:module');
  const { dirname } = await import('node:path');
  const require = createRequire(import.meta.url);
  wasm.setWasmPaths(dirname(require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm')) + '/');
}
await tf.setBackend(backend);
await tf.ready();
