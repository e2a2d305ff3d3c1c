/**
 * The story's source environment (the same web and data tiers, as they run on DigitalOcean),
 * through the real dots-wrapper client against the emulator: applies, re-plans empty, destroys to
 * nothing; and completes with no duplicate droplets when a fifth of the calls get a 429.
 */
import { createApiClient } from 'dots-wrapper';
import { destroyEnvironment, executePlan, isEmptyPlan, loadSpecFile, plan, type EnvironmentSpec, type ProviderV1 } from '@armada/core';
import { startDigitalOceanEmulator, type DigitalOceanEmulator } from '@armada/testkit';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDigitalOceanProvider, tag } from '../src/index.js';

const specPath = fileURLToPath(new URL('../../../examples/environments/armada.yaml', import.meta.url));
const fastRetry = { minDelayMs: 10, maxDelayMs: 200, maxAttempts: 15 };

async function armadaOnDigitalOcean(): Promise<EnvironmentSpec> {
  return { ...(await loadSpecFile(specPath)), provider: { id: 'digitalocean', region: 'nyc3' } };
}

describe('the Armada environment on the DigitalOcean emulator', () => {
  let emulator: DigitalOceanEmulator;
  let provider: ProviderV1;
  let spec: EnvironmentSpec;

  beforeAll(async () => {
    emulator = await startDigitalOceanEmulator({ bootMs: 80 });
    provider = createDigitalOceanProvider({ region: 'nyc3', token: 'story', endpoint: `${emulator.endpoint}/v2`, pollIntervalMs: 20 });
    spec = await armadaOnDigitalOcean();
  });
  afterAll(async () => {
    await emulator?.close();
  });

  it('applies the web and data tiers, honouring the private subnet with a firewall', async () => {
    await provider.verify?.();
    const planned = await plan({ spec, provider });
    // 1 VPC, 1 key, the spec's 2 firewalls, 4 droplets; no subnets. The data tier has its own
    // firewall, so no guard is added (a guard admitting the VPC would undo Data Internal's rules).
    expect(planned.summary.create).toBe(8);
    expect(planned.actions.some((action) => action.kind === 'subnet')).toBe(false);
    const result = await executePlan(planned, { provider, retry: fastRetry });
    expect(result.failed).toEqual([]);
    expect(result.status).toBe('succeeded');

    const api = createApiClient({ token: 'story', endpoint: `${emulator.endpoint}/v2` });
    const firewalls = (await api.firewall.listFirewalls({ page: 1, per_page: 50 })).data.firewalls;
    const byName = Object.fromEntries(firewalls.map((firewall) => [firewall.name, firewall]));
    expect(Object.keys(byName).sort()).toEqual(['armada.armada.Data-20Internal', 'armada.armada.Web-20Public']);
    const inbound = (name: string) => byName[name]?.inbound_rules.map((rule) => `${rule.protocol} ${rule.ports} ${JSON.stringify(rule.sources)}`).sort();
    expect(inbound('armada.armada.Web-20Public')).toEqual(['tcp 22 {"addresses":["100.64.0.0/10"]}', 'tcp 443 {"addresses":["0.0.0.0/0"]}', 'tcp 80 {"addresses":["0.0.0.0/0"]}']);
    expect(inbound('armada.armada.Data-20Internal')).toEqual([
      'tcp 22 {"tags":["armada:fw:armada:Web_20Public"]}',
      'tcp 3306 {"tags":["armada:fw:armada:Data_20Internal"]}',
      'tcp 3306 {"tags":["armada:fw:armada:Web_20Public"]}',
      'tcp 6379 {"tags":["armada:fw:armada:Web_20Public"]}',
    ]);

    const droplets = emulator.dropletsTagged(tag('armada:env', 'armada'));
    const summary = droplets.map((droplet) => [droplet.name, droplet.status, droplet.tags.filter((entry) => entry.startsWith('tag:')).sort().join(' ')].join(' ')).sort();
    expect(summary).toEqual([
      'data-1 active tag:Name:data-1 tag:Version:1_2e0_2e0',
      'data-2 active tag:Name:data-2 tag:Version:1_2e0_2e0',
      'web-1 active tag:Name:web-1 tag:Version:1_2e0_2e0',
      'web-2 active tag:Name:web-2 tag:Version:1_2e0_2e0',
    ]);
    expect(droplets.some((droplet) => droplet.tags.includes(tag('armada:fw', 'armada', 'private-subnet-private')))).toBe(false);
  });

  it('plans nothing the second time', async () => {
    const second = await plan({ spec, provider });
    expect(second.actions.filter((action) => action.type !== 'noop')).toEqual([]);
    expect(isEmptyPlan(second)).toBe(true);
  });

  it('destroys to nothing', async () => {
    const { execution } = await destroyEnvironment({ environment: 'armada', provider, retry: fastRetry });
    expect(execution.failed).toEqual([]);
    const left = emulator.inventory();
    expect({ vpcs: left.vpcs, droplets: left.droplets, firewalls: left.firewalls, sshKeys: left.sshKeys }).toEqual({ vpcs: 0, droplets: 0, firewalls: 0, sshKeys: 0 });
  });
});

