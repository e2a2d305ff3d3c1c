import { describe, expect, it } from 'vitest';
import {
  ArmadaTokens,
  DuplicateRegistrationError,
  NotFoundError,
  PluginRegistry,
  definePlugin,
  type ArmadaPlugin,
  type ConfigManagerRegistration,
  type ProviderRegistration,
  type ProviderV1,
} from '../src/index.js';
import { FakeProvider } from './fake-provider.js';

const VendorClient = Symbol('VendorClient');

function providerPlugin(pluginId: string, providerId: string, extra: (container: Parameters<ArmadaPlugin['register']>[0]) => void = () => {}): ArmadaPlugin {
  return definePlugin({
    specificationVersion: 'v1',
    id: pluginId,
    register(container) {
      extra(container);
      const registration: ProviderRegistration = {
        id: providerId,
        create: ({ region, container: own }) => {
          const provider = new FakeProvider().provider();
          const client = own.isRegistered(VendorClient, true) ? own.resolve<{ endpoint: string }>(VendorClient) : undefined;
          return { ...provider, id: providerId, region, ...(client ? { clientEndpoint: client.endpoint } : {}) } as ProviderV1;
        },
      };
      container.register(ArmadaTokens.Provider, { useValue: registration });
    },
  });
}

describe('PluginRegistry', () => {
  it('resolves a provider by id and region, creating it once', () => {
    const registry = new PluginRegistry().use(providerPlugin('@acme/fake', 'fake'));
    const first = registry.provider('fake', 'r1');
    expect(first.id).toBe('fake');
    expect(first.region).toBe('r1');
    expect(registry.provider('fake', 'r1')).toBe(first);
    expect(registry.provider('fake', 'r2')).not.toBe(first);
    expect(registry.providerIds()).toEqual(['fake']);
  });

  it('names the registered ids when asked for an unknown one', () => {
    const registry = new PluginRegistry().use(providerPlugin('@acme/fake', 'fake'));
    const error = (() => {
      try {
        registry.provider('aws', 'us-east-1');
      } catch (caught) {
        return caught;
      }
    })();
    expect(NotFoundError.isInstance(error)).toBe(true);
    expect((error as Error).message).toBe('No provider "aws" is registered. Registered: fake. Register its plugin first: registry.use(<plugin>).');
  });

  it('refuses the same plugin twice', () => {
    const registry = new PluginRegistry().use(providerPlugin('@acme/fake', 'fake'));
    expect(() => registry.use(providerPlugin('@acme/fake', 'other'))).toThrow(DuplicateRegistrationError);
  });

  it('refuses a second provider with the same id, naming both plugins, and keeps nothing of the refused plugin', () => {
    const registry = new PluginRegistry().use(providerPlugin('@acme/first', 'fake'));
    const second = definePlugin({
      specificationVersion: 'v1',
      id: '@acme/second',
      register(container) {
        providerPlugin('@acme/second', 'fake').register(container);
        const manager: ConfigManagerRegistration = { id: 'puppet', create: () => ({}) as never };
        container.register(ArmadaTokens.ConfigManager, { useValue: manager });
      },
    });
    const error = (() => {
      try {
        registry.use(second);
      } catch (caught) {
        return caught;
      }
    })();
    expect(DuplicateRegistrationError.isInstance(error)).toBe(true);
    expect((error as Error).message).toContain('Plugin "@acme/second" registers the provider "fake", which plugin "@acme/first" already registered');
    expect(() => registry.configManager('puppet')).toThrow(/No config manager "puppet" is registered/);
    expect(registry.provider('fake', 'r1').id).toBe('fake');
  });

  it('lets a plugin register its own vendor client, and users inject theirs', () => {
    const registry = new PluginRegistry().use(
      providerPlugin('@acme/fake', 'fake', (container) => container.register(VendorClient, { useValue: { endpoint: 'http://127.0.0.1:4566' } })),
    );
    expect((registry.provider('fake', 'r1') as ProviderV1 & { clientEndpoint?: string }).clientEndpoint).toBe('http://127.0.0.1:4566');
  });

  it('resolves config managers and data movers by id', () => {
    const registry = new PluginRegistry().use(
      definePlugin({
        specificationVersion: 'v1',
        id: '@acme/tools',
        register(container) {
          container.register(ArmadaTokens.ConfigManager, { useValue: { id: 'puppet', create: () => ({ specificationVersion: 'v1', id: 'puppet' }) } });
          container.register(ArmadaTokens.DataMover, { useValue: { id: 'mysql', create: () => ({ specificationVersion: 'v1', id: 'mysql' }) } });
        },
      }),
    );
    expect(registry.configManager('puppet').id).toBe('puppet');
    expect(registry.dataMover('mysql').id).toBe('mysql');
    expect(() => registry.dataMover('redis')).toThrow(/No data mover "redis" is registered. Registered: mysql/);
  });
});
