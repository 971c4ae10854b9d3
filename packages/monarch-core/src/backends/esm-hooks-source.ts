// The text of ./tfjs-esm-hooks.mjs, inlined so that it survives `tsc -b` (which copies no .mjs files) and bundlers.
// Keep the two identical: esm-hooks-source.test.ts compares them.

/** Source of the Node module-resolution hooks that let plain Node load tfjs-core's extensionless ESM files. */
export const TFJS_ESM_HOOKS_SOURCE = `// Node module-resolution hooks for TensorFlow.js's ESM files (registered by register-gradients.ts).
// tfjs-core 4.22.0 ships its gradient registrations only as ESM files whose internal imports have no
// file extension (\`./gradients/Abs_grad\`), and some of them name both a file and a folder
// (\`./gradients\` and \`./gradients.js\`). Browsers' bundlers resolve these; plain Node does not.
// This hook adds the \`.js\` extension for relative imports made from inside @tensorflow packages.
import { existsSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const TFJS = /[\\\\/]@tensorflow[\\\\/]tfjs-[a-z-]+[\\\\/]dist[\\\\/]/;

export async function resolve(specifier, context, nextResolve) {
  const parent = context.parentURL;
  if (parent && parent.startsWith('file:') && TFJS.test(parent) && specifier.startsWith('.') && !specifier.endsWith('.js')) {
    const url = new URL(specifier + '.js', parent);
    const path = fileURLToPath(url);
    if (existsSync(path) && statSync(path).isFile()) {
      return { url: url.href, format: 'module', shortCircuit: true };
    }
  }
  return nextResolve(specifier, context);
}

export async function load(url, context, nextLoad) {
  if (url.startsWith('file:') && TFJS.test(url) && url.endsWith('.js') && !/tf-[a-z-]+\\.node\\.js$|\\.min\\.js$/.test(url) && !url.includes('/node_modules/@tensorflow/tfjs-core/dist/tf-core')) {
    // tfjs's dist/*.js modules are ESM in packages that do not declare "type": "module".
    if (context.format === undefined || context.format === 'commonjs') return nextLoad(url, { ...context, format: 'module' });
  }
  return nextLoad(url, context);
}
`;
