import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The demo and status pages, built once for the tests that serve them.
    globalSetup: ['test/support/build_pages_setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Integration tests start servers and worker pools: two cores, so not too many at once.
    maxWorkers: 2,
  },
});
