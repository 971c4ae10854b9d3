// Test helper for the end-to-end CLI tests: runs `m2 …` as the user runs it (pnpm m2 = node + tsx on main.ts).
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';

/** The repository root. */
export const repo = join(import.meta.dirname, '..', '..', '..');
const main = join(repo, 'apps', 'cli', 'src', 'main.ts');

/** The environment of a user's shell: without vitest's variables (the backends set-up checks VITEST). */
const env = { ...process.env };
for (const key of ['VITEST', 'VITEST_POOL_ID', 'VITEST_WORKER_ID', 'NODE_OPTIONS']) delete env[key];

/**
 * Spawns `m2 <args>` from the repository root and collects its exit code and output (a non-zero exit is returned,
 * not thrown).
 * @param args - Command-line arguments after `m2`.
 * @example
 * const { code, stderr } = await m2('gpt', 'generate', '--model', 'missing');
 */
export async function m2(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(
      process.execPath, ['--conditions=@monarch-mixer/source', '--import', 'tsx', main, ...args],
      { cwd: repo, env, encoding: 'utf8', maxBuffer: 1 << 24 },
    );
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}
