// Bundles the GPU entry (tooling/gpu/entry.ts), the m2 CLI (apps/cli/src/main.ts) and the training reference
// (tooling/gpu/training-reference.ts) into single ESM files for the H200 machine, which has Node (carried) but no
// node_modules. Usage: node tooling/gpu/build.mjs OUTDIR
//
// esbuild comes from tsx's dependencies (no extra install). `webgpu` stays external: its dawn.node is carried
// beside the bundle in OUTDIR/node_modules/webgpu. tfjs-node(-gpu) are optional and never bundled.
import { createRequire } from 'node:module';
import { mkdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '../..');
const outDir = resolve(process.argv[2] ?? join(root, '.device'));
const requireFromCli = createRequire(join(root, 'apps/cli/package.json'));
const esbuild = createRequire(requireFromCli.resolve('tsx'))('esbuild');

mkdirSync(outDir, { recursive: true });
const common = {
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  // tfjs packages: take the ESM builds ("module"), which include every side-effect registration.
  mainFields: ['module', 'main'],
  conditions: ['@monarch-mixer/source'],
  external: ['webgpu', '@tensorflow/tfjs-node', '@tensorflow/tfjs-node-gpu'],
  // CommonJS modules inside an ESM bundle still call require() and read __dirname (tfjs-backend-wasm's emscripten
  // glue does, to find its .wasm files: without it the wasm backend fails to initialise).
  banner: {
    js: "import { createRequire as __m2CreateRequire } from 'node:module'; import { fileURLToPath as __m2FileUrlToPath } from 'node:url'; "
      + "const require = __m2CreateRequire(import.meta.url); const __filename = __m2FileUrlToPath(import.meta.url); "
      + "const __dirname = __m2FileUrlToPath(new URL('.', import.meta.url));",
  },
  // Identifiers are not minified: the wasm backend's pthread workers run the emscripten factory's own source text,
  // which must keep esbuild's `__require` name (the threads shim defines it there).
  minifyWhitespace: true,
  minifySyntax: true,
  minifyIdentifiers: false,
  legalComments: 'none',
  logLevel: 'warning',
  // tooling/gpu is no package: resolve its bare imports from the bench app's dependencies.
  nodePaths: [join(root, 'apps/bench/node_modules')],
};
const entries = [
  { in: join(root, 'tooling/gpu/entry.ts'), out: 'gpu-entry.mjs', required: true },
  { in: join(root, 'apps/cli/src/main.ts'), out: 'm2.mjs', required: false },
  // The CPU reference of the training check (run here, not on the device; tooling/gpu is no package, so its bare
  // imports resolve only through this bundle's nodePaths).
  { in: join(root, 'tooling/gpu/training-reference.ts'), out: 'training-reference.mjs', required: false },
];
for (const entry of entries) {
  const outfile = join(outDir, entry.out);
  try {
    await esbuild.build({ ...common, entryPoints: [entry.in], outfile });
    console.log(`bundled ${entry.out}: ${(statSync(outfile).size / 1e6).toFixed(2)} MB`);
  } catch (error) {
    if (entry.required) throw error;
    console.warn(`skipped ${entry.out}: ${String(error.message).split('\n')[0]}`);
  }
}
