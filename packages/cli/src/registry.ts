/**
 * The providers the `armada` command knows: the built-in plugins, configured from the environment
 * the way each cloud's own tools are, and third-party plugins loaded from modules (`--plugin`).
 * Exported so a script or another tool gets the same wiring as the command.
 */
import { PluginRegistry, type ArmadaPlugin } from '@armada/core';
import { createRequire } from 'node:module';
import { isAbsolute, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { UsageError } from './errors.js';

export type Env = Readonly<Record<string, string | undefined>>;

/** Provider ids with a built-in plugin, and the package each comes from. */
export const BUILT_IN_PROVIDERS = {
  aws: '@armada/provider-aws',
  digitalocean: '@armada/provider-digitalocean',
  'in-memory': '@armada/testkit',
} as const;

export type BuiltInProviderId = keyof typeof BUILT_IN_PROVIDERS;

export function isBuiltInProvider(id: string): id is BuiltInProviderId {
  return Object.hasOwn(BUILT_IN_PROVIDERS, id);
}

export interface CreateRegistryOptions {
  /** Where credentials and endpoints are read from. Default: `process.env`. */
  env?: Env;
  /** Third-party plugin modules, as `--plugin` takes them: a file path or a package name. */
  plugins?: readonly string[];
  /** Plugin objects you already have; registered like the modules', before the built-ins. */
  pluginObjects?: readonly ArmadaPlugin[];
  /** Directory relative plugin paths and package names are resolved from. Default: `process.cwd()`. */
  cwd?: string;
  /**
   * Which built-in providers to wire (each is imported only when wired). Default: all of them.
   * A built-in whose provider id a third-party plugin already registers is left out, so a plugin
   * can replace a built-in provider.
   */
  builtIns?: readonly BuiltInProviderId[];
}

/** The AWS plugin, configured from the standard AWS variables. */
export async function awsPluginFromEnv(env: Env): Promise<ArmadaPlugin> {
  const { awsProviderPlugin } = await import('@armada/provider-aws');
  const endpoint = env.AWS_ENDPOINT_URL_EC2 || env.AWS_ENDPOINT_URL;
  const accessKeyId = env.AWS_ACCESS_KEY_ID;
  const secretAccessKey = env.AWS_SECRET_ACCESS_KEY;
  return awsProviderPlugin({
    ...(endpoint ? { endpoint } : {}),
    // Without keys in the environment, the SDK's own chain applies (AWS_PROFILE, SSO, instance role).
    ...(accessKeyId && secretAccessKey
      ? { credentials: { accessKeyId, secretAccessKey, ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}) } }
      : {}),
  });
}

/** DigitalOcean's API base from DIGITALOCEAN_API_URL, with or without its `/v2`. */
export function digitalOceanEndpoint(url: string | undefined): string | undefined {
  if (!url) return undefined;
  const trimmed = url.replace(/\/+$/, '');
  return trimmed.endsWith('/v2') ? trimmed : `${trimmed}/v2`;
}

/** The DigitalOcean plugin: token from DIGITALOCEAN_TOKEN (or DIGITALOCEAN_ACCESS_TOKEN), API base from DIGITALOCEAN_API_URL. */
export async function digitalOceanPluginFromEnv(env: Env): Promise<ArmadaPlugin> {
  const { digitalOceanProviderPlugin } = await import('@armada/provider-digitalocean');
  const token = env.DIGITALOCEAN_TOKEN || env.DIGITALOCEAN_ACCESS_TOKEN;
  const endpoint = digitalOceanEndpoint(env.DIGITALOCEAN_API_URL);
  return digitalOceanProviderPlugin({ ...(token ? { token } : {}), ...(endpoint ? { endpoint } : {}) });
}

/** The testkit's in-memory cloud: it lives as long as the process, so each command starts empty. */
export async function inMemoryPlugin(): Promise<ArmadaPlugin> {
  const { InMemoryCloud, inMemoryProviderPlugin } = await import('@armada/testkit');
  return inMemoryProviderPlugin({ cloud: new InMemoryCloud() });
}

const BUILT_IN_FACTORIES: Record<BuiltInProviderId, (env: Env) => Promise<ArmadaPlugin>> = {
  aws: awsPluginFromEnv,
  digitalocean: digitalOceanPluginFromEnv,
  'in-memory': () => inMemoryPlugin(),
};

