import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Tests that spawn daemons and redis-servers are I/O bound; forks isolate their globals and timers.
    pool: 'forks',
    // Most of a test file's time is spent waiting on polls, timers and child processes, so twice as
    // many files as cores run at once (the suite takes about 2 minutes instead of 7 on 2 cores). From the
    // machine, not a constant: a CI runner with 8 cores and a laptop with 2 both get what suits them.
    maxWorkers: 2 * availableParallelism(),
    // Tests wait for conditions, never for time, so a timeout is only a hang detector: generous enough
    // that a machine loaded by other work (scripts/test-under-load.sh) never trips it.
    testTimeout: 120_000,
    hookTimeout: 120_000,
    reporters: ['default'],
  },
});
