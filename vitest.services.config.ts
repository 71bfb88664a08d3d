import { existsSync, readFileSync } from 'node:fs';
import { defineConfig } from 'vitest/config';

/**
 * The connection settings `npm run services:start` wrote, for tests run
 * without exporting them by hand (variables already set win).
 */
function servicesEnv(): Record<string, string> {
  const file = `${process.env.STREAMS_SERVICES_DIR ?? '/tmp/ami-streams-services'}/env.sh`;
  if (!existsSync(file)) return {};
  const env: Record<string, string> = {};
  for (const match of readFileSync(file, 'utf8').matchAll(/^export (STREAMS_[A-Z0-9_]+)=(.*)$/gm)) {
    env[match[1]] = process.env[match[1]] ?? match[2].replace(/^'(.*)'$/, '$1');
  }
  return env;
}

/** Tests against real servers (`npm run services:start` first). One file at a time: some restart a server. */
export default defineConfig({
  test: {
    include: ['test/**/*.services.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    fileParallelism: false,
    env: servicesEnv(),
  },
});
