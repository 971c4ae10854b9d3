import { defineConfig } from 'vite';

export default defineConfig({
  resolve: { conditions: ['@monarch-mixer/source'] },
  build: { outDir: 'dist', target: 'es2022', chunkSizeWarningLimit: 4000 },
  preview: { host: '127.0.0.1' },
  server: { host: '127.0.0.1' },
});
