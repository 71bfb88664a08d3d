import { defineConfig } from 'vitest/config';

/** Tests against real servers (`npm run services:start` first). One file at a time: some restart a broker. */
export default defineConfig({
  test: {
    include: ['test/**/*.services.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    fileParallelism: false,
  },
});
