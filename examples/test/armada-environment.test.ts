/**
 * The story's target environment, end to end on the in-memory provider: it validates, plans the
 * four instances and what they need, applies, re-plans empty and destroys to nothing.
 */
import {
  PluginRegistry,
  builtInRules,
  checkEnvironment,
  evaluatePolicies,
  executePlan,
  destroyEnvironment,
  isEmptyPlan,
  loadSpecFile,
  parseSpecText,
  plan,
  planToJSON,
  renderPlanText,
  type EnvironmentSpec,
  type ProviderV1,
} from '@armada/core';
import { InMemoryCloud, inMemoryProviderPlugin } from '@armada/testkit';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';

const specPath = fileURLToPath(new URL('../environments/armada.yaml', import.meta.url));

describe('the Armada example environment on the in-memory provider', () => {
  let spec: EnvironmentSpec;
  let cloud: InMemoryCloud;
  let provider: ProviderV1;

  beforeAll(async () => {
    spec = await loadSpecFile(specPath);
    cloud = new InMemoryCloud();
    provider = new PluginRegistry().use(inMemoryProviderPlugin({ cloud })).provider(spec.provider.id, spec.provider.region);
  });

  it('validates with no policy violation', () => {
    const check = checkEnvironment(parseSpecText(readFileSync(specPath, 'utf8'), specPath));
    expect(check.violations).toEqual([]);
    expect(check.ok).toBe(true);
    expect(spec.keyPairs[0]?.publicKey).toMatch(/^ssh-ed25519 /);
  });

  it('plans every resource with its dependencies, 4 instances of the medium class', async () => {
    const planned = await plan({ spec, provider });
    expect(planned.summary).toEqual({ create: 10, update: 0, replace: 0, delete: 0, noop: 0 });
    const instances = planned.actions.filter((action) => action.kind === 'instance');
    expect(instances.map((action) => action.address)).toEqual(['instance.web-1', 'instance.web-2', 'instance.data-1', 'instance.data-2']);
    const byAddress = new Map(planned.actions.map((action) => [action.address, action]));
    expect(byAddress.get('instance.web-1')?.desired?.dependsOn).toEqual(['subnet.public', 'firewall.Web Public', 'keyPair.deploy']);
    expect(byAddress.get('instance.data-2')?.desired?.dependsOn).toEqual(['subnet.private', 'firewall.Data Internal', 'keyPair.deploy']);
    expect(byAddress.get('firewall.Data Internal')?.desired?.dependsOn).toEqual(['network.Armada', 'firewall.Web Public']);
    expect(byAddress.get('instance.web-1')?.desired?.properties).toMatchObject({ size: 'mem-medium', image: 'img-debian-12', tags: { Name: 'web-1', Version: '1.0.0' } });
    // Dependencies come first in the plan.
    const order = planned.actions.map((action) => action.address);
    for (const action of planned.actions) {
      for (const dependency of action.desired?.dependsOn ?? []) expect(order.indexOf(dependency)).toBeLessThan(order.indexOf(action.address));
    }
    expect(evaluatePolicies({ spec, plan: planned }, builtInRules).violations).toEqual([]);
    const text = renderPlanText(planned);
    expect(text).toContain('+ instance.web-1');
    expect(text).toContain('Plan: 10 to create, 0 to update, 0 to replace, 0 to delete, 0 unchanged.');
    expect(JSON.parse(JSON.stringify(planToJSON(planned)))).toMatchObject({ environment: 'armada', summary: { create: 10 } });
  });

  it('applies, then re-plans empty', async () => {
    const result = await executePlan(await plan({ spec, provider }), { provider });
    expect(result.failed).toEqual([]);
    expect(result.status).toBe('succeeded');
    expect(cloud.inventory()).toEqual({ networks: 1, subnets: 2, firewalls: 2, keyPairs: 1, instances: 4, dnsRecords: 0 });
    const tagged = cloud.instancesTagged({ 'armada:environment': 'armada' }).map((instance) => [instance.tags.Name, instance.tags.Version, instance.size]);
    expect(tagged.sort()).toEqual([
      ['data-1', '1.0.0', 'mem-medium'],
      ['data-2', '1.0.0', 'mem-medium'],
      ['web-1', '1.0.0', 'mem-medium'],
      ['web-2', '1.0.0', 'mem-medium'],
    ]);
    const second = await plan({ spec, provider });
    expect(isEmptyPlan(second)).toBe(true);
    expect(renderPlanText(second)).toContain('No changes. 10 resource(s) up to date.');
  });

  it('destroys to nothing', async () => {
    const { plan: destroyPlan, execution } = await destroyEnvironment({ environment: spec.name, provider });
    expect(destroyPlan.summary.delete).toBe(10);
    expect(execution.status).toBe('succeeded');
    expect(cloud.inventory()).toEqual({ networks: 0, subnets: 0, firewalls: 0, keyPairs: 0, instances: 0, dnsRecords: 0 });
    expect((await plan({ spec, provider })).summary.create).toBe(10);
  });
});
