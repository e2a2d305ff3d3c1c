import type { EnvironmentSpecInput } from '@armada/core';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, type CliIO } from '../src/index.js';

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
  /** stdout parsed: the one JSON document of a --json run. */
  json<T = Record<string, unknown>>(): T;
}

/** Runs `armada` in-process with its own streams, environment and working directory. */
export async function armada(argv: string[], io: { env?: CliIO['env']; cwd?: string; tty?: boolean; signal?: AbortSignal } = {}): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(argv, {
    stdout: { write: (chunk: string) => (stdout += chunk), isTTY: io.tty ?? false },
    stderr: { write: (chunk: string) => (stderr += chunk), isTTY: io.tty ?? false },
    env: io.env ?? {},
    ...(io.cwd ? { cwd: io.cwd } : {}),
    ...(io.signal ? { signal: io.signal } : {}),
  });
  return { code, stdout, stderr, json: <T>() => JSON.parse(stdout) as T };
}

/** A line of a stack trace: what a user must never see for their own mistake. */
export const STACK_LINE = /^\s+at .+/m;

export const DEPLOY_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINNNN+naQ04mtUQiKtltKiEhFP2Cg0PPwVJ+CiBH6+IR armada-example-deploy';

/** The story's environment (examples/environments/armada.yaml), smaller, on the given provider. */
export function storySpec(provider: EnvironmentSpecInput['provider'], name = 'armada'): EnvironmentSpecInput {
  return {
    name,
    provider,
    network: {
      name: 'Armada',
      cidr: '10.0.0.0/16',
      subnets: [
        { name: 'public', cidr: '10.0.1.0/24', access: 'public' },
        { name: 'private', cidr: '10.0.2.0/24', access: 'private' },
      ],
    },
    firewalls: [
      {
        name: 'Web Public',
        description: 'HTTP and HTTPS from anywhere',
        ingress: [
          { protocol: 'tcp', ports: 80, from: '0.0.0.0/0', description: 'HTTP' },
          { protocol: 'tcp', ports: 443, from: '0.0.0.0/0', description: 'HTTPS' },
        ],
      },
      {
        name: 'Data Internal',
        description: 'MySQL from the web tier only',
        ingress: [{ protocol: 'tcp', ports: 3306, from: { firewall: 'Web Public' }, description: 'MySQL' }],
      },
    ],
    keyPairs: [{ name: 'deploy', publicKey: DEPLOY_KEY }],
    instances: [
      { name: 'web', count: 2, size: 'small', image: 'debian-12', subnet: 'public', firewalls: ['Web Public'], keyPair: 'deploy', role: 'web', tags: { Name: 'web', Version: '1.0.0' } },
      { name: 'data', size: 'small', image: 'debian-12', subnet: 'private', firewalls: ['Data Internal'], keyPair: 'deploy', role: 'data', tags: { Name: 'data', Version: '1.0.0' } },
    ],
  } as EnvironmentSpecInput;
}

export interface TempDir {
  path: string;
  file(name: string, contents: unknown): Promise<string>;
  remove(): Promise<void>;
}

/** A throwaway directory for specs and state files. */
export async function tempDir(): Promise<TempDir> {
  const path = await mkdtemp(join(tmpdir(), 'armada-cli-'));
  return {
    path,
    async file(name, contents) {
      const file = join(path, name);
      await writeFile(file, typeof contents === 'string' ? contents : `${JSON.stringify(contents, null, 2)}\n`);
      return file;
    },
    remove: () => rm(path, { recursive: true, force: true }),
  };
}
