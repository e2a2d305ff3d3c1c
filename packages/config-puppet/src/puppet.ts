/**
 * The Puppet config manager: masterless `puppet apply` over a command channel (SSH).
 *
 * Bootstrap installs Puppet where it is missing (Debian's package), uploads the rendered manifests
 * to /etc/armada/puppet, and writes the secrets to a root-only file of FACTER_ variables. Apply
 * runs `puppet apply --detailed-exitcodes` (0 nothing to do, 2 changed, 4 failed, 6 both) and
 * reports per resource from Puppet's own log lines, with the counts of its run summary.
 */
import { randomUUID } from 'node:crypto';
import {
  ArmadaError,
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
import { parse as parseYaml } from 'yaml';
import { PUPPET_ROOT, renderPuppet, secretFact } from './render.js';

export const PUPPET_CONFIG_MANAGER_ID = 'puppet';
const SECRETS_FILE = `${PUPPET_ROOT}/secrets.env`;
/** Where bring-your-own modules go. */
const MODULES = `${PUPPET_ROOT}/modules`;
/**
 * Where each run's summary goes, named on the command line: asking Puppet where its default is
 * (`puppet config print lastrunfile`) starts a second Ruby process, which costs seconds per apply.
 */
const SUMMARY_FILE = `${PUPPET_ROOT}/last_run_summary.yaml`;

const shellWord = (text: string) => `'${text.replaceAll("'", `'\\''`)}'`;

async function run(channel: CommandChannel, command: string, what: string, options: { signal?: AbortSignal } = {}): Promise<string> {
  const result = await channel.exec(command, { sudo: true, ...(options.signal ? { signal: options.signal } : {}) });
  if (result.exitCode !== 0) {
    throw new ArmadaError('Unknown', `${what} failed on ${channel.description} (exit ${result.exitCode}): ${(result.stderr || result.stdout).trim().slice(-2000)}`);
  }
  return result.stdout;
}

/** Replaces every secret value in text with [redacted]: Puppet redacts Sensitive values, this is the second line of defence. */
export function redact(text: string, secrets: Iterable<string>): string {
  let redacted = text;
  for (const secret of secrets) if (secret.length >= 4) redacted = redacted.split(secret).join('[redacted]');
  return redacted;
}

/** Noise from Facter in containers and sandboxes, not a failure of the run. */
const isFacterNoise = (line: string) => /^(Error|Warning): Facter: /.test(line);
const LINE = /^(Notice|Error|Warning): \/Stage\[main\]\/(?:[^/]+\/)*?([A-Z][A-Za-z:]*)\[(.*?)\]\/([a-z_]+): (.*)$/;

interface RunSummary {
  resources?: { total?: number; changed?: number; failed?: number; out_of_sync?: number; skipped?: number; failed_to_restart?: number };
}

/** Puppet's console output and run summary to a ConfigReport. Exported for tests. */
export function parsePuppetRun(output: string, exitCode: number, summaryYaml: string | undefined, noop: boolean): ConfigReport {
  const resources = new Map<string, { resource: string; status: 'changed' | 'failed'; message: string }>();
  // Run with --color=false, so lines carry no escape codes.
  const lines = output.split('\n');
  const generalErrors: string[] = [];
  for (const line of lines) {
    if (isFacterNoise(line)) continue;
    const match = LINE.exec(line);
    if (match) {
      const [, level, type, title, , message] = match as unknown as [string, string, string, string, string, string];
      const resource = `${type}[${title}]`;
      if (level === 'Error') resources.set(resource, { resource, status: 'failed', message });
      else if (level === 'Notice' && resources.get(resource)?.status !== 'failed') resources.set(resource, { resource, status: 'changed', message });
    } else if (line.startsWith('Error: ')) generalErrors.push(line.slice('Error: '.length));
  }
  const list = [...resources.values()];
  // Puppet also prints a failed resource's error without its path: keep only the errors that are not.
  for (const message of generalErrors) {
    if (!list.some((entry) => entry.status === 'failed' && entry.message.includes(message))) list.push({ resource: '(catalog)', status: 'failed', message });
  }
  const summary = (summaryYaml ? (parseYaml(summaryYaml) as RunSummary | null) : null)?.resources ?? {};
  const changed = noop ? (summary.out_of_sync ?? list.filter((entry) => entry.status === 'changed').length) : (summary.changed ?? list.filter((entry) => entry.status === 'changed').length);
  const failed = Math.max(summary.failed ?? 0, list.filter((entry) => entry.status === 'failed').length);
  const total = summary.total ?? changed + failed;
  return {
    changed,
    failed,
    unchanged: Math.max(0, total - changed - failed - (summary.skipped ?? 0)),
    resources: list,
    exitCode,
    log: lines.filter((line) => line && !isFacterNoise(line)).join('\n'),
  };
}

export interface BringYourOwnOptions {
  /** The class to apply: `profile::web`. */
  className: string;
  /** Provisioning outputs, as facts `armada_<name>` (`data-1.privateIp` -> `$facts['armada_data_1_privateip']`). */
  values?: ReadonlyMap<string, string> | Record<string, string>;
  noop?: boolean;
  signal?: AbortSignal;
}

export class PuppetConfigManager implements ConfigManagerV1<ServerPolicies> {
  readonly specificationVersion = 'v1' as const;
  readonly id = PUPPET_CONFIG_MANAGER_ID;
  /** Secrets uploaded to each host, to redact them from what apply reports. */
  private readonly secretsByHost = new Map<string, string[]>();

  render(policies: ServerPolicies, values: ReadonlyMap<string, string>): RenderedArtifact[] {
    return renderPuppet(policies, values);
  }

  async bootstrap(channel: CommandChannel, artifacts: readonly RenderedArtifact[], options: BootstrapOptions = {}): Promise<void> {
    const signal = options.signal ? { signal: options.signal } : {};
    await run(
      channel,
      'command -v puppet >/dev/null 2>&1 || { export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && apt-get install -y -qq --no-install-recommends puppet; }',
      'Installing Puppet',
      signal,
    );
    // Upload as the SSH user to a private staging directory, then move into place as root.
    const staging = `/tmp/armada-${randomUUID()}`;
    await channel.exec(`mkdir -m 0700 ${staging}`);
    try {
      for (const artifact of artifacts) {
        const name = artifact.path.replaceAll('/', '__');
        await channel.upload(artifact.content, `${staging}/${name}`, { mode: artifact.mode ?? 0o644 });
      }
      const secrets = Object.entries(options.secrets ?? {});
      const lines = secrets.map(([name, value]) => `FACTER_${secretFact(name)}=${shellWord(value)}`).join('\n');
      await channel.upload(`${lines}\n`, `${staging}/secrets.env`, { mode: 0o600 });
      const moves = artifacts.map((artifact) => {
        const target = `${PUPPET_ROOT}/${artifact.path}`;
        return `install -D -m ${(artifact.mode ?? 0o644).toString(8)} ${shellWord(`${staging}/${artifact.path.replaceAll('/', '__')}`)} ${shellWord(target)}`;
      });
      await run(channel, [`mkdir -p ${PUPPET_ROOT}`, ...moves, `install -m 600 -o root -g root ${staging}/secrets.env ${SECRETS_FILE}`].join(' && '), 'Installing the manifests', signal);
      this.secretsByHost.set(channel.description, secrets.map(([, value]) => value));
    } finally {
      await channel.exec(`rm -rf ${staging}`);
    }
  }

  /** Bring your own: uploads an existing module path (directories of modules) to the host. */
  async bootstrapModules(channel: CommandChannel, modulePath: string, options: Pick<BootstrapOptions, 'signal'> = {}): Promise<string[]> {
    await run(channel, 'command -v puppet >/dev/null 2>&1 || { export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && apt-get install -y -qq --no-install-recommends puppet; }', 'Installing Puppet', options);
    return uploadDirectory(channel, modulePath, MODULES);
  }

  /** Bring your own: applies a class of the uploaded modules, with the values as facts. */
  async applyClass(channel: CommandChannel, options: BringYourOwnOptions): Promise<ConfigReport> {
    if (!/^[a-z][a-z0-9_]*(::[a-z][a-z0-9_]*)*$/.test(options.className)) {
      throw new ValidationError(`"${options.className}" is not a Puppet class name.`, { issues: [{ path: 'className', message: 'not a class name', fix: 'write it as module::class, e.g. profile::web' }] });
    }
    const facts = Object.entries(valueNames(options.values ?? {})).map(([name, value]) => `FACTER_armada_${name}=${shellWord(value)}`);
    const command = `rm -f ${SUMMARY_FILE}; env ${facts.join(' ')} puppet apply --detailed-exitcodes --color=false --lastrunfile=${SUMMARY_FILE}${options.noop ? ' --noop' : ''} --modulepath=${MODULES} -e ${shellWord(`include ${options.className}`)}`;
    const result = await channel.exec(command, { sudo: true, ...(options.signal ? { signal: options.signal } : {}) });
    const summary = await channel.exec(`cat ${SUMMARY_FILE}`, { sudo: true });
    return parsePuppetRun(`${result.stdout}\n${result.stderr}`, result.exitCode, summary.exitCode === 0 ? summary.stdout : undefined, options.noop ?? false);
  }

  async apply(channel: CommandChannel, options: ApplyOptions): Promise<ConfigReport> {
    const manifest = `${PUPPET_ROOT}/manifests/${options.role}.pp`;
    const command = [
      // The secrets become facts only in the environment of this one run.
      `set -a; [ -r ${SECRETS_FILE} ] && . ${SECRETS_FILE}; set +a`,
      // No summary from an earlier run may pass for this one's.
      `rm -f ${SUMMARY_FILE}`,
      `puppet apply --detailed-exitcodes --color=false --lastrunfile=${SUMMARY_FILE}${options.noop ? ' --noop' : ''} ${shellWord(manifest)}`,
    ].join('; ');
    const result = await channel.exec(command, {
      sudo: true,
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.onOutput ? { onOutput: options.onOutput } : {}),
    });
    if (result.exitCode === 127 || (result.exitCode === 1 && /No such file|Could not find file/.test(result.stderr))) {
      throw new ArmadaError('NotFound', `No manifest for role "${options.role}" on ${channel.description}: bootstrap it first. ${result.stderr.trim()}`);
    }
    const summary = await channel.exec(`cat ${SUMMARY_FILE}`, { sudo: true });
    const report = parsePuppetRun(`${result.stdout}\n${result.stderr}`, result.exitCode, summary.exitCode === 0 ? summary.stdout : undefined, options.noop ?? false);
    const secrets = this.secretsByHost.get(channel.description) ?? [];
    return {
      ...report,
      log: redact(report.log, secrets),
      resources: report.resources.map((entry) => ({ ...entry, ...(entry.message ? { message: redact(entry.message, secrets) } : {}) })),
    };
  }
}
