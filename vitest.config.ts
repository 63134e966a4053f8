import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Builds dist/ first: Node's workers and the package tests load built JavaScript.
    globalSetup: ['test/support/build.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Integration tests start servers and worker pools: two cores, so not too many at once.
    maxWorkers: 2,
  },
});
