/**
 * The Chef config manager: chef-client (or Cinc) in local mode over a command channel (SSH).
 *
 * Bootstrap uploads the cookbook to /etc/armada/chef and the secrets to a root-only JSON file of
 * node attributes, then makes sure a client is there: one already installed, else Debian's package
 * if the distribution has one. Debian and Ubuntu no longer ship Chef, and Armada downloads no
 * installer from the internet on its own: where no client can be had, bootstrap says so plainly
 * (UnsupportedError) after uploading, so the host is ready the moment a client is installed.
 */
import { randomUUID } from 'node:crypto';
import {
  ArmadaError,
  UnsupportedError,
  ValidationError,
  uploadDirectory,
  valueNames,
  type ApplyOptions,
  type BootstrapOptions,
  type CommandChannel,
  type ConfigManagerV1,
  type ConfigReport,
  type RenderedArtifact,
  type ServerPolicies,
} from '@armada/core';
import { CHEF_ROOT, renderCookbook } from './render.js';

export const CHEF_CONFIG_MANAGER_ID = 'chef';
const ATTRIBUTES_FILE = `${CHEF_ROOT}/attributes.json`;
/** The first client found: Chef Infra's or its community build, Cinc. */
const FIND_CLIENT = 'command -v chef-client || command -v cinc-client';
const shellWord = (text: string) => `'${text.replaceAll("'", `'\\''`)}'`;

/** chef-client's console output to a ConfigReport. Exported for tests. */
export function parseChefRun(output: string, exitCode: number): ConfigReport {
  const resources: ConfigReport['resources'] = [];
  let current: { resource: string; status: 'changed' | 'unchanged' | 'failed'; message?: string } | undefined;
  let unchanged = 0;
  const flush = () => {
    if (!current) return;
    if (current.status === 'unchanged') unchanged++;
    else resources.push({ resource: current.resource, status: current.status, ...(current.message ? { message: current.message } : {}) });
    current = undefined;
  };
  let failureLines: string[] | undefined;
  for (const line of output.split('\n')) {
    const start = /^\s+\* (\w+)\[(.+?)\] action (\w+)(.*)$/.exec(line);
    if (start) {
      flush();
      const suffix = start[4] ?? '';
      current = { resource: `${start[1]}[${start[2]}]`, status: /\(up to date\)|\(skipped due to/.test(suffix) ? 'unchanged' : 'changed' };
      if (current.status === 'unchanged') flush();
      continue;
    }
    if (current && /^\s+- /.test(line) && !current.message) current.message = line.trim().slice(2);
    if (/Error executing action/.test(line) && current) {
      current.status = 'failed';
      failureLines = [];
      continue;
    }
    if (failureLines && current) {
      if (/^\s*(Resource Declaration|Compiled Resource|System Info):?/.test(line)) {
        current.message = failureLines.filter((text) => text && !/^[=-]+$/.test(text)).join(' ');
        failureLines = undefined;
      } else failureLines.push(line.trim());
    }
  }
  if (failureLines && current) current.message = failureLines.filter((text) => text && !/^[=-]+$/.test(text)).join(' ');
  flush();
  const summary = /(\d+)\/(\d+) resources (?:updated|would have been updated)/.exec(output);
  const changed = summary ? Number(summary[1]) : resources.filter((entry) => entry.status === 'changed').length;
  const failed = resources.filter((entry) => entry.status === 'failed').length + (exitCode !== 0 && resources.every((entry) => entry.status !== 'failed') ? 1 : 0);
  if (exitCode !== 0 && resources.every((entry) => entry.status !== 'failed')) {
    const fatal = output.split('\n').find((line) => /FATAL|ERROR:/.test(line));
    resources.push({ resource: '(run)', status: 'failed', message: fatal?.trim() ?? `chef-client exited with ${exitCode}` });
  }
  return { changed, failed, unchanged: summary ? Math.max(0, Number(summary[2]) - changed) : unchanged, resources, exitCode, log: output };
}

export interface RunListOptions {
  /** `['recipe[shop::web]', 'role[base]']` */
  runList: string[];
  /** Provisioning outputs, as attributes `node['armada']['values'][name]` (`data-1.privateIp` -> `data_1_privateip`). */
  values?: ReadonlyMap<string, string> | Record<string, string>;
  noop?: boolean;
  signal?: AbortSignal;
}

/** Where bring-your-own cookbooks go. */
const OWN_COOKBOOKS = `${CHEF_ROOT}/own-cookbooks`;

export class ChefConfigManager implements ConfigManagerV1<ServerPolicies> {
  readonly specificationVersion = 'v1' as const;
  readonly id = CHEF_CONFIG_MANAGER_ID;

  render(policies: ServerPolicies, values: ReadonlyMap<string, string>): RenderedArtifact[] {
    return renderCookbook(policies, values);
  }

  async bootstrap(channel: CommandChannel, artifacts: readonly RenderedArtifact[], options: BootstrapOptions = {}): Promise<void> {
    const staging = `/tmp/armada-${randomUUID()}`;
    await channel.exec(`mkdir -m 0700 ${staging}`);
    try {
      for (const artifact of artifacts) await channel.upload(artifact.content, `${staging}/${artifact.path.replaceAll('/', '__')}`, { mode: artifact.mode ?? 0o644 });
      await channel.upload(`${JSON.stringify({ armada: { secrets: options.secrets ?? {} } })}\n`, `${staging}/attributes.json`, { mode: 0o600 });
      const moves = artifacts.map((artifact) => `install -D -m 644 ${shellWord(`${staging}/${artifact.path.replaceAll('/', '__')}`)} ${shellWord(`${CHEF_ROOT}/${artifact.path}`)}`);
      const installed = await channel.exec([`mkdir -p ${CHEF_ROOT}`, ...moves, `install -m 600 -o root -g root ${staging}/attributes.json ${ATTRIBUTES_FILE}`].join(' && '), { sudo: true });
      if (installed.exitCode !== 0) throw new ArmadaError('Unknown', `Installing the cookbook on ${channel.description} failed: ${installed.stderr.trim()}`);
    } finally {
      await channel.exec(`rm -rf ${staging}`);
    }
    const found = await channel.exec(FIND_CLIENT);
    if (found.exitCode === 0) return;
    // Only the distribution's package: Armada fetches no installer from the internet by itself.
    const attempt = await channel.exec('export DEBIAN_FRONTEND=noninteractive; apt-get install -y -qq chef 2>&1 || apt-get install -y -qq cinc 2>&1', { sudo: true });
    if ((await channel.exec(FIND_CLIENT)).exitCode === 0) return;
    throw new UnsupportedError(
      'chef-client',
      `No Chef client could be installed on ${channel.description}: the cookbook is uploaded to ${CHEF_ROOT}, but neither chef-client nor cinc-client is installed and the distribution has no package for them (${attempt.stdout.trim().split('\n').at(-1) ?? ''}). Install Chef Infra Client or Cinc on the host, then apply.`,
    );
  }

  /** Bring your own: uploads an existing cookbook repository (a directory of cookbooks). */
  async bootstrapCookbooks(channel: CommandChannel, cookbookPath: string): Promise<string[]> {
    return uploadDirectory(channel, cookbookPath, OWN_COOKBOOKS);
  }

  /** Bring your own: converges a run list of the uploaded cookbooks, with the values as attributes. */
  async applyRunList(channel: CommandChannel, options: RunListOptions): Promise<ConfigReport> {
    const invalid = options.runList.filter((entry) => !/^(recipe|role)\[[A-Za-z0-9_:.-]+\]$/.test(entry));
    if (invalid.length > 0 || options.runList.length === 0) {
      throw new ValidationError('The run list is not valid.', { issues: [{ path: 'runList', message: `invalid entries: ${invalid.join(', ') || '(empty list)'}`, fix: "write entries as recipe[cookbook::recipe] or role[name]" }] });
    }
    const client = await this.client(channel);
    const attributes = `${CHEF_ROOT}/own-attributes.json`;
    const staging = `/tmp/armada-${randomUUID()}.json`;
    await channel.upload(`${JSON.stringify({ armada: { values: valueNames(options.values ?? {}) } })}\n`, staging, { mode: 0o600 });
    await channel.exec(`install -m 600 ${staging} ${attributes} && rm -f ${staging}`, { sudo: true });
    const command = `${client} --local-mode --no-color --config-option cookbook_path=${OWN_COOKBOOKS} --json-attributes ${attributes} --override-runlist ${shellWord(options.runList.join(','))}${options.noop ? ' --why-run' : ''}`;
    const result = await channel.exec(`cd ${CHEF_ROOT} && ${command}`, { sudo: true, ...(options.signal ? { signal: options.signal } : {}) });
    return parseChefRun(`${result.stdout}\n${result.stderr}`, result.exitCode);
  }

  private async client(channel: CommandChannel): Promise<string> {
    const client = (await channel.exec(FIND_CLIENT)).stdout.trim();
    if (!client) throw new UnsupportedError('chef-client', `No Chef client on ${channel.description}: install Chef Infra Client or Cinc, or run bootstrap, before applying.`);
    return client;
  }

  async apply(channel: CommandChannel, options: ApplyOptions): Promise<ConfigReport> {
    const client = await this.client(channel);
    const command = [
      client,
      '--local-mode',
      '--no-color',
      `--config-option cookbook_path=${CHEF_ROOT}/cookbooks`,
      `--json-attributes ${ATTRIBUTES_FILE}`,
      `--override-runlist ${shellWord(`recipe[armada::${options.role}]`)}`,
      ...(options.noop ? ['--why-run'] : []),
    ].join(' ');
    const result = await channel.exec(`cd ${CHEF_ROOT} && ${command}`, {
      sudo: true,
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.onOutput ? { onOutput: options.onOutput } : {}),
    });
    return parseChefRun(`${result.stdout}\n${result.stderr}`, result.exitCode);
  }
}
