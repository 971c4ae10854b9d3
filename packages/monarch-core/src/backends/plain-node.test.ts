// setupBackend in plain Node (as the m2 CLI runs it), where tfjs-core's gradients need our resolve hook.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { TFJS_ESM_HOOKS_SOURCE } from './esm-hooks-source.js';

const child = fileURLToPath(new URL('./__fixtures__/plain-node-child.ts', import.meta.url));

/** Runs the child under plain Node (tsx only strips types) with a clean environment (no VITEST). */
function runChild(...args: string[]): Promise<{ stdout: string; stderr: string; code: number | null }> {
  const env = { ...process.env };
  delete env.VITEST;
  delete env.VITEST_POOL_ID;
  delete env.VITEST_WORKER_ID;
  delete env.NODE_OPTIONS;
  const proc = spawn(process.execPath, ['--conditions=@monarch-mixer/source', '--import', 'tsx', child, ...args], { env });
  let stdout = '';
  let stderr = '';
  proc.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
  proc.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  return new Promise((resolve) => proc.on('close', (code) => resolve({ stdout, stderr, code })));
}

describe('setupBackend in plain Node', () => {
  it('registers gradients, chained ops and the embedding gradient on cpu, without the tfjs-node banner', async () => {
    const { stdout, stderr, code } = await runChild('cpu');
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).not.toContain('tfjs-node');
    const result = JSON.parse(stdout);
    expect(result.info).toEqual({ name: 'cpu', requested: 'cpu', description: 'cpu (pure JavaScript)' });
    expect(result.grad).toEqual([2, -4, 6]);
    expect(result.chained).toBe(10);
    // Rows 2, 0, 2 were gathered: row 0 receives [3, 4], row 2 receives [1, 2] + [5, 6].
    expect(result.embeddingGrad).toEqual([3, 4, 0, 0, 6, 8]);
  });

  it('inlines exactly the hook file tfjs-esm-hooks.mjs', () => {
    const file = readFileSync(fileURLToPath(new URL('./tfjs-esm-hooks.mjs', import.meta.url)), 'utf8');
    expect(TFJS_ESM_HOOKS_SOURCE).toBe(file);
  });
});
