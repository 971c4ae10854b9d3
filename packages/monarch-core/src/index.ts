/**
 * Monarch matrix math for TensorFlow.js.
 *
 * The bottom of the Monarch Mixer package graph (monarch-core → m2-layers → m2-bert / m2-gpt / m2-vision):
 * block-diagonal and Monarch products, Monarch projection, the DFT written as a Monarch product, long
 * convolutions built from real matrix products (differentiable on every backend), float64 references,
 * checkpoint I/O and backend set-up.
 *
 * @packageDocumentation
 */

export { M2Error, ShapeError, ConfigError, InvalidArgumentError, FileFormatError, BackendError } from './errors.js';
export type { M2ErrorDetails } from './errors.js';

// Seeded random numbers (weight init, sampling, data order, fuzzing)
export { Mulberry32, mulberry32, mixSeed } from './random.js';

// Checkpoint I/O (owner: io)
export { readSafetensors, writeSafetensors, SAFETENSORS_MAX_HEADER_BYTES } from './io/safetensors.js';
export type { ReadSafetensorsOptions, SafetensorsContents } from './io/safetensors.js';
export { toFloat32, toInt32, recordToTensor, tensorToRecord, halfToFloat, shapeSize, isTensorDtype } from './io/tensor-record.js';
export type { TensorDtype, TensorData, TensorDataByDtype, TensorRecord } from './io/tensor-record.js';

// Monarch math (owner: core-math)
export { blockDiagMatmul, blockdiagLinear, torchBlocksToTfjs, tfjsBlocksToTorch } from './blockdiag.js';
export type { BlockdiagLinearOptions } from './blockdiag.js';
export { monarchMatmul, monarchMatmulOrderP, monarchToDense, monarchProject, clearMonarchCache } from './monarch.js';
export type { MonarchFactors } from './monarch.js';
export { readTorchStateDict } from './io/torch-state-dict.js';
export type { ReadTorchStateDictOptions } from './io/torch-state-dict.js';

// Backend set-up (owner: backends)
export { setupBackend, setupBackendWith, defaultBackendSetters, BACKEND_NAMES } from './backends/setup-backend.js';
export type { BackendName, BackendInfo, SetupBackendOptions, BackendSetter, BackendSetters } from './backends/setup-backend.js';
export { registerGradients } from './backends/register-gradients.js';
export { registerWasmTrainingKernels, wasmTrainingKernels } from './backends/wasm-kernels.js';
export { registerWasmViewKernels } from './backends/wasm-view-kernels.js';
export { geluGate, registerWasmMathKernels } from './backends/wasm-math-kernels.js';
export { guardWasmAllocations, resetWasmHeapPeak, wasmHeapUsage } from './backends/wasm-heap-guard.js';
export type { WasmAllocatingBackend, WasmHeapUsage } from './backends/wasm-heap-guard.js';
export { probeWebGpu, hasVulkanLoader } from './backends/webgpu-node.js';
export type { GpuProbe } from './backends/webgpu-node.js';
export { loadStateDictFile, detectCheckpointFormat } from './io/load-state-dict-file.js';
export { writeFileAtomic, removeAtomicTemporaries, acquireDirLock, DIR_LOCK_FILE } from './io/atomic-file.js';
export type { DirLock, DirLockInfo } from './io/atomic-file.js';
export { fft, ifft, rfft, irfft } from './dft.js';
export { fftConv, causalConv, bidirectionalConv, longConvPlan, convKernelSpectrum, convWithSpectrum, convPairWithSpectra, disposeConvSpectrum } from './fft-conv.js';
export type { FftConvOptions, ConvKernelSpectrum } from './fft-conv.js';

// Activation recomputation (gradient checkpointing) for training at long L
export { recomputed, replayableDropout } from './recompute.js';
export { canFuseMixer, mixerParams, webGpuMixerCore } from './backends/webgpu-mixer.js';
export type { MixerCoreOptions } from './backends/webgpu-mixer.js';
export { canFuseShortConv, webGpuShortConv } from './backends/webgpu-short-conv.js';
export { webGpuLayerNorm } from './backends/webgpu-norm.js';
export { releaseWebGpuBufferPool, webGpuBytesAllocated, withWebGpuErrors } from './backends/webgpu-memory.js';
export { checkWebGpuBinding } from './backends/webgpu-limits.js';
export { registerCpuKernels } from './backends/cpu-kernels.js';
export { envSetting } from './env.js';
export { clearDftCache, MAX_DENSE_RADIX } from './dft-plan.js';
export type { DftPlan } from './dft-plan.js';
export { blockDiagMatmulKernel, registerBlockDiagKernels, blockDiagTile, BLOCK_DIAG_KERNELS } from './backends/webgpu-blockdiag.js';
export type { BlockDiagTile } from './backends/webgpu-blockdiag.js';
