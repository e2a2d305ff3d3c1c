/**
 * What `~/.ssh/config` says of a host, as `ssh` would read it (Host patterns, first value wins):
 * HostName, User, Port, IdentityFile and ProxyJump, the settings a user expects a migration to
 * honour when it connects to a server the way they do. Parsed with `ssh-config`.
 */
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { parse as parseSshConfig } from 'ssh-config';
import { ValidationError } from '../errors.js';

export interface SshHostConfig {
  hostName?: string;
  user?: string;
  port?: number;
  /** The first IdentityFile, `~` expanded. */
  identityFile?: string;
  /** `[user@]host[:port]`, the first hop only. */
  proxyJump?: string;
}

const expand = (path: string, home: string) => (path.startsWith('~/') ? join(home, path.slice(2)) : path);
const first = (value: string | string[] | undefined) => (Array.isArray(value) ? value[0] : value);

/** The settings for `host` in an ssh_config file; none when the file does not exist. */
export async function sshConfigFor(host: string, path: string, home = homedir()): Promise<SshHostConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new ValidationError(`Cannot read the SSH config ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}.`);
  }
  const computed = parseSshConfig(text).compute(host);
  const hostName = first(computed.HostName);
  const user = first(computed.User);
  const port = first(computed.Port);
  const identityFile = first(computed.IdentityFile);
  const proxyJump = first(computed.ProxyJump)?.split(',')[0];
  return {
    ...(hostName ? { hostName: hostName.replaceAll('%h', host) } : {}),
    ...(user ? { user } : {}),
    ...(port && Number.isInteger(Number(port)) ? { port: Number(port) } : {}),
    ...(identityFile ? { identityFile: expand(identityFile, home) } : {}),
    ...(proxyJump && proxyJump !== 'none' ? { proxyJump } : {}),
  };
}

/** `[user@]host[:port]` of a ProxyJump, split. */
export function parseJump(jump: string): { user?: string; host: string; port?: number } {
  const at = jump.lastIndexOf('@');
  const user = at < 0 ? undefined : jump.slice(0, at);
  const rest = at < 0 ? jump : jump.slice(at + 1);
  const match = /^(.*?)(?::(\d+))?$/.exec(rest);
  const host = match?.[1] ?? rest;
  return { ...(user ? { user } : {}), host, ...(match?.[2] ? { port: Number(match[2]) } : {}) };
}
