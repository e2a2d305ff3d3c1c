import { describe, expect, it } from 'vitest';
import {
  UnsupportedError,
  ValidationError,
  diff,
  executePlan,
  parseSpec,
  plan,
  planDestroy,
  planToJSON,
  renderPlanText,
  sortByDependencies,
  stableStringify,
  type DesiredResource,
  type EnvironmentSpecInput,
  type ObservedResource,
} from '../src/index.js';
import { FakeProvider, baseNetwork, desired, instance } from './fake-provider.js';

const publicKey = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINNNN+naQ04mtUQiKtltKiEhFP2Cg0PPwVJ+CiBH6+IR test';

function specInput(overrides: Partial<EnvironmentSpecInput> = {}): EnvironmentSpecInput {
  return {
    name: 'plan-test',
    provider: { id: 'fake', region: 'test-1' },
    network: { name: 'net', cidr: '10.0.0.0/16', subnets: [{ name: 'a', cidr: '10.0.1.0/24', access: 'public' }] },
    firewalls: [
      {
        name: 'web',
        description: 'web',
        ingress: [
          { protocol: 'tcp', ports: 443, from: '0.0.0.0/0' },
          { protocol: 'tcp', ports: 80, from: '0.0.0.0/0' },
        ],
      },
    ],
    keyPairs: [{ name: 'deploy', publicKey }],
    instances: [
      {
        name: 'web',
        count: 3,
        size: { cpus: 2, memoryGiB: 4 },
        image: 'debian-12',
        subnet: 'a',
        firewalls: ['web'],
        keyPair: 'deploy',
        tags: { Name: 'web', Version: '1' },
        userData: '#!/bin/sh\nexport DB_PASSWORD=hunter2\n',
      },
    ],
    ...overrides,
  };
}

