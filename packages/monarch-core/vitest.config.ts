import { defineProject } from 'vitest/config';

export default defineProject({
  resolve: { conditions: ['@monarch-mixer/source'] },
  ssr: { resolve: { conditions: ['@monarch-mixer/source'] } },
  test: {
    name: 'monarch-core',
    include: ['src/**/*.test.ts'],
    setupFiles: ['../../packages/monarch-core/test/setup.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
