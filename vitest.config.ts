import { configDefaults, defineConfig } from 'vitest/config';

// Tests run on the TypeScript sources: the `source` export condition points each workspace
// package at its src/index.ts, so `pnpm test` needs no build step.
// Under CI a JSON report is also written, from which .ci/run prints its closing count line.

/** Tests that change this machine (puppet apply, files under /etc/armada): one file at a time. */
const hostTests = ['packages/config-puppet/test/**/*.test.ts', 'packages/config-chef/test/**/*.test.ts', 'examples/test/host/**/*.test.ts'];
/**
 * Tests whose instances are real hosts (network namespaces, a Debian root each, nftables): one
 * file at a time, as each boots several hosts on a two-core machine. The image is built by
 * .ci/run before the tests; a machine that cannot run real hosts fails them, never skips.
 */
const realHostTests = ['packages/*/test/real-hosts/**/*.test.ts', 'examples/test/real-hosts/**/*.test.ts'];

export default defineConfig({
  resolve: { conditions: ['source'] },
  ssr: { resolve: { conditions: ['source'] } },
  test: {
    testTimeout: 30_000,
    hookTimeout: 60_000,
    reporters: process.env.CI ? ['default', ['json', { outputFile: '.ci/out/vitest.json' }]] : ['default'],
    projects: [
      {
        extends: true,
        test: { name: 'unit and wire', include: ['packages/*/test/**/*.test.ts', 'examples/**/*.test.ts'], exclude: [...configDefaults.exclude, ...hostTests, ...realHostTests] },
      },
      {
        extends: true,
        // Puppet holds a global run lock, and these tests share /etc/armada: never in parallel.
        // Each `puppet apply` starts Ruby and Facter: seconds apiece, many more on a busy machine.
        test: { name: 'on this host', include: hostTests, exclude: [...configDefaults.exclude, ...realHostTests], fileParallelism: false, sequence: { groupOrder: 1 }, testTimeout: 120_000 },
      },
      {
        extends: true,
        test: { name: 'on real hosts', include: realHostTests, fileParallelism: false, sequence: { groupOrder: 2 }, testTimeout: 120_000, hookTimeout: 300_000 },
      },
    ],
  },
});
