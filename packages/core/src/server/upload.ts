/**
 * Uploading a local directory (a Puppet module path, a Chef cookbook repository) to a host through
 * any CommandChannel: files go to a private staging directory as the channel's user, then are
 * installed into place as root, keeping the tree's layout.
 */
import { randomUUID } from 'node:crypto';
import { readFile, readdir } from 'node:fs/promises';
import { join, relative } from 'node:path';
import type { CommandChannel } from '../config-manager.js';
import { ArmadaError, ValidationError } from '../errors.js';

const shellWord = (text: string) => `'${text.replaceAll("'", `'\\''`)}'`;

async function filesUnder(directory: string): Promise<string[]> {
  const entries = await readdir(directory, { withFileTypes: true, recursive: true });
  return entries.filter((entry) => entry.isFile()).map((entry) => join(entry.parentPath, entry.name));
}

/** Replaces `remoteDirectory` on the host with the contents of `localDirectory`. Returns the relative paths uploaded. */
export async function uploadDirectory(channel: CommandChannel, localDirectory: string, remoteDirectory: string): Promise<string[]> {
  let files: string[];
  try {
    files = await filesUnder(localDirectory);
  } catch (error) {
    throw new ValidationError(`Cannot read ${localDirectory}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, {
      issues: [{ path: localDirectory, message: 'not a readable directory', fix: 'give the path of your module or cookbook directory' }],
    });
  }
  const staging = `/tmp/armada-${randomUUID()}`;
  await channel.exec(`mkdir -m 0700 ${staging}`);
  try {
    const paths = files.map((file) => relative(localDirectory, file));
    for (const [index, file] of files.entries()) await channel.upload(await readFile(file), `${staging}/${index}`, { mode: 0o644 });
    const installs = paths.map((path, index) => `install -D -m 644 ${staging}/${index} ${shellWord(`${remoteDirectory}/${path}`)}`);
    const result = await channel.exec([`rm -rf ${shellWord(remoteDirectory)}`, `mkdir -p ${shellWord(remoteDirectory)}`, ...installs].join(' && '), { sudo: true });
    if (result.exitCode !== 0) throw new ArmadaError('Unknown', `Installing ${localDirectory} into ${remoteDirectory} on ${channel.description} failed: ${result.stderr.trim()}`);
    return paths.sort();
  } finally {
    await channel.exec(`rm -rf ${staging}`);
  }
}

/** Values (`instance.output` -> text) as names a fact or attribute can carry: `data-1.privateIp` -> `data_1_privateip`. */
export function valueNames(values: ReadonlyMap<string, string> | Record<string, string>): Record<string, string> {
  const entries = values instanceof Map ? [...values.entries()] : Object.entries(values);
  return Object.fromEntries(entries.map(([key, value]) => [key.toLowerCase().replace(/[^a-z0-9]+/g, '_'), value]));
}
