// The committed SIMD binary (wasm-simd-binary.ts) is the current WebAssembly text (wasm-simd-source.ts) compiled by
// wabt: editing the source without regenerating the binary fails here.
import { describe, expect, it } from 'vitest';
import { SIMD_WASM_PLAIN, SIMD_WASM_SHARED } from './wasm-simd-binary.js';
import { compileSimdWat } from '../../scripts/wasm-simd-compile.js';

describe('wasm SIMD kernels binary', () => {
  it('matches its source (regenerate: node --import tsx packages/monarch-core/scripts/build-wasm-simd.ts)', async () => {
    const base64 = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes));
    expect(base64(await compileSimdWat(false))).toBe(SIMD_WASM_PLAIN);
    expect(base64(await compileSimdWat(true))).toBe(SIMD_WASM_SHARED);
  });
});
