/**
 * `pnpm demo`: the main job on the embedded default, no cloud account needed.
 *
 * The story: the "armada" stack runs on DigitalOcean (the testkit's DigitalOcean emulator, reached
 * through dots-wrapper) with its DNS pointing at it, and moves to AWS (the EC2 / Route 53
 * emulator, reached through the AWS SDK). Real MariaDB and Redis servers stand for the source's
 * and the target's data stores; where OpenSSH and Puppet are installed, a real SSH server stands
 * for every new instance and the server policies are applied for real with `puppet apply`.
 *
 * It validates the environment against the policies, shows what the migration would do (a dry
 * run), runs it with live progress (policies, provisioning, servers, data copy and verify, DNS TTL
 * and switch), and prints the report. Every run starts clean: the clouds and servers are new.
 */
import { existsSync } from 'node:fs';
import { ArmadaError, builtInRules, evaluatePolicies, formatViolations, type MigrationEvent, MigrationFailedError, migrationPreflight, renderMigrationReport, runMigration, standardMigrationSteps } from '@armada/core';
import { MARIADBD_PATH, REDIS_SERVER_PATH } from '@armada/testkit';
import { OLD_TTL, SPEC_PATH, serversUnavailable, startStoryWorld, storyMigration } from './story/index.js';

const section = (text: string) => console.log(`\n== ${text}`);
/** The demo does not wait an hour for resolvers: it says so and waits a second. */
const DEMO_WAIT_MS = 1000;

function progressPrinter(): (event: MigrationEvent) => void {
  let lastProgress = 0;
  return (event) => {
    switch (event.type) {
      case 'step-started':
        console.log(`[${event.index + 1}/${event.total}] ${event.title}`);
        break;
      case 'step-progress': {
        // Live, but readable: at most a few lines a second.
        const now = performance.now();
        if (now - lastProgress < 250 && event.fraction !== undefined && event.fraction < 1) return;
        lastProgress = now;
        console.log(`      ${event.message}`);
        break;
      }
      case 'step-succeeded':
        console.log(`      done in ${(event.durationMs / 1000).toFixed(1)} s: ${event.result.summary}`);
        break;
      case 'step-skipped':
        console.log(`      skipped (${event.reason}): ${event.title}`);
        break;
      case 'step-failed':
        console.log(`      FAILED: ${event.error.message}`);
        break;
      case 'dry-run':
        console.log(`  ${event.title}`);
        for (const line of event.lines) console.log(`      ${line}`);
        break;
      case 'preflight':
        console.log(`Preflight: ${event.issues.length === 0 ? 'nothing wrong' : `${event.issues.length} problem(s)`} in ${event.checked.length} checks`);
        for (const line of event.checked) console.log(`      checked ${line}`);
        break;
    }
  };
}

async function main(): Promise<void> {
  const started = performance.now();
  for (const [path, name] of [
    [MARIADBD_PATH, 'mariadb-server'],
    [REDIS_SERVER_PATH, 'redis-server'],
  ] as const) {
    if (!existsSync(path)) {
      console.error(`The demo moves real MySQL and Redis data: ${path} is missing. Install it with: apt-get install ${name}`);
      process.exit(1);
    }
  }
  const noServers = serversUnavailable();

  section('The story');
  console.log('The "armada" stack runs on DigitalOcean and moves to AWS: both clouds are the testkit\'s wire-level');
  console.log('emulators behind the real dots-wrapper and AWS SDK clients; MariaDB and Redis are real local servers.');
  console.log(noServers ? `Servers are not configured in this run (${noServers}).` : 'Server policies are applied for real: Puppet over SSH to a local sshd standing for each new instance.');

  section(`Policies on ${SPEC_PATH}`);
  const world = await startStoryWorld({ source: 'digitalocean', target: 'aws', servers: !noServers });
  try {
    const policies = evaluatePolicies({ spec: world.spec }, builtInRules);
    console.log(policies.violations.length === 0 ? `All ${builtInRules.length} built-in policies pass.` : formatViolations(policies.violations));
    console.log(`Source: ${world.seeded.rows.toLocaleString('en-US')} MySQL rows (shop), ${world.seeded.keys.toLocaleString('en-US')} Redis keys; www.armada.example points at DigitalOcean (TTL ${OLD_TTL} s).`);

    const definition = storyMigration(world, {
      wait: async (ms) => {
        console.log(`      (the demo waits ${DEMO_WAIT_MS / 1000} s here instead of the old TTL's ${ms / 1000} s)`);
        await new Promise((resolve) => setTimeout(resolve, DEMO_WAIT_MS));
      },
    });
    const steps = standardMigrationSteps(definition);
    // Everything that can be checked before anything is created: the clouds, the DNS zone, both data stores.
    const preflight = migrationPreflight(definition, { dnsOwner: { id: world[world.dnsAt].provider.id, which: world.dnsAt } });
    const onEvent = progressPrinter();

    section('Dry run: what the migration would do (nothing is changed)');
    await runMigration({ name: definition.name, steps, preflight, directory: world.directory, dryRun: true, onEvent });

    section('Migrate');
    const report = await runMigration({ name: definition.name, steps, preflight, directory: world.directory, onEvent });

    section('Report');
    console.log(renderMigrationReport(report));
    const www = (await world.dns.listRecords('armada.example')).find((record) => record.name === 'www');
    console.log(`\nwww.armada.example now answers ${www?.values.join(', ')} (TTL ${www?.ttl} s): the AWS web servers.`);
    section(`Done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  } finally {
    await world.stop();
  }
}

main().catch((error: unknown) => {
  if (MigrationFailedError.isInstance(error)) {
    console.error(`\n${renderMigrationReport(error.report)}`);
    console.error(`error: ${error.message}`);
  } else {
    // A user's mistake gets one clear message, not a stack trace.
    console.error(ArmadaError.isInstance(error) ? `error: ${error.message}` : error);
  }
  process.exit(1);
});
