/**
 * `pnpm demo`: the main job on the embedded default, no cloud account needed.
 *
 * Today it runs the provisioning half of the story on the testkit's in-memory cloud: validate the
 * "Armada" environment against the policies, plan it, apply it with live progress, show that a
 * second plan is empty, and destroy it; then it plans the same spec on the AWS and DigitalOcean
 * emulators and shows how each cloud honours the subnets and firewalls. The migration half (DigitalOcean emulator to AWS emulator,
 * server policies over SSH, MySQL/Redis copy, DNS cutover) is added by the issues that build those
 * packages; the last lines of the output say so.
 */
import {
  ArmadaError,
  PluginRegistry,
  builtInRules,
  destroyEnvironment,
  evaluatePolicies,
  executePlan,
  formatExecutionResult,
  formatViolations,
  isEmptyPlan,
  loadSpecFile,
  plan,
  renderHonouringSideBySide,
  renderPlanText,
} from '@armada/core';
import { awsProviderPlugin } from '@armada/provider-aws';
import { digitalOceanProviderPlugin } from '@armada/provider-digitalocean';
import { InMemoryCloud, inMemoryProviderPlugin, startAwsEmulator, startDigitalOceanEmulator } from '@armada/testkit';
import { fileURLToPath } from 'node:url';

const specPath = fileURLToPath(new URL('./environments/armada.yaml', import.meta.url));
const step = (text: string) => console.log(`\n== ${text}`);

async function main(): Promise<void> {
  const started = performance.now();
  step(`Load and validate ${specPath}`);
  const spec = await loadSpecFile(specPath);
  const policies = evaluatePolicies({ spec }, builtInRules);
  console.log(policies.violations.length === 0 ? `All ${builtInRules.length} built-in policies pass.` : formatViolations(policies.violations));
  if (!policies.ok) process.exit(1);

  // The embedded default: an in-process cloud. Swap the plugin and the spec's provider id for
  // @armada/provider-aws or -digitalocean to run the same steps against a real cloud.
  const cloud = new InMemoryCloud({ bootMs: 300 });
  const registry = new PluginRegistry().use(inMemoryProviderPlugin({ cloud }));
  const provider = registry.provider(spec.provider.id, spec.provider.region);
  await provider.verify?.();

  step(`Plan on ${provider.id} (${provider.region})`);
  const planned = await plan({ spec, provider });
  console.log(renderPlanText(planned));

  step('Apply');
  const applied = await executePlan(planned, {
    provider,
    onEvent: (event) => {
      if (event.type === 'succeeded') console.log(`  done     ${event.step} ${event.address} (${Math.round(event.durationMs)} ms)`);
      if (event.type === 'retried') console.log(`  retry    ${event.step} ${event.address}: ${event.error.code}`);
      if (event.type === 'failed') console.log(`  FAILED   ${event.step} ${event.address}: ${event.error.message}`);
    },
  });
  console.log(formatExecutionResult(applied));
  if (applied.status !== 'succeeded') process.exit(1);
  for (const resource of applied.resources.filter((entry) => entry.kind === 'instance')) {
    console.log(`  ${resource.address.padEnd(18)} ${resource.id}  private ${resource.outputs.privateIp}  public ${resource.outputs.publicIp ?? '-'}`);
  }

  step('Plan again: nothing should change');
  const second = await plan({ spec, provider });
  console.log(renderPlanText(second));
  if (!isEmptyPlan(second)) process.exit(1);

  step('Destroy');
  const destroyed = await destroyEnvironment({ environment: spec.name, provider });
  console.log(formatExecutionResult(destroyed.execution));
  console.log(`Left in the cloud: ${JSON.stringify(cloud.inventory())}`);

  step('The same spec on the AWS and DigitalOcean emulators (real SDK clients on the wire)');
  const aws = await startAwsEmulator();
  const digitalocean = await startDigitalOceanEmulator();
  try {
    const onAws = registry.use(awsProviderPlugin({ endpoint: aws.endpoint, credentials: { accessKeyId: 'demo', secretAccessKey: 'demo' } })).provider('aws', 'us-east-1');
    const onDigitalOcean = registry.use(digitalOceanProviderPlugin({ endpoint: `${digitalocean.endpoint}/v2`, token: 'demo' })).provider('digitalocean', 'nyc3');
    const plans = [
      await plan({ spec: { ...spec, provider: { id: 'aws', region: 'us-east-1' } }, provider: onAws }),
      await plan({ spec: { ...spec, provider: { id: 'digitalocean', region: 'nyc3' } }, provider: onDigitalOcean }),
    ];
    for (const entry of plans) console.log(`  ${entry.provider.id}: ${entry.summary.create} resources to create`);
    console.log(renderHonouringSideBySide(plans));
  } finally {
    await aws.close();
    await digitalocean.close();
  }

  step(`Done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  console.log(
    'Not in this demo yet: the migration itself (provision on the AWS emulator from the DigitalOcean\n' +
      'one, Puppet over SSH, MySQL and Redis copy and verify, DNS cutover). Each arrives with its\n' +
      'package; see README.md.',
  );
}

main().catch((error: unknown) => {
  // A user's mistake gets one clear message, not a stack trace.
  console.error(ArmadaError.isInstance(error) ? `error: ${error.message}` : error);
  process.exit(1);
});
