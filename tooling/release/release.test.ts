// The release flow, dry-run: `changeset version` on a sample changeset (in a throw-away clone), then every
// package is built, packed with `pnpm pack` and installed from the tarballs into an empty project, where its
// README example runs in plain Node.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const repo = join(import.meta.dirname, '..', '..');
const packages = readdirSync(join(repo, 'packages')).filter((p) => existsSync(join(repo, 'packages', p, 'package.json')));
const scratch = mkdtempSync(join(tmpdir(), 'm2-release-'));
const run = (cmd: string, args: string[], cwd: string) =>
  execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, CI: 'true' } });

afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** The first ```js block under the README's "## Example" heading. */
function readmeExample(pkg: string): string {
  const readme = readFileSync(join(repo, 'packages', pkg, 'README.md'), 'utf8');
  const section = readme.split(/^## Example/m)[1];
  const block = section?.match(/```js\n([\s\S]*?)```/);
  if (!block) throw new Error(`packages/${pkg}/README.md has no "## Example" section with a js code block`);
  return block[1];
}

describe('release dry run', () => {
  it('the API docs build with no TypeDoc warnings (pnpm run docs)', () => {
    // TypeDoc reads the packages through their project references, which need the built declarations.
    run('npx', ['turbo', 'run', 'build', '--output-logs=errors-only'], repo);
    run(join(repo, 'docs', 'node_modules', '.bin', 'typedoc'), ['--treatWarningsAsErrors', '--out', join(scratch, 'api')], join(repo, 'docs'));
    expect(existsSync(join(scratch, 'api', 'index.html'))).toBe(true);
  });

  it('changeset version bumps a package and writes its changelog', () => {
    const clone = join(scratch, 'clone');
    run('git', ['clone', '--quiet', '--no-hardlinks', repo, clone], scratch);
    run('git', ['checkout', '-q', '-B', 'main'], clone);
    writeFileSync(join(clone, '.changeset', 'dry-run-sample.md'), '---\n"@monarch-mixer/monarch-core": minor\n---\n\nA sample change for the release dry run.\n');
    const before = JSON.parse(readFileSync(join(clone, 'packages/monarch-core/package.json'), 'utf8')).version as string;
    run(join(repo, 'node_modules', '.bin', 'changeset'), ['version'], clone);
    const after = JSON.parse(readFileSync(join(clone, 'packages/monarch-core/package.json'), 'utf8')).version as string;
    const [major, minor] = before.split('.').map(Number);
    expect(after).toBe(`${major}.${minor + 1}.0`);
    expect(readFileSync(join(clone, 'packages/monarch-core/CHANGELOG.md'), 'utf8')).toContain('A sample change for the release dry run.');
  });

  it('every package packs, installs from its tarball into an empty project, and runs its README example', () => {
    run('npx', ['turbo', 'run', 'build', '--output-logs=errors-only'], repo);
    const packs = join(scratch, 'packs');
    // pnpm through npx, as the README runs it: a fresh machine has no global pnpm.
    for (const pkg of packages) run('npx', ['-y', 'pnpm@12.4.2', 'pack', '--pack-destination', packs], join(repo, 'packages', pkg));
    const tarballs = readdirSync(packs).map((f) => join(packs, f));
    expect(tarballs).toHaveLength(packages.length);
    const app = join(scratch, 'app');
    run('mkdir', ['-p', app], scratch);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
    run('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', ...tarballs,
      '@tensorflow/tfjs-core@4.22.0', '@tensorflow/tfjs-layers@4.22.0', '@tensorflow/tfjs-backend-cpu@4.22.0'], app);
    for (const pkg of packages) {
      const file = join(app, `${pkg}-example.mjs`);
      writeFileSync(file, readmeExample(pkg));
      const output = run('node', [file], app);
      expect(output.trim().length, `${pkg} README example printed nothing`).toBeGreaterThan(0);
    }
  });
});