describe('plan', () => {
  it('compiles the spec: counts expand, Name tags get the index, sizes resolve through the provider', async () => {
    const fake = new FakeProvider();
    const planned = await plan({ spec: await parseSpec(specInput()), provider: fake.provider() });
    const instances = planned.actions.filter((action) => action.kind === 'instance');
    expect(instances.map((action) => action.address)).toEqual(['instance.web-1', 'instance.web-2', 'instance.web-3']);
    expect(instances.map((action) => (action.desired as DesiredResource<'instance'>).properties.tags.Name)).toEqual(['web-1', 'web-2', 'web-3']);
    expect(instances[0]?.desired?.properties).toMatchObject({ size: '2x4', image: 'debian-12', firewalls: ['web'], keyPair: 'deploy' });
    expect(planned.summary).toEqual({ create: 7, update: 0, replace: 0, delete: 0, noop: 0 });
  });

  it('is empty after apply, whatever order rules come back in', async () => {
    const fake = new FakeProvider();
    const spec = await parseSpec(specInput());
    const provider = fake.provider();
    await executePlan(await plan({ spec, provider }), { provider });
    // The cloud may list rules in another order: reverse them behind the planner's back.
    const stored = fake.resources.get('firewall.web') as ObservedResource<'firewall'>;
    stored.properties = { ...stored.properties, ingress: [...stored.properties.ingress].reverse() };
    const second = await plan({ spec, provider });
    expect(second.summary).toEqual({ create: 0, update: 0, replace: 0, delete: 0, noop: 7 });
    expect(renderPlanText(second)).toContain('No changes.');
  });

  it('updates what can change in place and replaces what cannot', async () => {
    const fake = new FakeProvider();
    const provider = fake.provider();
    await executePlan(await plan({ spec: await parseSpec(specInput()), provider }), { provider });
    const changed = specInput();
    const web = changed.instances?.[0];
    if (web) {
      web.tags = { Name: 'web', Version: '2' };
      web.size = 'xlarge';
    }
    const second = await plan({ spec: await parseSpec(changed), provider });
    const action = second.actions.find((entry) => entry.address === 'instance.web-1');
    expect(action?.type).toBe('replace');
    expect(action?.changes.map((change) => [change.property, change.forcesReplacement])).toEqual([
      ['size', true],
      ['tags', false],
    ]);

    const onlyTags = specInput();
    if (onlyTags.instances?.[0]) onlyTags.instances[0].tags = { Name: 'web', Version: '2' };
    const third = await plan({ spec: await parseSpec(onlyTags), provider });
    expect(third.summary).toMatchObject({ update: 3, replace: 0 });
  });

  it('shows in the text the one rule that changed in a long list, and each tag that changed', async () => {
    const fake = new FakeProvider();
    const provider = fake.provider();
    const input = specInput();
    const rules = [22, 80, 443, 5432, 6379, 8000, 8080, 9090].map((port) => ({ protocol: 'tcp' as const, ports: port, from: '10.0.0.0/16' }));
    if (input.firewalls?.[0]) input.firewalls[0].ingress = rules;
    await executePlan(await plan({ spec: await parseSpec(input), provider }), { provider });
    const changed = specInput();
    if (changed.firewalls?.[0]) changed.firewalls[0].ingress = rules.map((rule) => (rule.ports === 443 ? { ...rule, ports: 8443 } : rule));
    if (changed.instances?.[0]) changed.instances[0].tags = { Name: 'web', Version: '2', Team: 'shop' };
    const text = renderPlanText(await plan({ spec: await parseSpec(changed), provider }));
    const lines = text.split('\n');
    const ingress = lines.findIndex((line) => line.trim() === 'ingress:');
    expect(ingress).toBeGreaterThan(0);
    expect(lines[ingress + 1]).toMatch(/^ {10}- \{.*"from":443.*"to":443/);
    expect(lines[ingress + 2]).toMatch(/^ {10}\+ \{.*"from":8443.*"to":8443/);
    expect(text).toContain('          Team: (none) -> "shop"');
    expect(text).toMatch(/ {10}Version: "\d" -> "2"/);
  });

  it('masks sensitive values in text and JSON', async () => {
    const fake = new FakeProvider();
    const provider = fake.provider();
    await executePlan(await plan({ spec: await parseSpec(specInput()), provider }), { provider });
    const changed = specInput();
    if (changed.instances?.[0]) changed.instances[0].userData = '#!/bin/sh\nexport DB_PASSWORD=swordfish\n';
    const second = await plan({ spec: await parseSpec(changed), provider });
    const text = renderPlanText(second);
    const json = JSON.stringify(planToJSON(second));
    expect(text).toContain('userData: (sensitive) -> (sensitive)');
    for (const output of [text, json]) {
      expect(output).not.toContain('hunter2');
      expect(output).not.toContain('swordfish');
    }
    expect(json).toContain('(sensitive)');
  });

  it('deletes what the environment owns and the spec no longer has', async () => {
    const fake = new FakeProvider();
    const provider = fake.provider();
    await executePlan(await plan({ spec: await parseSpec(specInput()), provider }), { provider });
    const smaller = specInput();
    if (smaller.instances?.[0]) smaller.instances[0].count = 1;
    const second = await plan({ spec: await parseSpec(smaller), provider });
    // count 3 -> 1 keeps web-1 as web (an update that re-labels it) and deletes the highest-numbered.
    expect(second.actions.filter((action) => action.type === 'delete').map((action) => action.address)).toEqual(['instance.web-2', 'instance.web-3']);
    const kept = second.actions.find((action) => action.address === 'instance.web');
    expect([kept?.type, kept?.movedFrom, kept?.current?.address]).toEqual(['update', 'instance.web-1', 'instance.web-1']);
    expect(second.summary).toMatchObject({ create: 0, update: 1, delete: 2, replace: 0 });
    const destroy = await planDestroy({ environment: 'plan-test', provider });
    expect(destroy.mode).toBe('destroy');
    expect(destroy.actions.map((action) => action.kind)).toEqual(['instance', 'instance', 'instance', 'keyPair', 'firewall', 'subnet', 'network']);
  });

  it('moves only to an address it may have had, never onto a wanted one, and replaces when the service cannot update', () => {
    const fake = new FakeProvider();
    const web = (name: string, movedFrom?: string) => ({ ...instance(name, 'a'), ...(movedFrom ? { movedFrom: [`instance.${movedFrom}` as const] } : {}) });
    const observed = (name: string, id: string) => ({ ...instance(name, 'a'), id, outputs: {} });
    // web-1 still wanted: web is not moved onto it, and goes.
    const both = diff({ environment: 'x', provider: fake.provider(), desired: [web('web-1', 'web'), web('web-2')], observed: [observed('web', 'i-1'), observed('web-1', 'i-2')] });
    expect(both.actions.map((action) => [action.address, action.type, action.current?.id])).toEqual([
      ['instance.web-1', 'noop', 'i-2'],
      ['instance.web-2', 'create', undefined],
      ['instance.web', 'delete', 'i-1'],
    ]);
    // No update in place: nothing can be re-labelled, so the old one is deleted and a new one made.
    const fixed = diff({ environment: 'x', provider: new FakeProvider({ updatable: false }).provider(), desired: [web('web-1', 'web')], observed: [observed('web', 'i-1')] });
    expect(fixed.actions.map((action) => [action.address, action.type])).toEqual([
      ['instance.web-1', 'create'],
      ['instance.web', 'delete'],
    ]);
  });

  it('finishes in place what an interrupted run left half made, or replaces it when the service cannot update', () => {
    const firewall = desired('firewall', 'web', { network: 'net', description: 'web', ingress: [] });
    const observed = [{ ...firewall, id: 'sg-1', outputs: {}, unfinished: 'its rules are not all there' }];
    const finished = diff({ environment: 'x', provider: new FakeProvider().provider(), desired: [firewall], observed });
    expect(finished.actions.map((action) => [action.type, action.reason])).toEqual([['update', 'unfinished: its rules are not all there']]);
    const replaced = diff({ environment: 'x', provider: new FakeProvider({ updatable: false }).provider(), desired: [firewall], observed });
    expect(replaced.actions.map((action) => action.type)).toEqual(['replace']);
  });

  it('plans a delete for a second resource claiming the same address (left by an interrupted run)', () => {
    const fake = new FakeProvider();
    const provider = fake.provider();
    const network = desired('network', 'net', { cidr: '10.0.0.0/16' });
    const observed = [
      { ...network, id: 'net-1', outputs: {} },
      { ...network, id: 'net-2', outputs: {} },
    ];
    const planned = diff({ environment: 'x', provider, desired: [network], observed });
    expect(planned.actions.map((action) => [action.type, action.current?.id])).toEqual([
      ['noop', 'net-1'],
      ['delete', 'net-2'],
    ]);
  });

  it('reports a dependency cycle with its members', () => {
    const a = desired('firewall', 'a', { network: 'net', description: 'a', ingress: [{ protocol: 'tcp', peer: { firewall: 'b' } }] });
    const b = desired('firewall', 'b', { network: 'net', description: 'b', ingress: [{ protocol: 'tcp', peer: { firewall: 'a' } }] });
    const self = desired('firewall', 'c', { network: 'net', description: 'c', ingress: [{ protocol: 'tcp', peer: { firewall: 'c' } }] });
    expect(self.dependsOn).toEqual(['network.net']);
    const error = (() => {
      try {
        sortByDependencies([...baseNetwork(), a, b, self]);
      } catch (caught) {
        return caught;
      }
    })();
    expect(ValidationError.isInstance(error)).toBe(true);
    expect((error as ValidationError).issues[0]?.path).toBe('firewall.a, firewall.b');
  });

  it('refuses DNS records on a provider without DNS, naming the capability', async () => {
    const fake = new FakeProvider();
    const spec = await parseSpec(specInput({ dns: { zone: 'example.com', records: [{ name: 'www', type: 'A', values: ['192.0.2.1'] }] } }));
    const error = await plan({ spec, provider: fake.provider() }).catch((caught: unknown) => caught);
    expect(UnsupportedError.isInstance(error)).toBe(true);
    expect((error as UnsupportedError).capability).toBe('dns');
  });

  it('turns provider validation errors into issues with the instance path', async () => {
    const fake = new FakeProvider();
    const provider = fake.provider();
    provider.resolveInstanceType = () => {
      throw new ValidationError('no such size', { issues: [{ path: 'size', message: 'too big', fix: 'use large' }] });
    };
    const error = await plan({ spec: await parseSpec(specInput()), provider }).catch((caught: unknown) => caught);
    expect(ValidationError.isInstance(error)).toBe(true);
    expect((error as ValidationError).issues).toEqual([{ path: 'instances[0].size', message: 'too big', fix: 'use large' }]);
  });
});

describe('stableStringify', () => {
  it('ignores key order and undefined values', () => {
    expect(stableStringify({ b: 1, a: { d: undefined, c: [1, 2] } })).toBe(stableStringify({ a: { c: [1, 2] }, b: 1 }));
    expect(stableStringify({ a: [1, 2] })).not.toBe(stableStringify({ a: [2, 1] }));
  });
  it('keeps instance order in the fake helpers stable', () => {
    expect(instance('x', 'a').dependsOn).toEqual(['subnet.a']);
  });
});

describe('sensitive values reported as digests', () => {
  it('compares a digest with the digest of the desired value', async () => {
    const { digestOf } = await import('../src/index.js');
    const fake = new FakeProvider();
    const provider = fake.provider();
    const web = instance('web', 'a', { userData: 'secret-v1' });
    const observed = [{ ...web, id: 'i-1', outputs: {}, properties: { ...web.properties, userData: digestOf('secret-v1') } }];
    expect(diff({ environment: 'x', provider, desired: [web], observed }).actions[0]?.type).toBe('noop');
    const changed = instance('web', 'a', { userData: 'secret-v2' });
    const action = diff({ environment: 'x', provider, desired: [changed], observed }).actions[0];
    expect(action?.type).toBe('update');
    expect(action?.changes.map((change) => [change.property, change.sensitive])).toEqual([['userData', true]]);
  });
});
