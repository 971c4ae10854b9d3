// Backend set-up for Node and browsers: cpu, wasm (SIMD, threads in Node), webgpu (Dawn in Node), tensorflow
// (tfjs-node / tfjs-node-gpu when installed), and `auto`, which takes the fastest of them that works.
import * as tf from '@tensorflow/tfjs-core';
import { BackendError } from '../errors.js';
import { registerCpuKernels } from './cpu-kernels.js';
import { importRuntime, isNode, registerGradients } from './register-gradients.js';
import { registerWasmTrainingKernels } from './wasm-kernels.js';
import { registerWasmFftKernels } from './wasm-fft-conv.js';
import { registerWasmGemmKernels } from './wasm-gemm-kernel.js';
import { registerWasmMathKernels } from './wasm-math-kernels.js';
import { guardWasmAllocations } from './wasm-heap-guard.js';
import { registerWasmViewKernels } from './wasm-view-kernels.js';
import { startWasmHelpers } from './wasm-parallel.js';
import { WASM_MAX_THREADS, installWasmThreadsShim } from './wasm-threads-shim.js';
import { registerWebGpuKernels } from './webgpu-kernels.js';
import { firstLine, probeWebGpu } from './webgpu-node.js';
import { registerWebGpuDispatchGuards } from './webgpu-tall-matmul.js';

/** A backend `setupBackend` can set up; `auto` picks the fastest one that works. */
export type BackendName = 'auto' | 'cpu' | 'wasm' | 'webgpu' | 'tensorflow';

/** Every valid {@link BackendName}, in the order `auto` tries the concrete ones (after itself). */
export const BACKEND_NAMES: readonly BackendName[] = ['auto', 'tensorflow', 'webgpu', 'wasm', 'cpu'];

/** What {@link setupBackend} set up. */
export interface BackendInfo {
  /** The tfjs backend now active (`tf.getBackend()`): `cpu`, `wasm`, `webgpu` or `tensorflow`. */
  name: string;
  /** The name that was asked for. */
  requested: BackendName;
  /** Worker threads of the wasm backend. */
  threads?: number;
  /** One line: what runs, e.g. `wasm (SIMD, 2 threads)` or `webgpu (nvidia hopper)`. */
  description: string;
}

/** Options of {@link setupBackend}. */
export interface SetupBackendOptions {
  /**
   * wasm threads in Node (1…8). Default: the number of CPUs, at most 8. Only the first wasm set-up in a process
   * decides; browsers decide for themselves (cross-origin isolation).
   */
  threads?: number;
}

/** Sets up one concrete backend and says what it set up; throws BackendError when it cannot. */
export type BackendSetter = (options: SetupBackendOptions) => Promise<Omit<BackendInfo, 'requested'>>;

/** Set-up functions of the concrete backends, in the order `auto` tries them. */
export type BackendSetters = Record<Exclude<BackendName, 'auto'>, BackendSetter>;

const TENSORFLOW_PACKAGES = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'] as const;

/** Imports a tfjs backend package, turning "not installed" into a one-line BackendError. */
async function importBackendPackage(backend: string, specifier: string, load: () => Promise<unknown>): Promise<void> {
  try {
    await load();
  } catch (error) {
    throw new BackendError(`Backend "${backend}" needs ${specifier}: npm install ${specifier}@4.22.0 (${firstLine(error)}).`, { parameter: 'backend', value: backend });
  }
}

/** Whether an import error says that `specifier` itself is not installed (Node's and vite's wordings). */
export function isNotInstalled(error: unknown, specifier: string): boolean {
  const message = error instanceof Error ? error.message : String(error);
  const named = message.includes(`'${specifier}'`) || message.includes(`"${specifier}"`);
  return named && /Cannot find (package|module)|Could not resolve|Failed to (resolve|load url)/i.test(message);
}

/**
 * Turns off tfjs-backend-cpu's "install our node backend" console banner, which it prints on its first use in
 * Node. The cpu backend is loaded here (when installed) so that it is silenced also when it is only used later,
 * as a helper of another backend or for a comparison.
 */
async function silenceNodeBanner(): Promise<void> {
  if (tf.findBackendFactory('cpu') === null) await import('@tensorflow/tfjs-backend-cpu').catch(() => undefined);
  const cpu = tf.findBackend('cpu') as { firstUse?: boolean } | null;
  if (cpu !== null && 'firstUse' in cpu) cpu.firstUse = false;
}

async function activate(name: string): Promise<void> {
  let ok = false;
  let cause = '';
  const warn = console.warn;
  // tfjs reports a failed initialisation with console.warn and returns false: keep its reason for our error.
  console.warn = (...args: unknown[]) => {
    cause ||= args.map(String).join(' ').split('\n')[0];
  };
  try {
    ok = await tf.setBackend(name);
    await tf.ready();
  } catch (error) {
    cause = firstLine(error);
    ok = false;
  } finally {
    console.warn = warn;
  }
  if (!ok || tf.getBackend() !== name) {
    throw new BackendError(`Backend "${name}" failed to initialise${cause ? `: ${cause}` : ''}.`, { parameter: 'backend', value: name });
  }
}