describe('the Armada environment on a bad day at DigitalOcean', () => {
  it.each([3, 42])('completes with no duplicate droplets when a fifth of the calls get a 429 (seed %i)', async (seed) => {
    const emulator = await startDigitalOceanEmulator({ bootMs: 80, retryAfterSeconds: 0, seed });
    try {
      const provider = createDigitalOceanProvider({ region: 'nyc3', token: 'story', endpoint: `${emulator.endpoint}/v2`, pollIntervalMs: 20 });
      const spec = await armadaOnDigitalOcean();
      emulator.faults.configure({ throttleRate: 0.2 });
      const planned = await plan({ spec, provider, retry: fastRetry });
      const result = await executePlan(planned, { provider, retry: fastRetry });
      expect(result.failed).toEqual([]);
      expect(result.status).toBe('succeeded');
      expect(emulator.faults.throttledCalls).toBeGreaterThan(3);
      emulator.faults.configure({ throttleRate: 0 });
      const droplets = emulator.dropletsTagged(tag('armada:env', 'armada'));
      expect(droplets.map((droplet) => droplet.name).sort()).toEqual(['data-1', 'data-2', 'web-1', 'web-2']);
      expect(isEmptyPlan(await plan({ spec, provider }))).toBe(true);
    } finally {
      await emulator.close();
    }
  });
});

describe('a private droplet with no firewall of its own', () => {
  it('is guarded: inbound from the VPC only', async () => {
    const emulator = await startDigitalOceanEmulator({ bootMs: 20 });
    try {
      const provider = createDigitalOceanProvider({ region: 'nyc3', token: 'story', endpoint: `${emulator.endpoint}/v2`, pollIntervalMs: 20 });
      const story = await armadaOnDigitalOcean();
      const bare: EnvironmentSpec = { ...story, instances: story.instances.map((group) => (group.subnet === 'private' ? { ...group, firewalls: [] } : group)) };
      const planned = await plan({ spec: bare, provider });
      expect(planned.actions.map((action) => action.address)).toContain('firewall.private-subnet-private');
      const result = await executePlan(planned, { provider, retry: fastRetry });
      expect(result.failed).toEqual([]);
      const api = createApiClient({ token: 'story', endpoint: `${emulator.endpoint}/v2` });
      const firewalls = (await api.firewall.listFirewalls({ page: 1, per_page: 50 })).data.firewalls;
      const guard = firewalls.find((firewall) => firewall.name === 'armada.armada.private-2dsubnet-2dprivate');
      expect(guard?.inbound_rules.every((rule) => JSON.stringify(rule.sources) === '{"addresses":["10.0.0.0/16"]}')).toBe(true);
      const guarded = emulator.dropletsTagged(tag('armada:env', 'armada')).filter((droplet) => droplet.tags.includes(tag('armada:fw', 'armada', 'private-subnet-private')));
      expect(guarded.map((droplet) => droplet.name).sort()).toEqual(['data-1', 'data-2']);
      expect(isEmptyPlan(await plan({ spec: bare, provider }))).toBe(true);
    } finally {
      await emulator.close();
    }
  });
});
