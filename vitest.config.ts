import { defineConfig } from 'vitest/config';

/** The default suite: everything that needs no server. Tests against real servers are `*.services.test.ts`; tests with ffmpeg and Chromium `*.media.test.ts`. */
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    exclude: ['test/**/*.services.test.ts', 'test/**/*.media.test.ts', 'node_modules/**'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
