/**
 * The provider conformance suite: one function every provider's tests call with their provider,
 * a fault control for its backend, and the capabilities it lacks. It checks create, discovery by
 * ownership tags, idempotent re-apply, update, replace, destroy in dependency order, error
 * mapping, throttling, eventual consistency, and that a lost create response never duplicates.
 *
 * Each test builds its own small environment (a unique name), so tests share one backend safely.
 */
import {
  type ApplyContext,
  type ArmadaError,
  ConflictError,
  ValidationError,
  addressOf,
  applyEnvironment,
  destroyEnvironment,
  LockedError,
  localLock,
  renderPlanText,
  discover,
  executePlan,
  isEmptyPlan,
  lockKey,
  missingCapabilities,
  parseSpec,
  plan,
  type CapabilityName,
  type EnvironmentSpec,
  type EnvironmentSpecInput,
  type ExecuteOptions,
  type ExecutionResult,
  type ObservedResource,
  type Plan,
  type ProviderV1,
  type RetryPolicy,
  type Size,
} from '@armada/core';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { FaultControl } from './faults.js';

export { BAD_DAY, describeAppliesUnderFaults, type AppliesUnderFaultsOptions, type FaultedBackend } from './faulted-applies.js';

export interface ConformanceHarness {
  provider: ProviderV1;
  /** Steers the backend's faults (the in-memory cloud's, or an emulator's). */
  faults: FaultControl;
  /** A DNS zone that exists on the backend, for the DNS tests. */
  dnsZone?: string;
  /** Counts the backend's live instances of an environment, bypassing the provider: the duplicate check. */
  countInstances(environment: string): Promise<number>;
  close?(): Promise<void>;
}

export interface ConformanceOptions {
  /** Shown in the suite's title. */
  name: string;
  setup(): Promise<ConformanceHarness> | ConformanceHarness;
  /**
   * Capabilities whose tests are skipped. Must match what the provider declares missing: the suite
   * fails if a provider skips something it claims to have, or lacks something it does not skip.
   */
  skip?: CapabilityName[];
  /** A portable size and image the provider offers. Default `small` and `debian-12`. */
  size?: Size;
  image?: string;
  /** Retry settings for the executor; small delays keep the suite fast against emulators. */
  retry?: Partial<RetryPolicy>;
  /** Per-test timeout. Default 60 s. */
  timeoutMs?: number;
}

let environmentCounter = 0;

/** An apply context for calling one service directly, outside the executor. */
function directContext(environment: string, resource: ObservedResource): ApplyContext {
  return {
    environment,
    signal: new AbortController().signal,
    idOf: () => resource.id,
    resourceAt: () => resource,
    ownershipTags: () => ({}),
    idempotencyToken: () => 'conformance',
    announce: () => {},
  };
}

