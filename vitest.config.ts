import { defineConfig } from 'vitest/config';

// Tests run on the TypeScript sources: the `source` export condition points each workspace
// package at its src/index.ts, so `pnpm test` needs no build step.
export default defineConfig({
  resolve: { conditions: ['source'] },
  ssr: { resolve: { conditions: ['source'] } },
  test: {
    include: ['packages/*/test/**/*.test.ts', 'examples/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
