import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Tests that spawn daemons and redis-servers are I/O bound; forks isolate their globals and timers.
    pool: 'forks',
    // Most of a test file's time is spent waiting on polls, timers and child processes, so twice as
    // many files as cores run at once: the suite takes about 2 minutes instead of 7 on 2 cores.
    maxWorkers: 4,
    testTimeout: 30_000,
    hookTimeout: 30_000,
    reporters: ['default'],
  },
});
