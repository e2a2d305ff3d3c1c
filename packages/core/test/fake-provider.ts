/**
 * A scripted provider for unit tests of the planner and executor: every service keeps resources
 * in a map, records the order of calls and how many run at once, and can be told to fail or wait.
 * (The in-memory provider in @armada/testkit is the complete one; core cannot depend on it.)
 */
import {
  addressOf,
  dependenciesOf,
  type DesiredResource,
  type ObservedResource,
  type ProviderV1,
  type ResourceKind,
  type ResourcePropertiesByKind,
  type ResourceService,
} from '../src/index.js';

export interface Script {
  /** Per call: throw this (or a new one each time from a function) before doing anything. */
  failures: Map<string, Array<Error | undefined>>;
  delayMs: number;
}

export class FakeProvider {
  readonly calls: string[] = [];
  readonly resources = new Map<string, ObservedResource>();
  readonly script: Script = { failures: new Map(), delayMs: 0 };
  readonly tokens = new Map<string, string[]>();
  running = 0;
  maxRunning = 0;
  private sequence = 0;

  /** `updatable: false`: no service updates in place (every change replaces). */
  constructor(private readonly options: { updatable?: boolean } = {}) {}

  /** Queue outcomes for `step:address` calls: an Error fails that attempt, undefined lets it through. */
  fail(call: string, ...outcomes: Array<Error | undefined>): void {
    this.script.failures.set(call, outcomes);
  }

  private async enter(call: string): Promise<void> {
    this.calls.push(call);
    this.running++;
    this.maxRunning = Math.max(this.maxRunning, this.running);
    try {
      if (this.script.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.script.delayMs));
      const queued = this.script.failures.get(call);
      const failure = queued?.shift();
      if (failure) throw failure;
    } finally {
      this.running--;
    }
  }

  service<K extends ResourceKind>(kind: K, replaceOn: string[] = [], updatable = true): ResourceService<K> {
    const service: ResourceService<K> = {
      kind,
      replaceOn,
      discover: async () => [...this.resources.values()].filter((resource): resource is ObservedResource<K> => resource.kind === kind),
      create: async (resource: DesiredResource<K>, context) => {
        await this.enter(`create:${resource.address}`);
        for (const dependency of resource.dependsOn) context.idOf(dependency);
        const tokens = this.tokens.get(resource.address) ?? [];
        tokens.push(context.idempotencyToken(resource.address));
        this.tokens.set(resource.address, tokens);
        const created: ObservedResource<K> = { ...resource, id: `${kind}-${++this.sequence}`, outputs: {} };
        this.resources.set(resource.address, created as ObservedResource);
        return created;
      },
      delete: async (current: ObservedResource<K>) => {
        await this.enter(`delete:${current.address}`);
        if (this.resources.get(current.address)?.id === current.id) this.resources.delete(current.address);
      },
    };
    if (updatable) {
      service.update = async (resource, current) => {
        await this.enter(`update:${resource.address}`);
        const updated = { ...current, address: resource.address, name: resource.name, properties: resource.properties };
        if (current.address !== resource.address) this.resources.delete(current.address);
        this.resources.set(resource.address, updated as ObservedResource);
        return updated;
      };
    }
    return service;
  }

  provider(): ProviderV1 {
    return {
      specificationVersion: 'v1',
      id: 'fake',
      region: 'test-1',
      capabilities: {
        subnets: 'native',
        firewallTargets: 'group',
        firewallPeers: { cidr: true, firewall: true, subnet: true },
        egressRules: true,
        tags: 'key-value',
        dns: false,
      },
      services: {
        network: this.service('network', ['cidr'], false),
        subnet: this.service('subnet', ['cidr', 'network'], false),
        firewall: this.service('firewall', ['network'], this.options.updatable ?? true),
        keyPair: this.service('keyPair', ['publicKey'], false),
        instance: this.service('instance', ['subnet', 'size', 'image'], this.options.updatable ?? true),
      },
      resolveInstanceType: ({ size, image }) => ({ size: typeof size === 'string' ? size : `${size.cpus}x${size.memoryGiB}`, image }),
    };
  }
}

export function desired<K extends ResourceKind>(kind: K, name: string, properties: ResourcePropertiesByKind[K]): DesiredResource<K> {
  return { address: addressOf(kind, name), kind, name, properties, dependsOn: dependenciesOf(kind, name, properties) };
}

export function instance(name: string, subnet: string, extra: Partial<ResourcePropertiesByKind['instance']> = {}): DesiredResource<'instance'> {
  return desired('instance', name, { subnet, firewalls: [], size: 'small', image: 'debian-12', tags: { Name: name, Version: '1' }, ...extra });
}

/** network "net" with subnets a and b. */
export function baseNetwork(): DesiredResource[] {
  return [
    desired('network', 'net', { cidr: '10.0.0.0/16' }),
    desired('subnet', 'a', { network: 'net', cidr: '10.0.1.0/24', access: 'public' }),
    desired('subnet', 'b', { network: 'net', cidr: '10.0.2.0/24', access: 'private' }),
  ];
}