function isPlugin(value: unknown): value is ArmadaPlugin {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as ArmadaPlugin).id === 'string' &&
    typeof (value as ArmadaPlugin).register === 'function' &&
    'specificationVersion' in value
  );
}

async function pluginsOf(value: unknown, env: Env): Promise<ArmadaPlugin[] | undefined> {
  const resolved = typeof value === 'function' ? await (value as (context: { env: Env }) => unknown)({ env }) : value;
  if (isPlugin(resolved)) return [resolved];
  if (Array.isArray(resolved) && resolved.length > 0 && resolved.every(isPlugin)) return resolved;
  return undefined;
}

function moduleUrl(specifier: string, cwd: string): string {
  if (specifier.startsWith('.') || isAbsolute(specifier)) return pathToFileURL(resolve(cwd, specifier)).href;
  if (specifier.startsWith('file:')) return specifier;
  // A package name: from the current directory's node_modules first, else from where the CLI is installed.
  try {
    return pathToFileURL(createRequire(join(cwd, 'noop.js')).resolve(specifier)).href;
  } catch {
    return specifier;
  }
}

/**
 * Loads the plugins a module offers. What the module may export, in the order looked at:
 * - `default`, else a named export `plugin`: a plugin object (`definePlugin(...)`), an array of
 *   them, or a function `({ env }) => plugin` (may be async) that configures it from the environment;
 * - else every named export that is a plugin object.
 */
export async function loadPluginModule(specifier: string, options: { cwd?: string; env?: Env } = {}): Promise<ArmadaPlugin[]> {
  const cwd = options.cwd ?? process.cwd();
  const env = options.env ?? process.env;
  let module: Record<string, unknown>;
  try {
    module = (await import(moduleUrl(specifier, cwd))) as Record<string, unknown>;
  } catch (error) {
    throw new UsageError(`--plugin ${specifier}: cannot load the module: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}`, {
      detail: '  Give a file path (./my-plugin.js) or a package name installed where you run armada.',
      code: 'PluginLoad',
      cause: error,
    });
  }
  for (const name of ['default', 'plugin']) {
    if (module[name] === undefined) continue;
    const plugins = await pluginsOf(module[name], env);
    if (plugins) return plugins;
  }
  const named = Object.values(module).filter(isPlugin);
  if (named.length > 0) return named;
  throw new UsageError(`--plugin ${specifier}: the module exports no Armada plugin.`, {
    detail:
      '  Export one as default: `export default myCloudPlugin({ ... })` (a definePlugin object),\n' +
      '  or a function that makes it: `export default ({ env }) => myCloudPlugin({ token: env.MYCLOUD_TOKEN })`.',
    code: 'PluginLoad',
  });
}

/**
 * A plugin registry with the third-party plugins first, then the built-ins they do not replace.
 * Built-ins are configured from `env`: see the README's table of environment variables.
 */
export async function createRegistry(options: CreateRegistryOptions = {}): Promise<PluginRegistry> {
  const env = options.env ?? process.env;
  const registry = new PluginRegistry();
  registry.use(...(options.pluginObjects ?? []));
  for (const specifier of options.plugins ?? []) {
    registry.use(...(await loadPluginModule(specifier, { env, ...(options.cwd ? { cwd: options.cwd } : {}) })));
  }
  const taken = new Set(registry.providerIds());
  for (const id of options.builtIns ?? (Object.keys(BUILT_IN_PROVIDERS) as BuiltInProviderId[])) {
    if (!taken.has(id)) registry.use(await BUILT_IN_FACTORIES[id](env));
  }
  return registry;
}

/** A usage error (exit 2) naming the known providers, unless `id` is registered. */
export function requireProvider(registry: PluginRegistry, id: string, where: string): void {
  if (registry.providerIds().includes(id)) return;
  const known = [...new Set([...Object.keys(BUILT_IN_PROVIDERS), ...registry.providerIds()])];
  throw new UsageError(`no provider "${id}" (${where}).`, {
    detail: `  Known: ${known.join(', ')}. A third-party provider is loaded with --plugin <module>.`,
    code: 'UnknownProvider',
  });
}
