import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Two test files at a time: most wait on spawned servers, etcd and
    // fsyncs, not on a CPU. On the 2-core CI machine the suite takes ~375 s
    // this way against ~600 s with vitest's default there (cores - 1 = 1).
    maxWorkers: 2,
  },
});