async function setupCpu(): Promise<Omit<BackendInfo, 'requested'>> {
  await importBackendPackage('cpu', '@tensorflow/tfjs-backend-cpu', () => import('@tensorflow/tfjs-backend-cpu'));
  await silenceNodeBanner();
  await activate('cpu');
  registerCpuKernels();
  return { name: 'cpu', description: 'cpu (pure JavaScript)' };
}

/** Folder holding tfjs-backend-wasm's .wasm files in Node. */
async function wasmDirectory(): Promise<string> {
  const override = process.env.M2_TFJS_WASM_DIR;
  if (override) return override.endsWith('/') ? override : `${override}/`;
  const { createRequire } = await importRuntime<{ createRequire(from: string): NodeJS.Require }>('node:module');
  const { dirname } = await importRuntime<{ dirname(path: string): string }>('node:path');
  const require = createRequire(import.meta.url);
  return `${dirname(require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm'))}/`;
}

async function defaultThreads(): Promise<number> {
  const os = await importRuntime<{ availableParallelism?: () => number; cpus(): unknown[] }>('node:os');
  return Math.min(WASM_MAX_THREADS, os.availableParallelism?.() ?? os.cpus().length);
}

async function setupWasm(options: SetupBackendOptions): Promise<Omit<BackendInfo, 'requested'>> {
  type WasmModule = typeof import('@tensorflow/tfjs-backend-wasm');
  let wasm: WasmModule | undefined;
  await importBackendPackage('wasm', '@tensorflow/tfjs-backend-wasm', async () => {
    wasm = await import('@tensorflow/tfjs-backend-wasm');
  });
  const backend = wasm as WasmModule;
  const initialised = tf.engine().registry.wasm !== undefined;
  let shim: { finish(): void } | undefined;
  if (!initialised && isNode()) {
    backend.setWasmPaths(await wasmDirectory());
    const threads = options.threads ?? await defaultThreads();
    if (threads > 1) {
      tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', true);
      backend.setThreadsCount(threads);
      shim = await installWasmThreadsShim(threads);
    } else {
      tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
      backend.setThreadsCount(1);
    }
  } else if (!initialised && options.threads !== undefined) {
    backend.setThreadsCount(options.threads);
  }
  try {
    await activate('wasm');
  } finally {
    shim?.finish();
  }
  guardWasmAllocations(); // a full 4 GiB heap: one-line error instead of silent heap corruption
  registerWasmTrainingKernels();
  registerWasmViewKernels(); // Slice/SplitV/Unpack that copy only their output, fast GatherV2/Transpose (perf)
  registerWasmMathKernels(); // fast Erf and the fused GELU gate (perf)
  registerWasmFftKernels(); // the long convolution as a SIMD FFT (used once the helpers below bind its module)
  registerWasmGemmKernels(); // block-diagonal and Monarch products (likewise)
  const threads = backend.getThreadsCount();
  await startWasmHelpers(threads); // our JavaScript kernels' loops on every thread (wasm-parallel.ts)
  const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
  const features = [simd ? 'SIMD' : 'no SIMD', `${threads} thread${threads === 1 ? '' : 's'}`];
  return { name: 'wasm', threads, description: `wasm (${features.join(', ')})` };
}

async function setupWebGpu(): Promise<Omit<BackendInfo, 'requested'>> {
  const probe = await probeWebGpu();
  if (probe.adapter === undefined) {
    throw new BackendError(`Backend "webgpu" is unavailable: ${probe.reason}; choose --backend wasm or cpu.`, { parameter: 'backend', value: 'webgpu' });
  }
  // Imported only now: it registers itself only if navigator.gpu exists at import time.
  await importBackendPackage('webgpu', '@tensorflow/tfjs-backend-webgpu', () => import('@tensorflow/tfjs-backend-webgpu'));
  if (tf.findBackendFactory('webgpu') === null) {
    throw new BackendError('Backend "webgpu" is not registered: @tensorflow/tfjs-backend-webgpu was imported before navigator.gpu existed; let setupBackend import it.', { parameter: 'backend', value: 'webgpu' });
  }
  // Small CPU-resident inputs would otherwise run on the cpu backend, costing a GPU→CPU read each time.
  tf.env().set('WEBGPU_CPU_FORWARD', false);
  await activate('webgpu');
  // WebGPU allows 65535 workgroups per dispatch dimension: very tall matMuls and 2-D transposes are re-shaped.
  registerWebGpuDispatchGuards('webgpu');
  registerWebGpuKernels(); // the fused WGSL kernels (long convolution, mixer core, short conv, LayerNorm, GELU gate)
  return { name: 'webgpu', description: `webgpu (${probe.adapter})` };
}

