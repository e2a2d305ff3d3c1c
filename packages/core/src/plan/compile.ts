/**
 * Spec -> desired resources. Expands instance counts, turns rule peers into logical references and
 * asks the provider to map portable sizes and images onto its own.
 */
import { ValidationError, type ValidationIssue } from '../errors.js';
import { withRetries, type RetryPolicy } from '../execute/retry.js';
import { instanceNames } from '../policies/rules.js';
import type { ProviderV1, ResolvedInstanceType } from '../provider.js';
import {
  addressOf,
  dependenciesOf,
  type DesiredResource,
  type FirewallRule,
  type ResourceKind,
  type ResourcePropertiesByKind,
} from '../resources.js';
import { providerOptionsOf, type EgressRule, type EnvironmentSpec, type IngressRule } from '../spec/schema.js';

function desired<K extends ResourceKind>(kind: K, name: string, properties: ResourcePropertiesByKind[K]): DesiredResource<K> {
  return { address: addressOf(kind, name), kind, name, properties, dependsOn: dependenciesOf(kind, name, properties) };
}

function toRule(rule: IngressRule | EgressRule): FirewallRule {
  const peer = 'from' in rule ? rule.from : rule.to;
  const ports = rule.protocol === 'tcp' || rule.protocol === 'udp' ? rule.ports : undefined;
  return {
    protocol: rule.protocol,
    ...(ports && !(ports.from === 0 && ports.to === 65535) ? { ports } : {}),
    peer,
    ...(rule.description ? { description: rule.description } : {}),
  };
}

/** The Name tag of the n-th of several instances gets its index, so consoles tell them apart. */
function instanceTags(tags: Record<string, string>, count: number, index: number): Record<string, string> {
  if (count === 1 || tags.Name === undefined) return { ...tags };
  return { ...tags, Name: `${tags.Name}-${index + 1}` };
}

export interface CompileOptions {
  /** Retries of the provider's look-ups (sizes, images), which call its API. */
  retry?: Partial<RetryPolicy>;
  signal?: AbortSignal;
}

export async function compileEnvironment(spec: EnvironmentSpec, provider: ProviderV1, options: CompileOptions = {}): Promise<DesiredResource[]> {
  const network = spec.network.name;
  const resources: DesiredResource[] = [desired('network', network, { cidr: spec.network.cidr })];
  for (const subnet of spec.network.subnets) {
    resources.push(
      desired('subnet', subnet.name, {
        network,
        cidr: subnet.cidr,
        access: subnet.access,
        ...(subnet.zone ? { zone: subnet.zone } : {}),
      }),
    );
  }
  for (const firewall of spec.firewalls) {
    resources.push(
      desired('firewall', firewall.name, {
        network,
        description: firewall.description,
        ingress: firewall.ingress.map(toRule),
        ...(firewall.egress ? { egress: firewall.egress.map(toRule) } : {}),
      }),
    );
  }
  const issues: ValidationIssue[] = [];
  spec.keyPairs.forEach((keyPair, index) => {
    if (keyPair.publicKey === undefined) {
      issues.push({
        path: `keyPairs[${index}].publicKeyPath`,
        message: 'the key file has not been read',
        fix: 'load the spec with parseSpec() or loadSpecFile(), which read key files',
      });
      return;
    }
    resources.push(desired('keyPair', keyPair.name, { publicKey: keyPair.publicKey }));
  });

  // Many instances share a size and image: resolve each distinct combination once.
  const resolved = new Map<string, Promise<ResolvedInstanceType>>();
  const instanceResources = await Promise.all(
    spec.instances.map(async (instance, index) => {
      const providerOptions = providerOptionsOf(instance, provider.id);
      const key = JSON.stringify([instance.size, instance.image, providerOptions]);
      let type = resolved.get(key);
      if (!type) {
        // The look-up may call the cloud (and be throttled); a synchronous throw counts as a rejection.
        const request = { instance: instance.name, size: instance.size, image: instance.image, options: providerOptions };
        type = withRetries(async () => provider.resolveInstanceType(request), { ...options.retry, provider: provider.id, ...(options.signal ? { signal: options.signal } : {}) });
        resolved.set(key, type);
      }
      let sizeAndImage: ResolvedInstanceType;
      try {
        sizeAndImage = await type;
      } catch (error) {
        if (ValidationError.isInstance(error)) {
          issues.push(...error.issues.map((issue) => ({ ...issue, path: `instances[${index}]${issue.path ? `.${issue.path}` : ''}` })));
          if (error.issues.length === 0) issues.push({ path: `instances[${index}]`, message: error.message });
          return [];
        }
        throw error;
      }
      return instanceNames(instance).map((name, copy) => ({
        ...desired('instance', name, {
          subnet: instance.subnet,
          firewalls: [...instance.firewalls],
          ...(instance.keyPair !== undefined ? { keyPair: instance.keyPair } : {}),
          size: sizeAndImage.size,
          image: sizeAndImage.image,
          tags: instanceTags(instance.tags, instance.count, copy),
          ...(instance.userData !== undefined ? { userData: instance.userData } : {}),
          ...(instance.role !== undefined ? { role: instance.role } : {}),
        }),
        // Scaling keeps what stays wanted: 1 -> 2 makes `web` into `web-1` (and adds `web-2`); 2 -> 1
        // makes `web-1` into `web` (and removes `web-2`, the highest-numbered).
        ...(copy === 0 ? { movedFrom: [addressOf('instance', instanceNames({ name: instance.name, count: instance.count === 1 ? 2 : 1 })[0] as string)] } : {}),
      }));
    }),
  );
  if (issues.length > 0) {
    throw new ValidationError(`The spec cannot be built on provider "${provider.id}" (${provider.region}):`, { issues });
  }
  for (const list of instanceResources) resources.push(...list);
  for (const record of spec.dns?.records ?? []) {
    resources.push(
      desired('dnsRecord', `${record.name}.${spec.dns?.zone} ${record.type}`, {
        zone: spec.dns?.zone ?? '',
        name: record.name,
        type: record.type,
        ttl: record.ttl,
        values: [...record.values],
      }),
    );
  }
  return resources;
}
