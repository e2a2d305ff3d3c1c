/**
 * The plugin registry, on tsyringe. A plugin is a plain module object with an id and
 * `register(container)`; it registers factories under symbol tokens with plain factory
 * registrations (no decorators, so esbuild-based tools work). The registry resolves providers,
 * config managers and data movers by id and refuses a second registration of an id, naming both
 * plugins.
 *
 * Each plugin registers into its own child container, so a plugin's private registrations (its
 * vendor client, say) cannot collide with another's, and a plugin that fails to register leaves
 * nothing behind.
 */
import 'reflect-metadata';
import { container as globalContainer, type DependencyContainer, type InjectionToken } from 'tsyringe';
import type { ConfigManagerV1 } from './config-manager.js';
import type { DataMoverV1 } from './data-mover.js';
import { DuplicateRegistrationError, NotFoundError } from './errors.js';
import type { ProviderV1 } from './provider.js';

export const ArmadaTokens = {
  /** Multi-registration: one `ProviderRegistration` per provider a plugin offers. */
  Provider: Symbol.for('armada.ProviderRegistration'),
  ConfigManager: Symbol.for('armada.ConfigManagerRegistration'),
  DataMover: Symbol.for('armada.DataMoverRegistration'),
} as const;

export interface ProviderCreateOptions {
  region: string;
  /** The block under the provider's own key in the spec's `provider` selection. */
  options: Record<string, unknown>;
  /** The plugin's container, to resolve what the plugin registered (its vendor client, ...). */
  container: DependencyContainer;
}

export interface ProviderRegistration {
  id: string;
  create(options: ProviderCreateOptions): ProviderV1;
}

export interface ConfigManagerRegistration {
  id: string;
  create(container: DependencyContainer): ConfigManagerV1;
}

export interface DataMoverRegistration {
  id: string;
  create(container: DependencyContainer): DataMoverV1;
}

export interface ArmadaPlugin {
  readonly specificationVersion: 'v1';
  /** Unique plugin id, used in error messages: `@armada/provider-aws`. */
  readonly id: string;
  register(container: DependencyContainer): void;
}

/** Helper that gives a plugin object its types. */
export function definePlugin(plugin: ArmadaPlugin): ArmadaPlugin {
  return plugin;
}

/**
 * A plugin that offers one provider: what every provider package would otherwise write out.
 * `create` gets the region and the spec's provider block (`provider: { id, region, <id>: {...} }`).
 */
export function providerPlugin(definition: { pluginId: string; providerId: string; create(options: ProviderCreateOptions): ProviderV1 }): ArmadaPlugin {
  return definePlugin({
    specificationVersion: 'v1',
    id: definition.pluginId,
    register(container) {
      const registration: ProviderRegistration = { id: definition.providerId, create: definition.create };
      container.register(ArmadaTokens.Provider, { useValue: registration });
    },
  });
}

interface Entry<Registration> {
  registration: Registration;
  pluginId: string;
  container: DependencyContainer;
}

function registrationsIn<T>(container: DependencyContainer, token: InjectionToken<T>): T[] {
  // `isRegistered(token, false)` looks at this container only, not its parent.
  return container.isRegistered(token, false) ? container.resolveAll<T>(token) : [];
}

export class PluginRegistry {
  readonly container: DependencyContainer;
  private readonly pluginIds = new Set<string>();
  private readonly providers = new Map<string, Entry<ProviderRegistration>>();
  private readonly configManagers = new Map<string, Entry<ConfigManagerRegistration>>();
  private readonly dataMovers = new Map<string, Entry<DataMoverRegistration>>();
  private readonly providerInstances = new Map<string, ProviderV1>();

  /** Pass a container to share one with your application; by default a fresh child of tsyringe's root. */
  constructor(container: DependencyContainer = globalContainer.createChildContainer()) {
    this.container = container;
  }

  use(...plugins: ArmadaPlugin[]): this {
    for (const plugin of plugins) this.register(plugin);
    return this;
  }

  private register(plugin: ArmadaPlugin): void {
    if (plugin.specificationVersion !== 'v1') {
      throw new NotFoundError(
        `Plugin "${plugin.id}" implements specification ${String(plugin.specificationVersion)}; this version of @armada/core supports v1.`,
      );
    }
    if (this.pluginIds.has(plugin.id)) {
      throw new DuplicateRegistrationError(`Plugin "${plugin.id}" is already registered; register each plugin once.`);
    }
    const pluginContainer = this.container.createChildContainer();
    plugin.register(pluginContainer);
    const found = {
      provider: registrationsIn<ProviderRegistration>(pluginContainer, ArmadaTokens.Provider),
      'config manager': registrationsIn<ConfigManagerRegistration>(pluginContainer, ArmadaTokens.ConfigManager),
      'data mover': registrationsIn<DataMoverRegistration>(pluginContainer, ArmadaTokens.DataMover),
    };
    const targets = { provider: this.providers, 'config manager': this.configManagers, 'data mover': this.dataMovers };
    // Check everything before keeping anything, so a refused plugin leaves the registry unchanged.
    for (const [what, registrations] of Object.entries(found) as Array<[keyof typeof found, Array<{ id: string }>]>) {
      const seen = new Set<string>();
      for (const { id } of registrations) {
        const existing = targets[what].get(id);
        if (existing || seen.has(id)) {
          throw new DuplicateRegistrationError(
            `Plugin "${plugin.id}" registers the ${what} "${id}", which plugin "${existing?.pluginId ?? plugin.id}" already registered. ` +
              'Remove one of the two plugins, or give the new one another id.',
          );
        }
        seen.add(id);
      }
    }
    this.pluginIds.add(plugin.id);
    for (const registration of found.provider) this.providers.set(registration.id, { registration, pluginId: plugin.id, container: pluginContainer });
    for (const registration of found['config manager']) this.configManagers.set(registration.id, { registration, pluginId: plugin.id, container: pluginContainer });
    for (const registration of found['data mover']) this.dataMovers.set(registration.id, { registration, pluginId: plugin.id, container: pluginContainer });
  }

  providerIds(): string[] {
    return [...this.providers.keys()];
  }

  dataMoverIds(): string[] {
    return [...this.dataMovers.keys()];
  }

  configManagerIds(): string[] {
    return [...this.configManagers.keys()];
  }

  /** The provider `id` for a region, created once and reused. */
  provider(id: string, region: string, options: Record<string, unknown> = {}): ProviderV1 {
    const key = `${id}\u0000${region}\u0000${JSON.stringify(options)}`;
    const cached = this.providerInstances.get(key);
    if (cached) return cached;
    const entry = this.providers.get(id);
    if (!entry) throw this.unknown('provider', id, this.providers);
    const provider = entry.registration.create({ region, options, container: entry.container });
    this.providerInstances.set(key, provider);
    return provider;
  }

  configManager(id: string): ConfigManagerV1 {
    const entry = this.configManagers.get(id);
    if (!entry) throw this.unknown('config manager', id, this.configManagers);
    return entry.registration.create(entry.container);
  }

  dataMover(id: string): DataMoverV1 {
    const entry = this.dataMovers.get(id);
    if (!entry) throw this.unknown('data mover', id, this.dataMovers);
    return entry.registration.create(entry.container);
  }

  private unknown(what: string, id: string, known: Map<string, unknown>): NotFoundError {
    const ids = [...known.keys()];
    return new NotFoundError(
      `No ${what} "${id}" is registered. ${ids.length ? `Registered: ${ids.join(', ')}.` : `None is registered yet.`} ` +
        `Register its plugin first: registry.use(<plugin>).`,
      { resource: id },
    );
  }
}
