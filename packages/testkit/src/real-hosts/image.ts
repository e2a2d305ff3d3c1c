/**
 * The portable image `debian-12` as a real root filesystem: Debian 12 (bookworm) built once by
 * `debootstrap` from Debian's packages and cached, shared read-only by every host as the lower
 * layer of its own copy-on-write overlay.
 *
 * The cache key is a hash of the recipe (suite, packages, the steps after debootstrap), so a
 * changed recipe builds a new image beside the old one instead of reusing a stale root. Two
 * processes asking at once build it once: the second waits on the first's lock (core's
 * `localLock`; a lock whose process is gone is taken over).
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { localLock } from '@armada/core';
import { mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { run } from './shell.js';

/** What every host needs (sshd, tini as PID 1, sudo for the login user) and what the story's policies install. */
export const DEBIAN_12_PACKAGES: readonly string[] = [
  'openssh-server',
  'sudo',
  'tini',
  'iproute2',
  'procps',
  'ca-certificates',
  'curl',
  'netcat-openbsd',
  'git',
  // Config managers converge on the hosts: Puppet 7 from Debian (Chef has no Debian 12 package).
  'puppet',
  // The story's services, preinstalled because the hosts cannot reach Debian's archive: Puppet's
  // `package` resources find them installed. PHP is Debian's 8.2 and Java Debian's 17: Sury's PHP 5.6
  // and Adoptium's Java 8 repositories cannot be reached offline.
  'openjdk-17-jre-headless',
  'nginx',
  'php-fpm',
  'php-mysql',
  'php-curl',
  'php-mbstring',
  'mariadb-server',
  'redis-server',
];

/** Bumped when the steps after debootstrap change: part of the cache key (with the package list). */
const RECIPE_VERSION = 1;

export interface ImageProgress {
  /** debootstrap's own phases, then Armada's finishing step. */
  phase: 'retrieving' | 'validating' | 'extracting' | 'unpacking' | 'configuring' | 'finishing' | 'done';
  /** Packages through this phase so far. */
  count: number;
  message: string;
}

export interface DebianImageOptions {
  /** Where images are kept; default `$ARMADA_IMAGE_CACHE` or /var/cache/armada/images. */
  cacheDir?: string;
  packages?: readonly string[];
  /** Debian's archive; default `$ARMADA_DEBIAN_MIRROR` or http://deb.debian.org/debian. */
  mirror?: string;
  onProgress?: (progress: ImageProgress) => void;
}

export interface HostImage {
  name: 'debian-12';
  /** The root filesystem (read-only to hosts: the lower layer of their overlays). */
  root: string;
  packages: readonly string[];
  /** Built by this call (false: found in the cache). */
  built: boolean;
}

export function imageCacheDir(options: Pick<DebianImageOptions, 'cacheDir'> = {}): string {
  return options.cacheDir ?? process.env.ARMADA_IMAGE_CACHE ?? '/var/cache/armada/images';
}

function imageKey(packages: readonly string[]): string {
  const recipe = JSON.stringify({ suite: 'bookworm', variant: 'minbase', packages: [...packages].sort(), RECIPE_VERSION });
  return `debian-12-${createHash('sha256').update(recipe).digest('hex').slice(0, 12)}`;
}

const PHASES: Record<string, ImageProgress['phase']> = {
  Retrieving: 'retrieving',
  Validating: 'validating',
  Extracting: 'extracting',
  Unpacking: 'unpacking',
  Configuring: 'configuring',
};

async function debootstrap(target: string, packages: readonly string[], mirror: string, onProgress?: (progress: ImageProgress) => void): Promise<void> {
  const args = ['--variant=minbase', `--include=${packages.join(',')}`, 'bookworm', target, mirror];
  const child = spawn('debootstrap', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const counts = new Map<string, number>();
  const tail: string[] = [];
  const remember = (line: string) => {
    tail.push(line);
    if (tail.length > 20) tail.shift();
  };
  createInterface({ input: child.stdout }).on('line', (line) => {
    remember(line);
    const match = /^I: (Retrieving|Validating|Extracting|Unpacking|Configuring) (.+?)(\.\.\.)?$/.exec(line);
    const phase = match ? PHASES[match[1] as string] : undefined;
    if (!phase || !match) return;
    const count = (counts.get(phase) ?? 0) + 1;
    counts.set(phase, count);
    onProgress?.({ phase, count, message: match[2] as string });
  });
  createInterface({ input: child.stderr }).on('line', remember);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', resolve);
  });
  if (code !== 0) throw new Error(`debootstrap of Debian 12 failed (exit ${code}); its last lines:\n${tail.join('\n')}`);
}

/**
 * After debootstrap: what makes one root fit many hosts. Host keys and the machine id are made
 * per host at first boot (as cloud-init does), so none may be baked into the shared image.
 */
async function finish(root: string): Promise<void> {
  await run('sh', ['-c', 'rm -f "$1"/etc/ssh/ssh_host_* && : > "$1"/etc/machine-id && rm -rf "$1"/var/cache/apt/archives/*.deb "$1"/var/lib/apt/lists/*', 'finish', root]);
  // No service starts during a package's installation inside a host (there is no init to ask).
  await writeFile(join(root, 'usr/sbin/policy-rc.d'), '#!/bin/sh\nexit 101\n', { mode: 0o755 });
}

/**
 * The cached Debian 12 image, built first if it is not there (about two minutes and 900 MB with
 * the story's services; later calls return at once).
 */
export async function debianImage(options: DebianImageOptions = {}): Promise<HostImage> {
  const packages = options.packages ?? DEBIAN_12_PACKAGES;
  const cacheDir = imageCacheDir(options);
  const key = imageKey(packages);
  const finalDir = join(cacheDir, key);
  const ready = () => existsSync(join(finalDir, 'ready'));
  if (ready()) return { name: 'debian-12', root: join(finalDir, 'root'), packages, built: false };

  await mkdir(cacheDir, { recursive: true });
  // One builder per image on this machine: core's local lock (O_EXCL file, a dead holder's taken over).
  const lease = await localLock({ directory: cacheDir }).acquire(key, {
    operation: `build the ${key} image`,
    waitMs: 30 * 60_000,
    onWait: (holder) => options.onProgress?.({ phase: 'retrieving', count: 0, message: `waiting for ${holder?.owner ?? 'another process'}, which is building ${key}` }),
  });
  try {
    if (ready()) return { name: 'debian-12', root: join(finalDir, 'root'), packages, built: false };
    // Earlier attempts that died half way: their directories are this key's own.
    for (const entry of await readdir(cacheDir)) if (entry.startsWith(`${key}.building`)) await rm(join(cacheDir, entry), { recursive: true, force: true });
    const building = join(cacheDir, `${key}.building-${process.pid}`);
    await rm(finalDir, { recursive: true, force: true });
    await mkdir(building, { recursive: true });
    await debootstrap(join(building, 'root'), packages, options.mirror ?? process.env.ARMADA_DEBIAN_MIRROR ?? 'http://deb.debian.org/debian', options.onProgress);
    options.onProgress?.({ phase: 'finishing', count: 0, message: 'removing baked-in host keys and machine id' });
    await finish(join(building, 'root'));
    await writeFile(join(building, 'ready'), `${JSON.stringify({ packages, builtAt: new Date().toISOString() })}\n`);
    await rename(building, finalDir);
    options.onProgress?.({ phase: 'done', count: packages.length, message: finalDir });
    return { name: 'debian-12', root: join(finalDir, 'root'), packages, built: true };
  } finally {
    await lease.release();
  }
}
