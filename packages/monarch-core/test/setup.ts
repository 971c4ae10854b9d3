// Shared vitest set-up: registers tfjs gradients and picks the test backend (M2_TEST_BACKEND, default cpu).
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-core/dist/register_all_gradients.js';

tf.env().set('PROD', true);
const backend = process.env.M2_TEST_BACKEND ?? 'cpu';
if (backend === 'wasm') {
  // The project's own wasm set-up: wasm paths, and the kernels the stock backend lacks (training) or runs slowly.
  const { setupBackend } = await import('../src/backends/setup-backend.js');
  await setupBackend('wasm', { threads: 1 });
} else {
  await tf.setBackend(backend);
  if (backend === 'cpu') {
    // As setupBackend('cpu'): tfjs's UnsortedSegmentSum (tf.gather's gradient) is O(segments × rows).
    const { registerCpuKernels } = await import('../src/backends/cpu-kernels.js');
    registerCpuKernels();
  }
}
await tf.ready();