/** A small spec that touches every kind: two subnets, two firewalls (one admits the other), a key, two instances. */
export function conformanceSpec(
  harness: ConformanceHarness,
  options: { skip: readonly CapabilityName[]; size?: Size; image?: string; withDns?: boolean },
): EnvironmentSpecInput {
  environmentCounter++;
  const name = `conf-${process.pid.toString(36)}-${Date.now().toString(36)}-${environmentCounter}`;
  const capabilities = harness.provider.capabilities;
  const dataPeer = capabilities.firewallPeers.firewall
    ? { firewall: 'web' }
    : capabilities.firewallPeers.subnet
      ? { subnet: 'public' }
      : { cidr: '10.40.1.0/24' };
  const instance = (instanceName: string, subnet: string, firewall: string) => ({
    name: instanceName,
    size: options.size ?? 'small',
    image: options.image ?? 'debian-12',
    subnet,
    firewalls: [firewall],
    keyPair: `${name}-key`,
    tags: { Name: instanceName, Version: '1' },
    role: instanceName,
  });
  return {
    name,
    provider: { id: harness.provider.id, region: harness.provider.region },
    network: {
      name: 'net',
      cidr: '10.40.0.0/16',
      subnets: [
        { name: 'public', cidr: '10.40.1.0/24', access: 'public' },
        { name: 'private', cidr: '10.40.2.0/24', access: 'private' },
      ],
    },
    firewalls: [
      {
        name: 'web',
        description: 'web tier',
        ingress: [
          { protocol: 'tcp', ports: 80, from: '0.0.0.0/0' },
          { protocol: 'tcp', ports: 443, from: '0.0.0.0/0' },
        ],
        ...(options.skip.includes('egressRules') ? {} : { egress: [{ protocol: 'all', to: '0.0.0.0/0' }] }),
      },
      { name: 'data', description: 'data tier', ingress: [{ protocol: 'tcp', ports: 3306, from: dataPeer }] },
    ],
    keyPairs: [
      { name: `${name}-key`, publicKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINNNN+naQ04mtUQiKtltKiEhFP2Cg0PPwVJ+CiBH6+IR conformance' },
    ],
    instances: [instance('web', 'public', 'web'), instance('db', 'private', 'data')],
    ...(options.withDns && harness.dnsZone
      ? { dns: { zone: harness.dnsZone, records: [{ name: name, type: 'A' as const, ttl: 300, values: ['192.0.2.10'] }] } }
      : {}),
  };
}

export function describeProviderConformance(options: ConformanceOptions): void {
  const skip = options.skip ?? [];
  const timeout = options.timeoutMs ?? 60_000;
  const retry: Partial<RetryPolicy> = { minDelayMs: 20, maxDelayMs: 500, maxAttempts: 12, ...options.retry };

  describe(`provider conformance: ${options.name}`, () => {
    let harness: ConformanceHarness;
    const environments = new Set<string>();

    beforeAll(async () => {
      harness = await options.setup();
    });
    afterEach(async () => {
      harness.faults.reset();
      for (const environment of environments) {
        const { execution } = await destroyEnvironment({ environment, provider: harness.provider, retry });
        if (execution.status === 'succeeded') environments.delete(environment);
      }
    });
    afterAll(async () => {
      await harness?.close?.();
    });

    const execute = (options: Omit<ExecuteOptions, 'provider'> = {}) => ({ provider: harness.provider, retry, ...options });

    /** A fresh spec with a unique environment name, cleaned up after the test. */
    async function freshSpec(specOptions: { withDns?: boolean } = {}): Promise<EnvironmentSpec> {
      const spec = await parseSpec(
        conformanceSpec(harness, { skip, ...(options.size ? { size: options.size } : {}), ...(options.image ? { image: options.image } : {}), ...specOptions }),
      );
      environments.add(spec.name);
      return spec;
    }

    async function build(specOptions: { withDns?: boolean } = {}): Promise<{ spec: EnvironmentSpec; result: ExecutionResult; planned: Plan }> {
      const spec = await freshSpec(specOptions);
      const planned = await plan({ spec, provider: harness.provider });
      const result = await executePlan(planned, execute());
      return { spec, result, planned };
    }

    async function observedOf(spec: EnvironmentSpec): Promise<Map<string, ObservedResource>> {
      return new Map((await discover(harness.provider, spec.name)).map((resource) => [resource.address, resource]));
    }

    it('declares the capabilities it skips, and no others', () => {
      expect([...missingCapabilities(harness.provider.capabilities)].sort()).toEqual([...skip].sort());
      expect(harness.provider.specificationVersion).toBe('v1');
    });

    it('creates every resource and reports instance addresses', { timeout }, async () => {
      const { spec, result, planned } = await build();
      expect(result.failed).toEqual([]);
      expect(result.status).toBe('succeeded');
      const found = await observedOf(spec);
      // What the provider planned (after adapting the spec to its cloud) is what must exist.
      const expected = planned.actions.map((action) => action.address);
      for (const address of ['network.net', 'firewall.web', 'firewall.data', `keyPair.${spec.name}-key`, 'instance.web', 'instance.db']) expect(expected).toContain(address);
      if (harness.provider.capabilities.subnets === 'native') expect(expected).toEqual(expect.arrayContaining(['subnet.public', 'subnet.private']));
      expect([...found.keys()].sort()).toEqual([...expected].sort());
      const native = harness.provider.capabilities.subnets === 'native';
      expect(found.get('instance.web')?.outputs.privateIp).toMatch(native ? /^10\.40\.1\.\d+$/ : /^10\.40\.\d+\.\d+$/);
      expect(found.get('instance.db')?.outputs.privateIp).toMatch(native ? /^10\.40\.2\.\d+$/ : /^10\.40\.\d+\.\d+$/);
      expect(found.get('instance.web')?.outputs.publicIp).toBeTruthy();
      expect(found.get('instance.web')?.properties).toMatchObject({ tags: { Name: 'web', Version: '1' }, role: 'web' });
    });

    it('re-plans empty after apply: discovery by ownership tags finds everything', { timeout }, async () => {
      const { spec } = await build();
      const second = await plan({ spec, provider: harness.provider });
      expect(second.actions.filter((action) => action.type !== 'noop')).toEqual([]);
      expect(isEmptyPlan(second)).toBe(true);
    });

    it('finishes an interrupted run without duplicates', { timeout }, async () => {
      const spec = await freshSpec();
      const controller = new AbortController();
      let succeeded = 0;
      const first = await executePlan(
        await plan({ spec, provider: harness.provider }),
        execute({ concurrency: 1, signal: controller.signal, onEvent: (event) => event.type === 'succeeded' && ++succeeded === 4 && controller.abort() }),
      );
      expect(first.status).toBe('cancelled');
      const resumed = await plan({ spec, provider: harness.provider });
      expect(resumed.summary.noop).toBeGreaterThanOrEqual(4);
      expect(resumed.summary.create).toBeGreaterThan(0);
      const second = await executePlan(resumed, execute());
      expect(second.status).toBe('succeeded');
      expect(await harness.countInstances(spec.name)).toBe(2);
      expect(isEmptyPlan(await plan({ spec, provider: harness.provider }))).toBe(true);
    });

    it('updates in place what can change in place', { timeout }, async () => {
      const { spec } = await build();
      const changed: EnvironmentSpec = {
        ...spec,
        firewalls: spec.firewalls.map((firewall) =>
          firewall.name === 'web' ? { ...firewall, ingress: [...firewall.ingress, { protocol: 'tcp', ports: { from: 8080, to: 8080 }, from: { cidr: '0.0.0.0/0' } }] } : firewall,
        ),
        instances: spec.instances.map((instance) => ({ ...instance, tags: { ...instance.tags, Version: '2' } })),
      };
      const update = await plan({ spec: changed, provider: harness.provider });
      const types = Object.fromEntries(update.actions.filter((action) => action.type !== 'noop').map((action) => [action.address, action.type]));
      expect(types).toEqual({ 'firewall.web': 'update', 'instance.web': 'update', 'instance.db': 'update' });
      // The plan's text shows the rule added and the tag changed, not a cut-off copy of each list.
      const text = renderPlanText(update);
      expect(text).toMatch(/^ {10}\+ \{.*"from":8080.*"to":8080.*\}$/m);
      expect(text).toMatch(/^ {10}Version: "1" -> "2"$/m);
      const before = await observedOf(spec);
      expect((await executePlan(update, execute())).status).toBe('succeeded');
      const after = await observedOf(spec);
      expect(after.get('instance.web')?.id).toBe(before.get('instance.web')?.id);
      expect(after.get('instance.web')?.properties).toMatchObject({ tags: { Version: '2' } });
      expect((after.get('firewall.web') as ObservedResource<'firewall'>).properties.ingress).toHaveLength(3);
      expect(isEmptyPlan(await plan({ spec: changed, provider: harness.provider }))).toBe(true);
    });

    it('settles an instance with no firewalls, and takes firewalls away and back in place', { timeout }, async () => {
      const spec = await freshSpec();
      const bare: EnvironmentSpec = { ...spec, instances: spec.instances.map((instance) => (instance.name === 'db' ? { ...instance, firewalls: [] } : instance)) };
      expect((await executePlan(await plan({ spec: bare, provider: harness.provider }), execute())).status).toBe('succeeded');
      // Whatever the cloud gives an instance launched without groups (EC2: the VPC's default group) is "none".
      expect(isEmptyPlan(await plan({ spec: bare, provider: harness.provider }))).toBe(true);
      const before = await observedOf(spec);
      // None of the spec's (a provider may add its own, as DigitalOcean does for a private subnet).
      expect((before.get('instance.db') as ObservedResource<'instance'>).properties.firewalls).not.toContain('data');
      // web's firewall taken away, then given back: each an update in place, each settling.
      for (const firewalls of [[], ['web']]) {
        const changed: EnvironmentSpec = { ...bare, instances: bare.instances.map((instance) => (instance.name === 'web' ? { ...instance, firewalls } : instance)) };
        const update = await plan({ spec: changed, provider: harness.provider });
        expect(update.actions.filter((action) => action.type !== 'noop').map((action) => [action.address, action.type])).toEqual([['instance.web', 'update']]);
        expect((await executePlan(update, execute())).status).toBe('succeeded');
        expect(isEmptyPlan(await plan({ spec: changed, provider: harness.provider }))).toBe(true);
        const after = await observedOf(spec);
        expect(after.get('instance.web')?.id).toBe(before.get('instance.web')?.id);
        const held = (after.get('instance.web') as ObservedResource<'instance'>).properties.firewalls;
        if (firewalls.length > 0) expect(held).toContain('web');
        else expect(held).not.toContain('web');
      }
    });

    it('lets one apply of an environment run at a time: a second waits and finds nothing left to do, or refuses', { timeout }, async () => {
      const spec = await freshSpec();
      const directory = await mkdtemp(join(tmpdir(), 'armada-conformance-lock-'));
      try {
        const lock = localLock({ directory });
        const both = (lockWaitMs: number) => applyEnvironment({ spec, provider: harness.provider, retry, lock, lockWaitMs, rules: [] });
        const first = both(0);
        // The second starts once the first holds the lock; refused at once, then waiting for it.
        const file = join(directory, `${encodeURIComponent(lockKey(harness.provider, spec.name))}.lock`);
        for (let attempt = 0; !existsSync(file); attempt++) {
          if (attempt > 2000) throw new Error('the first apply never took the lock');
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
        const refused = await both(0).catch((caught: unknown) => caught);
        const [one, two] = await Promise.all([first, both(timeout)]);
        // Refused only while the first still held it (a fast provider may be done already).
        if (refused instanceof Error) expect(refused).toBeInstanceOf(LockedError);
        expect(one.execution.status).toBe('succeeded');
        expect(two.execution.status).toBe('succeeded');
        expect(two.plan.summary.create + two.plan.summary.replace + two.plan.summary.delete).toBe(0);
        expect(await harness.countInstances(spec.name)).toBe(2);
      } finally {
        await rm(directory, { recursive: true, force: true });
      }
    });

    it('scales an instance group keeping every instance that stays wanted: count 1 -> 2 -> 3 -> 1', { timeout }, async () => {
      const { spec } = await build();
      const first = (await observedOf(spec)).get('instance.web')?.id;
      expect(first).toBeTruthy();
      const scaled = (count: number): EnvironmentSpec => ({ ...spec, instances: spec.instances.map((instance) => (instance.name === 'web' ? { ...instance, count } : instance)) });
      const changesOf = (planned: Plan) => Object.fromEntries(planned.actions.filter((action) => action.type !== 'noop').map((action) => [action.address, action.type]));
      const applyAndSettle = async (target: EnvironmentSpec) => {
        const planned = await plan({ spec: target, provider: harness.provider });
        const result = await executePlan(planned, execute());
        expect(result.failed).toEqual([]);
        expect(result.status).toBe('succeeded');
        expect(isEmptyPlan(await plan({ spec: target, provider: harness.provider }))).toBe(true);
        return observedOf(spec);
      };

      // 1 -> 2: `web` is kept as `web-1` (the plan says so), `web-2` is added.
      const two = await plan({ spec: scaled(2), provider: harness.provider });
      expect(changesOf(two)).toEqual({ 'instance.web-1': 'update', 'instance.web-2': 'create' });
      expect(two.actions.find((action) => action.address === 'instance.web-1')?.movedFrom).toBe('instance.web');
      expect(renderPlanText(two)).toMatch(/~ instance\.web-1 {2}\(renamed from instance\.web, kept\)/);
      let found = await applyAndSettle(scaled(2));
      expect(found.get('instance.web-1')?.id).toBe(first);
      expect(found.get('instance.web-1')?.properties).toMatchObject({ tags: { Name: 'web-1' } });
      expect(found.has('instance.web')).toBe(false);
      const second = found.get('instance.web-2')?.id;
      expect(await harness.countInstances(spec.name)).toBe(3);

      // 2 -> 3: only an addition.
      expect(changesOf(await plan({ spec: scaled(3), provider: harness.provider }))).toEqual({ 'instance.web-3': 'create' });
      found = await applyAndSettle(scaled(3));
      expect([found.get('instance.web-1')?.id, found.get('instance.web-2')?.id]).toEqual([first, second]);
      expect(await harness.countInstances(spec.name)).toBe(4);

      // 3 -> 1: the first is kept as `web`; the highest-numbered go.
      const one = await plan({ spec: scaled(1), provider: harness.provider });
      expect(changesOf(one)).toEqual({ 'instance.web': 'update', 'instance.web-2': 'delete', 'instance.web-3': 'delete' });
      found = await applyAndSettle(scaled(1));
      expect(found.get('instance.web')?.id).toBe(first);
      expect(found.get('instance.web')?.properties).toMatchObject({ tags: { Name: 'web' } });
      expect(await harness.countInstances(spec.name)).toBe(2);
    });

    it('shows a changed rule in the plan text: a port 443 -> 8443', { timeout }, async () => {
      const { spec } = await build();
      const changed: EnvironmentSpec = {
        ...spec,
        firewalls: spec.firewalls.map((firewall) =>
          firewall.name === 'web'
            ? { ...firewall, ingress: firewall.ingress.map((rule) => (rule.protocol === 'tcp' && rule.ports?.from === 443 ? { ...rule, ports: { from: 8443, to: 8443 } } : rule)) }
            : firewall,
        ),
      };
      const update = await plan({ spec: changed, provider: harness.provider });
      expect(update.actions.filter((action) => action.type !== 'noop').map((action) => [action.address, action.type])).toEqual([['firewall.web', 'update']]);
      const text = renderPlanText(update);
      expect(text).toMatch(/^ {10}- \{.*"from":443.*"to":443.*\}$/m);
      expect(text).toMatch(/^ {10}\+ \{.*"from":8443.*"to":8443.*\}$/m);
      expect((await executePlan(update, execute())).status).toBe('succeeded');
      const ingress = ((await observedOf(spec)).get('firewall.web') as ObservedResource<'firewall'>).properties.ingress;
      expect(ingress.map((rule) => rule.ports?.from).sort()).toEqual([80, 8443]);
      expect(isEmptyPlan(await plan({ spec: changed, provider: harness.provider }))).toBe(true);
    });

    it('replaces what cannot change in place', { timeout }, async () => {
      const { spec } = await build();
      const before = await observedOf(spec);
      const changed: EnvironmentSpec = {
        ...spec,
        instances: spec.instances.map((instance) => (instance.name === 'web' ? { ...instance, userData: '#cloud-config\n# v2\n' } : instance)),
      };
      const replace = await plan({ spec: changed, provider: harness.provider });
      expect(replace.actions.find((action) => action.address === 'instance.web')?.type).toBe('replace');
      expect(replace.summary).toMatchObject({ replace: 1, create: 0, delete: 0, update: 0 });
      expect((await executePlan(replace, execute())).status).toBe('succeeded');
      const after = await observedOf(spec);
      expect(after.get('instance.web')?.id).not.toBe(before.get('instance.web')?.id);
      expect(after.get('instance.db')?.id).toBe(before.get('instance.db')?.id);
      expect(await harness.countInstances(spec.name)).toBe(2);
      expect(isEmptyPlan(await plan({ spec: changed, provider: harness.provider }))).toBe(true);
    });

    it('destroys in dependency order and leaves nothing', { timeout }, async () => {
      const { spec, planned } = await build();
      // Without faults, a destroy in the right order never meets a dependency violation to retry.
      const retried: string[] = [];
      const { plan: destroyPlan, execution } = await destroyEnvironment({
        environment: spec.name,
        ...execute({ onEvent: (event) => event.type === 'retried' && retried.push(`${event.address}: ${event.error.code}`) }),
      });
      expect(retried).toEqual([]);
      expect(destroyPlan.summary.delete).toBe(planned.actions.length);
      expect(execution.failed).toEqual([]);
      expect(execution.status).toBe('succeeded');
      expect(await discover(harness.provider, spec.name)).toEqual([]);
      expect(await harness.countInstances(spec.name)).toBe(0);
      environments.delete(spec.name);
    });

    it('maps errors to the typed errors of core', { timeout }, async () => {
      await expect(
        Promise.resolve().then(() => harness.provider.resolveInstanceType({ instance: 'huge', size: { cpus: 4096, memoryGiB: 65536 }, image: 'debian-12', options: {} })),
      ).rejects.toSatisfy(ValidationError.isInstance);
      await expect(
        Promise.resolve().then(() => harness.provider.resolveInstanceType({ instance: 'odd', size: 'small', image: 'plan9-4', options: {} })),
      ).rejects.toSatisfy(ValidationError.isInstance);
      const { spec } = await build();
      const found = await observedOf(spec);
      const network = found.get(addressOf('network', 'net')) as ObservedResource<'network'>;
      // Deleting a network that still has subnets is refused as a (retryable) dependency violation.
      const refused = await harness.provider.services.network
        .delete(network, directContext(spec.name, network))
        .then(
          () => undefined,
          (error: unknown) => error,
        );
      expect(ConflictError.isInstance(refused), `expected a ConflictError, got ${String(refused)}`).toBe(true);
      expect((refused as ArmadaError).code).toBe('DependencyViolation');
      expect((refused as ArmadaError).retryable).toBe(true);
      // Deleting what is already gone is success.
      const { execution } = await destroyEnvironment({ environment: spec.name, ...execute() });
      expect(execution.status).toBe('succeeded');
      const instance = found.get('instance.web') as ObservedResource<'instance'>;
      await expect(
        harness.provider.services.instance.delete(instance, directContext(spec.name, instance)),
      ).resolves.toBeUndefined();
    });

    it('retries throttled calls and converges with no duplicates', { timeout }, async () => {
      harness.faults.configure({ throttleRate: 0.2 });
      const spec = await freshSpec();
      const planned = await plan({ spec, provider: harness.provider, retry });
      const result = await executePlan(planned, execute());
      expect(result.failed).toEqual([]);
      expect(result.status).toBe('succeeded');
      // Retried by the executor or inside the provider: either way the throttling was real.
      expect(harness.faults.throttledCalls).toBeGreaterThan(0);
      harness.faults.configure({ throttleRate: 0 });
      expect(await harness.countInstances(spec.name)).toBe(2);
      expect(isEmptyPlan(await plan({ spec, provider: harness.provider }))).toBe(true);
    });

    it('tolerates eventual consistency: new ids not yet visible', { timeout }, async () => {
      harness.faults.configure({ eventualConsistencyMs: 300 });
      const { spec, result } = await build();
      expect(result.failed).toEqual([]);
      expect(result.status).toBe('succeeded');
      await new Promise((resolve) => setTimeout(resolve, 350));
      expect(await harness.countInstances(spec.name)).toBe(2);
      expect(isEmptyPlan(await plan({ spec, provider: harness.provider }))).toBe(true);
    });

    it('never makes a second instance when a create response is lost', { timeout }, async () => {
      harness.faults.loseNextResponse('createInstance');
      const { spec, result } = await build();
      expect(result.status).toBe('succeeded');
      expect(await harness.countInstances(spec.name)).toBe(2);
      expect(isEmptyPlan(await plan({ spec, provider: harness.provider }))).toBe(true);
    });

    it.skipIf(skip.includes('dns'))('manages DNS records: create, update TTL, delete', { timeout }, async () => {
      const { spec, result } = await build({ withDns: true });
      expect(result.status).toBe('succeeded');
      const record = spec.dns?.records[0];
      expect(record).toBeDefined();
      const listed = await harness.provider.dns?.listRecords(spec.dns?.zone ?? '');
      expect(listed).toContainEqual(expect.objectContaining({ name: record?.name, type: 'A', ttl: 300, values: ['192.0.2.10'] }));
      const lowered: EnvironmentSpec = { ...spec, dns: { zone: spec.dns?.zone ?? '', records: [{ ...(record as NonNullable<typeof record>), ttl: 60 }] } };
      const update = await plan({ spec: lowered, provider: harness.provider });
      expect(update.actions.filter((action) => action.type !== 'noop').map((action) => [action.kind, action.type])).toEqual([['dnsRecord', 'update']]);
      expect((await executePlan(update, execute())).status).toBe('succeeded');
      expect(await harness.provider.dns?.listRecords(spec.dns?.zone ?? '')).toContainEqual(expect.objectContaining({ name: record?.name, ttl: 60 }));
    });

    it.skipIf(skip.includes('egressRules'))('keeps egress rules', { timeout }, async () => {
      const { spec } = await build();
      const web = (await observedOf(spec)).get('firewall.web') as ObservedResource<'firewall'>;
      expect(web.properties.egress).toEqual([{ protocol: 'all', peer: { cidr: '0.0.0.0/0' } }]);
    });

  });
}
