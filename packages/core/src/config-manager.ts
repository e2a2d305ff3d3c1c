/**
 * The config manager plugin interface, version 1 (Puppet, Chef). It turns server policies into the
 * tool's own artifacts, bootstraps a host over a command channel (SSH), applies, and reports.
 * The policy model itself grows with the config-manager packages; this contract stays small.
 */

/** A file the config manager renders: readable, committable, uploaded to the host as is. */
export interface RenderedArtifact {
  /** Relative path inside the artifact tree: `manifests/site.pp`, `cookbooks/armada/recipes/default.rb`. */
  path: string;
  content: string;
  /** File mode, e.g. 0o600 for anything holding secrets. */
  mode?: number;
}

export interface CommandResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** How a config manager reaches a host. The SSH transport in core implements it. */
export interface CommandChannel {
  /** Where the commands run, for reports (`deploy@10.0.1.5`). */
  readonly description: string;
  exec(command: string, options?: { sudo?: boolean; timeoutMs?: number; signal?: AbortSignal; onOutput?: (chunk: string) => void }): Promise<CommandResult>;
  upload(content: string | Uint8Array, remotePath: string, options?: { mode?: number }): Promise<void>;
}

export type ResourceChangeStatus = 'changed' | 'unchanged' | 'failed';

/** What one apply did, in the tool's own words. */
export interface ConfigReport {
  changed: number;
  unchanged: number;
  failed: number;
  resources: Array<{ resource: string; status: ResourceChangeStatus; message?: string }>;
  /** The tool's exit code (Puppet's detailed exit codes 0/2/4/6). */
  exitCode: number;
  /** The tool's own output, secrets masked. */
  log: string;
}

export interface BootstrapOptions {
  /** Secret values the policies refer to, by name: uploaded to a root-only file, never into artifacts. */
  secrets?: Record<string, string>;
  signal?: AbortSignal;
}

export interface ApplyOptions {
  /** Which role's policies to apply on this host. */
  role: string;
  /** Report what would change and change nothing (Puppet --noop, Chef why-run). */
  noop?: boolean;
  signal?: AbortSignal;
  onOutput?: (chunk: string) => void;
}

export interface ConfigManagerV1<Policies = unknown> {
  readonly specificationVersion: 'v1';
  /** Registry id: `puppet`, `chef`. */
  readonly id: string;
  /** The tool's own artifacts, readable and committable; `values` are the resolved provisioning outputs (`instance.output`). */
  render(policies: Policies, values: ReadonlyMap<string, string>): RenderedArtifact[];
  /** Installs the tool where missing and uploads the artifacts (and secrets). Idempotent. */
  bootstrap(channel: CommandChannel, artifacts: readonly RenderedArtifact[], options?: BootstrapOptions): Promise<void>;
  /** Applies the role's policies as uploaded and reports what changed, in the tool's words. */
  apply(channel: CommandChannel, options: ApplyOptions): Promise<ConfigReport>;
}

export type ConfigManager<Policies = unknown> = ConfigManagerV1<Policies>;
