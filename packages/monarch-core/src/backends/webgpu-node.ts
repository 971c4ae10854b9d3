// WebGPU in Node through the `webgpu` npm package (Dawn's Node binding).
//
// tfjs-backend-webgpu registers itself only if `navigator.gpu` exists when it is imported, so the Dawn globals
// (GPUBufferUsage, …) and `navigator.gpu` must be in place first. Dawn opens `libvulkan.so.1` at run time; without
// it, or without a Vulkan driver for a GPU, `requestAdapter()` resolves to null.
import { BackendError } from '../errors.js';
import { importRuntime } from './register-gradients.js';

/** What a GPU adapter probe found. */
export interface GpuProbe {
  /** The adapter's description (vendor, architecture, device), when one was found. */
  adapter?: string;
  /** Why there is none, as one line, when none was found. */
  reason?: string;
}

interface DawnModule {
  create(flags: string[]): GPU;
  globals: Record<string, unknown>;
}

let nodeGpu: Promise<GPU> | undefined;

/** Directories the dynamic loader searches for libraries besides its cache (Linux). */
const LIBRARY_DIRS = ['/lib/x86_64-linux-gnu', '/usr/lib/x86_64-linux-gnu', '/lib/aarch64-linux-gnu',
  '/usr/lib/aarch64-linux-gnu', '/lib64', '/usr/lib64', '/lib', '/usr/lib', '/usr/local/lib'];

/**
 * Whether the Vulkan loader `libvulkan.so.1` can be found by the dynamic loader (Linux only; true elsewhere).
 * Looks in LD_LIBRARY_PATH, the usual library folders and the loader cache `/etc/ld.so.cache`.
 */
export async function hasVulkanLoader(): Promise<boolean> {
  if (process.platform !== 'linux') return true;
  const fs = await importRuntime<{ existsSync(path: string): boolean; readFileSync(path: string): Uint8Array }>('node:fs');
  const dirs = [...(process.env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean), ...LIBRARY_DIRS];
  if (dirs.some((dir) => fs.existsSync(`${dir}/libvulkan.so.1`))) return true;
  try {
    return Buffer.from(fs.readFileSync('/etc/ld.so.cache')).includes('libvulkan.so.1');
  } catch {
    return false;
  }
}

/** Folders that hold Vulkan ICD (driver) json files; the first is where NVIDIA's container runtime puts its own. */
const ICD_DIRS = ['/usr/local/nvidia/share/vulkan/icd.d', '/usr/share/vulkan/icd.d', '/etc/vulkan/icd.d', '/usr/local/share/vulkan/icd.d'];

/**
 * A Dawn GPU object with an adapter if one can be had. When the Vulkan loader's default search finds no usable
 * driver (seen on an NVIDIA H200 VM whose /usr/share/vulkan ICD failed while /usr/local/nvidia's worked) and the
 * user set no VK_DRIVER_FILES, each ICD json found is tried in turn through VK_DRIVER_FILES.
 */
async function withDriverFallback(dawn: DawnModule, flags: string[]): Promise<GPU> {
  const gpu = dawn.create(flags);
  const userChoice = process.env.VK_DRIVER_FILES ?? process.env.VK_ICD_FILENAMES;
  if (process.platform !== 'linux' || userChoice !== undefined || flags.some((flag) => flag.startsWith('backend='))) return gpu;
  if (await gpu.requestAdapter().catch(() => null)) return gpu;
  const fs = await importRuntime<{ readdirSync(path: string): string[] }>('node:fs');
  const candidates = ICD_DIRS.flatMap((dir) => {
    try {
      return fs.readdirSync(dir).filter((name) => name.endsWith('.json')).map((name) => `${dir}/${name}`);
    } catch {
      return [];
    }
  });
  for (const file of candidates) {
    process.env.VK_DRIVER_FILES = file;
    const candidate = dawn.create(flags);
    if (await candidate.requestAdapter().catch(() => null)) return candidate;
  }
  delete process.env.VK_DRIVER_FILES;
  return gpu;
}

/**
 * Installs Dawn's WebGPU globals and `navigator.gpu` in Node, once. Flags come from `M2_WEBGPU_FLAGS`
 * (comma-separated Dawn toggles such as `backend=vulkan`).
 *
 * @returns The `navigator.gpu` object.
 * @throws BackendError when the `webgpu` package is not installed.
 */
export function installNodeWebGpu(): Promise<GPU> {
  nodeGpu ??= (async () => {
    let dawn: DawnModule;
    try {
      dawn = await import('webgpu') as unknown as DawnModule;
    } catch (error) {
      nodeGpu = undefined;
      throw new BackendError(`Backend "webgpu" in Node needs the "webgpu" package (Dawn): npm install webgpu@0.6.2 (${firstLine(error)}).`, { parameter: 'backend', value: 'webgpu' });
    }
    Object.assign(globalThis, dawn.globals);
    const flags = (process.env.M2_WEBGPU_FLAGS ?? '').split(',').map((flag) => flag.trim()).filter(Boolean);
    const gpu = await withDriverFallback(dawn, flags);
    const existing = (globalThis as { navigator?: object }).navigator;
    Object.defineProperty(globalThis, 'navigator', {
      value: Object.assign(Object.create(existing ?? null) as object, { gpu }),
      configurable: true,
      writable: true,
    });
    return gpu;
  })();
  return nodeGpu;
}

/**
 * Looks for a WebGPU adapter: in browsers through `navigator.gpu`, in Node through Dawn.
 *
 * @returns `{ adapter }` naming the adapter, or `{ reason }` saying in one line why there is none.
 */
export async function probeWebGpu(): Promise<GpuProbe> {
  const inNode = typeof process !== 'undefined' && typeof process.versions?.node === 'string';
  let gpu: GPU | undefined;
  if (inNode) {
    // Checked first: Dawn would otherwise print its own warning before returning no adapter.
    const nullBackend = (process.env.M2_WEBGPU_FLAGS ?? '').includes('backend=null');
    if (!nullBackend && !(await hasVulkanLoader())) {
      return { reason: 'no GPU adapter: the Vulkan loader libvulkan.so.1 is missing (install libvulkan1 and your GPU\'s Vulkan driver)' };
    }
    try {
      gpu = await installNodeWebGpu();
    } catch (error) {
      return { reason: firstLine(error) };
    }
  } else {
    gpu = (globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu;
    if (gpu === undefined) return { reason: 'this browser has no WebGPU (navigator.gpu is missing)' };
  }
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' }).catch(() => null);
  if (adapter === null) {
    const hint = inNode && process.platform === 'linux' && !process.env.VK_DRIVER_FILES
      ? '; if a GPU driver is installed, point VK_DRIVER_FILES at its Vulkan ICD json (e.g. nvidia_icd.json)' : '';
    return { reason: `no GPU adapter found (Dawn found no Vulkan device with a usable driver${hint})` };
  }
  const info = adapter.info;
  const description = [info?.vendor, info?.architecture, info?.device, info?.description].filter(Boolean).join(' ');
  return { adapter: description || 'unnamed adapter' };
}

/** First line of an error's message. */
export function firstLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.split('\n')[0].trim();
}
