import { defineProject } from 'vitest/config';

export default defineProject({
  resolve: { conditions: ['@monarch-mixer/source'] },
  ssr: { resolve: { conditions: ['@monarch-mixer/source'] } },
  test: {
    name: 'm2-layers',
    include: ['src/**/*.test.ts'],
    setupFiles: ['../../packages/monarch-core/test/setup.ts'],
    testTimeout: 120_000,
    isolate: false, // one tfjs set-up (gradient registration) per worker instead of per file
    hookTimeout: 120_000,
  },
});
