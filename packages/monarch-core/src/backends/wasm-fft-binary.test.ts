// The committed FFT long-convolution binary (wasm-fft-binary.ts) is the current WebAssembly text
// (wasm-fft-source.ts) compiled by wabt: editing the source without regenerating the binary fails here.
import { describe, expect, it } from 'vitest';
import { FFT_WASM_PLAIN, FFT_WASM_SHARED } from './wasm-fft-binary.js';
import { compileFftWat } from '../../scripts/wasm-simd-compile.js';

describe('wasm FFT long-convolution binary', () => {
  it('matches its source (regenerate: node --import tsx packages/monarch-core/scripts/build-wasm-simd.ts)', async () => {
    const base64 = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes));
    expect(base64(await compileFftWat(false))).toBe(FFT_WASM_PLAIN);
    expect(base64(await compileFftWat(true))).toBe(FFT_WASM_SHARED);
  });
});
