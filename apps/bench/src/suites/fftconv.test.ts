import { describe, expect, it } from 'vitest';
import { runFftconvSuite } from './fftconv.js';

describe('bench fftconv', () => {
  it('checks monarch against tf.spectral and writes the issue schema', async () => {
    const lines: string[] = [];
    const rows = await runFftconvSuite({ lengths: [16, 24], batch: 2, channels: 3, repeats: 1, spectralMaxLength: 16, log: (l) => lines.push(l) });
    expect(rows.map((r) => Object.keys(r))).toEqual(Array(2).fill(['backend', 'L', 'monarch_fwd_ms', 'monarch_fwdbwd_ms', 'stock_fwd_ms', 'stock_fwdbwd_ms', 'spectral_fwd_ms']));
    expect(rows[0].spectral_fwd_ms).toBeGreaterThan(0);
    expect(rows[1].spectral_fwd_ms).toBeNull();
    expect(lines.some((l) => /check L=16: .* relative L2 \d/.test(l))).toBe(true);
  });
});
