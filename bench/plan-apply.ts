/**
 * One phase of the planner/executor benchmark, run in its own process so its peak memory is its
 * own: `tsx bench/plan-apply.ts plan|apply|subnets [resources]`. Prints one JSON line. Run
 * `pnpm bench` for all phases side by side. `subnets` plans a network of that many /24 subnets
 * (and one instance): the spec checks at scale.
 *
 * The environment is synthetic: 1 network, 50 subnets, 49 firewalls, 100 key pairs and the rest
 * instances (in groups of 100), on the in-memory provider with instant boots, so what is measured
 * is Armada's own work (compile, discover, diff, scheduling), not simulated cloud latency.
 */
import { destroyEnvironment, executePlan, isEmptyPlan, parseSpec, plan, type EnvironmentSpecInput } from '@armada/core';
import { InMemoryCloud, createInMemoryProvider } from '@armada/testkit';

const phase = process.argv[2] ?? 'plan';
const total = Number(process.argv[3] ?? 10_000);

function syntheticSpec(resources: number): EnvironmentSpecInput {
  const subnets = 50;
  const firewalls = 49;
  const keyPairs = 100;
  const instances = resources - 1 - subnets - firewalls - keyPairs;
  const groups = Math.ceil(instances / 100);
  return {
    name: 'bench',
    provider: { id: 'in-memory', region: 'local-1' },
    network: {
      name: 'bench',
      cidr: '10.0.0.0/16',
      subnets: Array.from({ length: subnets }, (_, index) => ({ name: `subnet-${index}`, cidr: `10.0.${index}.0/24`, access: index % 2 ? 'private' : 'public' })),
    },
    firewalls: Array.from({ length: firewalls }, (_, index) => ({
      name: `fw-${index}`,
      description: `tier ${index}`,
      ingress: [
        { protocol: 'tcp', ports: 443, from: '0.0.0.0/0' },
        { protocol: 'tcp', ports: 8000 + index, from: index > 0 ? { firewall: `fw-${index - 1}` } : '10.0.0.0/16' },
      ],
    })),
    keyPairs: Array.from({ length: keyPairs }, (_, index) => ({
      name: `key-${index}`,
      publicKey: `ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI${index.toString().padStart(4, '0')}benchmarkkey bench-${index}`,
    })),
    instances: Array.from({ length: groups }, (_, index) => ({
      name: `app-${index}`,
      count: Math.min(100, instances - index * 100),
      size: index % 3 === 0 ? 'medium' : { cpus: 2, memoryGiB: 4 },
      image: 'debian-12',
      subnet: `subnet-${index % subnets}`,
      firewalls: [`fw-${index % firewalls}`],
      keyPair: `key-${index % keyPairs}`,
      tags: { Name: `app-${index}`, Version: '1' },
    })),
  };
}

function seconds(start: number): number {
  return Number(((performance.now() - start) / 1000).toFixed(3));
}

/** A network of `count` /24 subnets (and one instance): what the subnet checks cost at scale. */
function manySubnets(count: number): EnvironmentSpecInput {
  return {
    name: 'subnets',
    provider: { id: 'in-memory', region: 'local-1' },
    network: {
      name: 'subnets',
      cidr: '10.0.0.0/8',
      subnets: Array.from({ length: count }, (_, index) => ({ name: `subnet-${index}`, cidr: `10.${index >> 8}.${index & 255}.0/24`, access: index % 2 ? 'private' : 'public' })),
    },
    firewalls: [],
    keyPairs: [],
    instances: [{ name: 'app', size: 'small', image: 'debian-12', subnet: 'subnet-0' }],
  };
}

const input = phase === 'subnets' ? manySubnets(total) : syntheticSpec(total);
const parseStart = performance.now();
// Shape and integrity checks (references, subnets inside the network and apart): what a spec of this size costs before any plan.
const spec = await parseSpec(input);
const parseSeconds = seconds(parseStart);
const cloud = new InMemoryCloud({ bootMs: 0, terminateMs: 0, pageSize: 1000 });
const provider = createInMemoryProvider({ cloud, region: 'local-1', pollIntervalMs: 1 });
const report: Record<string, unknown> = { phase, resources: total, parseSeconds };

if (phase === 'plan' || phase === 'subnets') {
  const start = performance.now();
  const planned = await plan({ spec, provider });
  report.planSeconds = seconds(start);
  report.actions = planned.actions.length;
} else if (phase === 'apply') {
  let start = performance.now();
  const planned = await plan({ spec, provider });
  const result = await executePlan(planned, { provider });
  report.applySeconds = seconds(start);
  if (result.status !== 'succeeded') throw new Error(`apply ${result.status}: ${result.failed[0]?.error.message}`);
  start = performance.now();
  const again = await plan({ spec, provider });
  report.replanSeconds = seconds(start);
  if (!isEmptyPlan(again)) throw new Error('the second plan is not empty');
  start = performance.now();
  const destroyed = await destroyEnvironment({ environment: spec.name, provider });
  report.destroySeconds = seconds(start);
  if (destroyed.execution.status !== 'succeeded') throw new Error(`destroy ${destroyed.execution.status}`);
} else {
  throw new Error(`unknown phase "${phase}" (plan, subnets or apply)`);
}
// Peak resident memory of this whole process (Node itself included), in MB.
report.peakRssMB = Math.round(process.resourceUsage().maxRSS / 1024);
console.log(JSON.stringify(report));
