import { defineConfig } from 'vitest/config';

/** `npm run test:torture`: the torture suite's long profile, by hand (docs/torture.md). */
export default defineConfig({
  test: {
    include: ['test/torture/**/*.torture.ts'],
    pool: 'forks',
    maxWorkers: 1,
    testTimeout: 60 * 60_000,
    hookTimeout: 60_000,
    reporters: ['default'],
  },
});
