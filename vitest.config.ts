import { defineConfig } from 'vitest/config';

// Tests run on the TypeScript sources: the `source` export condition points each workspace
// package at its src/index.ts, so `pnpm test` needs no build step.
// Under CI a JSON report is also written, from which .ci/run prints its closing count line.
export default defineConfig({
  resolve: { conditions: ['source'] },
  ssr: { resolve: { conditions: ['source'] } },
  test: {
    include: ['packages/*/test/**/*.test.ts', 'examples/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    reporters: process.env.CI ? ['default', ['json', { outputFile: '.ci/out/vitest.json' }]] : ['default'],
  },
});
