/**
 * Builds (or finds) the cached Debian 12 host image, printing progress: what `.ci/run` calls
 * before the tests, so no test waits minutes in a hook for debootstrap.
 *   pnpm exec tsx --conditions=source packages/testkit/src/real-hosts/build-image-cli.ts
 */
import { debianImage, type ImageProgress } from './image.js';
import { realHostSupport } from './support.js';

const support = realHostSupport();
if (!support.ok) {
  console.error(`this machine cannot run real hosts; missing:\n${support.missing.map((line) => `  - ${line}`).join('\n')}`);
  process.exit(1);
}

const seen = new Set<string>();
const started = performance.now();
const report = (progress: ImageProgress) => {
  // A phase's first package and every 25th: progress a CI log can show without flooding it.
  if (!seen.has(progress.phase) || progress.count % 25 === 0) {
    seen.add(progress.phase);
    console.log(`  ${progress.phase.padEnd(12)} ${String(progress.count).padStart(4)}  ${progress.message}`);
  }
};
const image = await debianImage({ onProgress: report });
const seconds = ((performance.now() - started) / 1000).toFixed(1);
console.log(image.built ? `built ${image.root} in ${seconds} s` : `cached: ${image.root}`);
