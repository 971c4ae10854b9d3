import { defineProject } from 'vitest/config';

export default defineProject({
  resolve: { conditions: ['@monarch-mixer/source'] },
  ssr: { resolve: { conditions: ['@monarch-mixer/source'] } },
  test: {
    name: 'bench',
    include: ['src/**/*.test.ts'],
    setupFiles: ['../../packages/monarch-core/test/setup.ts'],
    testTimeout: 300_000,
    hookTimeout: 300_000,
  },
});