async function setupTensorflow(): Promise<Omit<BackendInfo, 'requested'>> {
  if (!isNode()) {
    throw new BackendError('Backend "tensorflow" runs only in Node (it is @tensorflow/tfjs-node); choose webgpu, wasm or cpu.', { parameter: 'backend', value: 'tensorflow' });
  }
  const failures: string[] = [];
  for (const specifier of TENSORFLOW_PACKAGES) {
    try {
      await importRuntime(specifier);
    } catch (error) {
      if (!isNotInstalled(error, specifier)) failures.push(`${specifier} failed to load: ${firstLine(error)}`);
      continue;
    }
    await activate('tensorflow');
    const gpu = specifier.endsWith('-gpu');
    return { name: 'tensorflow', description: `tensorflow (${specifier}${gpu ? ', CUDA if it found CUDA 11.2 + cuDNN 8.1, else CPU' : ', CPU'})` };
  }
  if (failures.length > 0) throw new BackendError(`Backend "tensorflow": ${failures.join('; ')}.`, { parameter: 'backend', value: 'tensorflow' });
  throw new BackendError(
    'Backend "tensorflow" needs @tensorflow/tfjs-node or @tensorflow/tfjs-node-gpu (optional peers, not installed): ' +
    'npm install @tensorflow/tfjs-node@4.22.0 for CPU, or @tensorflow/tfjs-node-gpu@4.22.0 for NVIDIA GPUs, which needs CUDA 11.2 + cuDNN 8.1 ' +
    'and silently falls back to the CPU without them.',
    { parameter: 'backend', value: 'tensorflow' },
  );
}

/** The real set-up functions. */
export const defaultBackendSetters: BackendSetters = {
  tensorflow: setupTensorflow,
  webgpu: setupWebGpu,
  wasm: setupWasm,
  cpu: setupCpu,
};

/**
 * {@link setupBackend} with replaceable set-up functions (tests inject fakes to check `auto`'s choice).
 *
 * @param setters - One set-up function per concrete backend.
 * @param name - Backend to set up, or `auto`.
 * @param options - Forwarded to the set-up functions.
 * @returns What was set up.
 * @throws BackendError for an unknown name, or when the backend (for `auto`: every backend) fails.
 */
export async function setupBackendWith(setters: BackendSetters, name: string, options: SetupBackendOptions = {}): Promise<BackendInfo> {
  if (!(BACKEND_NAMES as readonly string[]).includes(name)) {
    throw new BackendError(`Unknown backend "${name}"; expected one of ${BACKEND_NAMES.join(', ')}.`, { parameter: 'backend', value: name });
  }
  if (options.threads !== undefined && (!Number.isInteger(options.threads) || options.threads < 1 || options.threads > WASM_MAX_THREADS)) {
    throw new BackendError(`threads must be an integer in 1…${WASM_MAX_THREADS}, got ${options.threads}.`, { parameter: 'threads', value: options.threads });
  }
  const requested = name as BackendName;
  await registerGradients();
  await silenceNodeBanner();
  if (requested !== 'auto') return { ...await setters[requested](options), requested };
  const reasons: string[] = [];
  for (const candidate of BACKEND_NAMES.slice(1) as Exclude<BackendName, 'auto'>[]) {
    try {
      return { ...await setters[candidate](options), requested };
    } catch (error) {
      if (!(error instanceof BackendError)) throw error;
      reasons.push(`${candidate}: ${error.message}`);
    }
  }
  throw new BackendError(`No backend could be set up (${reasons.join(' | ')}).`, { parameter: 'backend', value: 'auto' });
}

/**
 * Registers tfjs's gradients and chained ops (also in plain Node) and makes `name` the active backend.
 *
 * - `cpu`: pure JavaScript, every kernel.
 * - `wasm`: SIMD; in Node multi-threaded through a small worker shim (`threads`, default the CPU count, ≤ 8),
 *   plus the kernels training needs that tfjs's wasm lacks (UnsortedSegmentSum for embedding gradients).
 * - `webgpu`: browsers' `navigator.gpu`; in Node the `webgpu` package (Dawn) and the Vulkan loader `libvulkan.so.1`.
 * - `tensorflow`: `@tensorflow/tfjs-node-gpu` or else `@tensorflow/tfjs-node`, if you installed one.
 * - `auto` (default): tensorflow if installed, else webgpu if an adapter exists, else wasm, else cpu.
 *
 * @param name - Backend to use.
 * @param options - `threads` for wasm in Node.
 * @returns What was set up, e.g. `{ name: 'wasm', requested: 'auto', threads: 2, description: 'wasm (SIMD, 2 threads)' }`.
 * @throws BackendError (one line) for an unknown name, or when the backend is not installed or has no device.
 * @example
 * const info = await setupBackend('wasm', { threads: 2 });
 * console.log(info.description); // → wasm (SIMD, 2 threads)
 */
export function setupBackend(name: BackendName = 'auto', options: SetupBackendOptions = {}): Promise<BackendInfo> {
  return setupBackendWith(defaultBackendSetters, name, options);
}
