import { defineConfig } from 'vitest/config';

/**
 * Media tests with real clients: ffmpeg publishing, ffprobe reading, hls.js
 * and dash.js playing in Chromium (`npm run test:media` installs them
 * first). One file at a time: each one runs ffmpeg encoders, and the
 * machine's cores are the limit.
 */
export default defineConfig({
  test: {
    include: ['test/**/*.media.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    fileParallelism: false,
  },
});
