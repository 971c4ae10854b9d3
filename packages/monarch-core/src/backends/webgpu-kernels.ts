// One registration of every fused WGSL kernel of this package for the webgpu backend. setupBackend('webgpu') calls
// it; the ops call it too (a flag test after the first time), so that a program that activates webgpu with
// tf.setBackend('webgpu') alone still finds the kernels.
import * as tf from '@tensorflow/tfjs-core';
import { longConvKernelConfigs } from './webgpu-long-conv.js';
import { mixerKernelConfigs } from './webgpu-mixer.js';
import { normKernelConfigs } from './webgpu-norm.js';
import { shortConvKernelConfigs } from './webgpu-short-conv.js';

let registered = false;

/**
 * Registers the fused long-convolution, mixer-core, short-convolution, LayerNorm and GELU-gate kernels for the
 * webgpu backend, once; a kernel already registered under its name (by the caller) is left as it is. Works
 * before tfjs-backend-webgpu is imported (kernels are registered by backend name).
 *
 * @example
 * registerWebGpuKernels(); // then webGpuLongConv, webGpuMixerCore, webGpuShortConv, webGpuLayerNorm, geluGate run fused
 */
export function registerWebGpuKernels(): void {
  if (registered) return;
  registered = true;
  // Read at call time: these modules import this one (the lists are not yet defined while it is evaluated).
  for (const config of [...longConvKernelConfigs, ...mixerKernelConfigs, ...shortConvKernelConfigs, ...normKernelConfigs]) {
    if (tf.getKernel(config.kernelName, config.backendName) === undefined) tf.registerKernel(config);
  }
}
