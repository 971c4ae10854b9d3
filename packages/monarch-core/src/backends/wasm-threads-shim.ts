// Multi-threaded tfjs wasm in Node.
//
// tfjs-backend-wasm 4.22.0 turns threads off in Node (tfjs issue #3830). Its threaded build works there once
// three browser assumptions hold:
//  1. it hands its pthread worker script and its own main script to `Worker` as Blob object URLs, which Node's
//     `worker_threads.Worker` rejects → we keep each Blob's text readable and make `URL.createObjectURL` write
//     it to a temporary file and return that path;
//  2. each worker's first "load" message carries the main-script Blob itself → we swap in the file path;
//  3. the main script is `factory.toString()` of tfjs's Node bundle and refers to that bundle's module-level
//     `require$$N` and `commonjsGlobal` bindings → we define them at the top of the file we write.
// The C++ side also caps XNNPACK's threads at half of `os.cpus().length`, so `os.cpus` reports enough CPUs
// while the backend initialises. The emscripten pool holds 8 workers; they are unref'd once it is up so that
// they do not keep the process alive.
import type { Worker as NodeWorker } from 'node:worker_threads';
import { importRuntime } from './register-gradients.js';

/** Largest thread count the threaded build supports (its emscripten pthread pool size). */
export const WASM_MAX_THREADS = 8;

/** Header defining the tfjs Node bundle's module bindings that the threaded factory's source refers to. */
const FACTORY_PRELUDE =
  'var commonjsGlobal = globalThis, __require = require, require$$0 = require("fs"), require$$1 = require("path"), ' +
  'require$$3 = require("perf_hooks"), require$$4 = require("os");\n';

/** Handle returned by {@link installWasmThreadsShim}. */
export interface WasmThreadsShim {
  /** Call once the wasm backend has initialised (or failed to): restores `os.cpus`, lets the workers idle. */
  finish(): void;
}

interface NodeModules {
  os: { cpus: () => unknown[]; tmpdir: () => string };
  fs: { mkdtempSync: (prefix: string) => string; writeFileSync: (path: string, data: string) => void };
  path: { join: (...parts: string[]) => string };
  workerThreads: { Worker: typeof NodeWorker };
}

let installed: Promise<{ setInitializing: (threads: number) => () => void }> | undefined;

async function loadNodeModules(): Promise<NodeModules> {
  const [os, fs, path, workerThreads] = await Promise.all([
    importRuntime<{ default: NodeModules['os'] }>('node:os'),
    importRuntime<NodeModules['fs']>('node:fs'),
    importRuntime<NodeModules['path']>('node:path'),
    importRuntime<NodeModules['workerThreads']>('node:worker_threads'),
  ]);
  return { os: os.default, fs, path, workerThreads };
}

async function installGlobals(): Promise<{ setInitializing: (threads: number) => () => void }> {
  const { os, fs, path, workerThreads } = await loadNodeModules();
  const blobTexts = new WeakMap<Blob, string>();
  const blobFiles = new WeakMap<Blob, string>();
  let tempDir: string | undefined;
  let fileCount = 0;

  // (1) Blobs built from strings keep their text.
  const NativeBlob = globalThis.Blob;
  class TextBlob extends NativeBlob {
    constructor(parts: BlobPart[] = [], options?: BlobPropertyBag) {
      super(parts, options);
      if (parts.every((part) => typeof part === 'string')) blobTexts.set(this, (parts as string[]).join(''));
    }
  }
  globalThis.Blob = TextBlob as typeof Blob;

  // (1, 3) Object URLs of such Blobs become temporary files.
  const nativeCreateObjectURL = URL.createObjectURL.bind(URL);
  URL.createObjectURL = (object: Blob | MediaSource): string => {
    const text = object instanceof NativeBlob ? blobTexts.get(object) : undefined;
    if (text === undefined) return nativeCreateObjectURL(object as Blob);
    let file = blobFiles.get(object as Blob);
    if (file === undefined) {
      tempDir ??= fs.mkdtempSync(path.join(os.tmpdir(), 'm2-tfjs-wasm-'));
      file = path.join(tempDir, `script-${fileCount++}.cjs`);
      const isFactory = text.startsWith('var WasmBackendModuleThreadedSimd');
      fs.writeFileSync(file, isFactory ? FACTORY_PRELUDE + text : text);
      blobFiles.set(object as Blob, file);
    }
    return file;
  };

  // (2) The workers' "load" message names the main script by path; workers started later never block exit.
  const workers = new Set<NodeWorker>();
  let initializing = false;
  const Worker = workerThreads.Worker;
  const nativePostMessage = Worker.prototype.postMessage;
  Worker.prototype.postMessage = function (this: NodeWorker, message: unknown, ...rest: never[]) {
    const load = message as { cmd?: unknown; urlOrBlob?: unknown } | null;
    if (load?.cmd === 'load' && load.urlOrBlob instanceof NativeBlob && blobTexts.has(load.urlOrBlob)) {
      message = { ...load, urlOrBlob: URL.createObjectURL(load.urlOrBlob) };
      workers.add(this);
      if (!initializing) this.unref();
    }
    return nativePostMessage.call(this, message, ...rest);
  };

  // CPU count seen by the wasm module while it starts its thread pool.
  const nativeCpus = os.cpus;
  return {
    setInitializing(threads: number) {
      initializing = true;
      os.cpus = () => {
        const cpus = nativeCpus();
        while (cpus.length < 2 * threads) cpus.push(cpus[0]);
        return cpus;
      };
      return () => {
        os.cpus = nativeCpus;
        initializing = false;
        for (const worker of workers) worker.unref();
      };
    },
  };
}

/**
 * Prepares Node for tfjs-backend-wasm's multi-threaded build with `threads` threads.
 *
 * Call before `tf.setBackend('wasm')`, together with setting `WASM_HAS_MULTITHREAD_SUPPORT` and
 * `setThreadsCount(threads)`; call `finish()` once the backend has initialised.
 *
 * @param threads - XNNPACK thread count, 2…{@link WASM_MAX_THREADS}.
 * @returns A handle whose `finish()` ends the set-up phase.
 * @example
 * const shim = await installWasmThreadsShim(2);
 * try { await tf.setBackend('wasm'); } finally { shim.finish(); }
 */
export async function installWasmThreadsShim(threads: number): Promise<WasmThreadsShim> {
  installed ??= installGlobals();
  const { setInitializing } = await installed;
  return { finish: setInitializing(threads) };
}
