// Compiles the SIMD kernels' WebAssembly text with wabt (dev tool: the build script and the test that checks the
// committed binary; nothing imports this at run time).
import { fftWat } from '../src/backends/wasm-fft-source.js';
import { gemmWat } from '../src/backends/wasm-gemm-source.js';
import { simdWat } from '../src/backends/wasm-simd-source.js';

/**
 * The module for one memory variant as bytes.
 * @param shared - Import a shared memory (threaded tfjs-wasm).
 * @returns The wasm binary.
 */
export async function compileSimdWat(shared: boolean): Promise<Uint8Array> {
  return compileWat(`m2-simd-${shared ? 'shared' : 'plain'}.wat`, simdWat(shared));
}

/**
 * The FFT long-convolution module (wasm-fft-source.ts) for one memory variant as bytes.
 * @param shared - Import a shared memory (threaded tfjs-wasm).
 * @returns The wasm binary.
 */
export async function compileFftWat(shared: boolean): Promise<Uint8Array> {
  return compileWat(`m2-fft-${shared ? 'shared' : 'plain'}.wat`, fftWat(shared));
}

/**
 * The block-diagonal / Monarch product module (wasm-gemm-source.ts) for one memory variant as bytes.
 * @param shared - Import a shared memory (threaded tfjs-wasm).
 * @returns The wasm binary.
 */
export async function compileGemmWat(shared: boolean): Promise<Uint8Array> {
  return compileWat(`m2-gemm-${shared ? 'shared' : 'plain'}.wat`, gemmWat(shared));
}

/** WebAssembly text (SIMD, threads) → validated binary. */
async function compileWat(name: string, text: string): Promise<Uint8Array> {
  const wabt = await (await import('wabt')).default();
  const module = wabt.parseWat(name, text, { simd: true, threads: true });
  try {
    // (wabt.js's validate() rejects shared memories even with `threads`; WebAssembly.compile validates instead.)
    const bytes = new Uint8Array(module.toBinary({}).buffer);
    await WebAssembly.compile(bytes);
    return bytes;
  } finally {
    module.destroy();
  }
}
