/**
 * The configure-servers step runs servers in parallel, bounded (default 4), reports them in the
 * instances' order, and tries every server even when one fails. The config manager is a fake that
 * holds each apply until the test releases it, so the concurrency is counted, not timed.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { configureServersStep, parseServerPolicies, runMigration, type CommandChannel, type ConfigManagerV1, type MigrationStep, type ProvisionedInstance, type ServerPolicies } from '../src/index.js';

const instances: ProvisionedInstance[] = Array.from({ length: 6 }, (_, index) => ({ name: `web-${index + 1}`, id: `i-${index + 1}`, role: 'web', publicIp: `203.0.113.${index + 1}`, privateIp: `10.0.1.${index + 1}` }));
const provisioned: MigrationStep = { id: 'provision-target', title: 'provision', describe: async () => [], run: async () => ({ summary: '6 instances', output: { instances } }) };
const policies = parseServerPolicies({ os: 'debian-12', roles: { web: { environment: { GREETING: 'hello' } } } });

/** Holds every apply until released; counts how many run at once. */
function heldConfigManager(failOn?: string) {
  let active = 0;
  let peak = 0;
  const waiting: Array<() => void> = [];
  const applied: string[] = [];
  const manager: ConfigManagerV1<ServerPolicies> = {
    specificationVersion: 'v1',
    id: 'held',
    render: () => [],
    bootstrap: async () => undefined,
    async apply(channel: CommandChannel) {
      active++;
      peak = Math.max(peak, active);
      await new Promise<void>((resolve) => waiting.push(resolve));
      active--;
      applied.push(channel.description);
      if (channel.description === failOn) throw new Error(`apply failed on ${failOn}`);
      return { changed: 1, unchanged: 2, failed: 0, resources: [] };
    },
  } as unknown as ConfigManagerV1<ServerPolicies>;
  /** Releases whoever waits, again and again, until the step is done. */
  const releaseAll = (done: Promise<unknown>) => {
    let finished = false;
    void done.finally(() => {
      finished = true;
    });
    const tick = () => {
      for (const resolve of waiting.splice(0)) resolve();
      if (!finished) setTimeout(tick, 5);
    };
    // Let every server that can start reach apply before the first release.
    setTimeout(tick, 50);
  };
  return { manager, releaseAll, peak: () => peak, applied };
}

const channelFor = (instance: ProvisionedInstance): CommandChannel => ({ description: instance.name, exec: async () => ({ exitCode: 0, stdout: '', stderr: '' }) }) as unknown as CommandChannel;

describe('configure-servers in parallel', () => {
  let directory: string;
  beforeEach(async () => {
    directory = await mkdtemp(join(tmpdir(), 'armada-configure-'));
  });
  afterEach(async () => {
    await rm(directory, { recursive: true, force: true });
  });

  it('configures at most 4 servers at once by default, reported in the instances order', async () => {
    const held = heldConfigManager();
    const step = configureServersStep({ configManager: held.manager, policies, connect: async (instance) => channelFor(instance) });
    const running = runMigration({ name: 'parallel', steps: [provisioned, step], directory });
    held.releaseAll(running);
    const report = await running;
    expect(held.peak()).toBe(4);
    const configured = report.steps.find((entry) => entry.id === 'configure-servers');
    expect(configured?.summary).toBe('6 servers configured');
    expect(configured?.details).toEqual(instances.map((instance) => `${instance.name} (web): 1 changed, 2 unchanged`));
  });

  it('honours a smaller bound, and tries every server when one fails', async () => {
    const held = heldConfigManager('web-2');
    const step = configureServersStep({ configManager: held.manager, policies, connect: async (instance) => channelFor(instance), concurrency: 2 });
    const running = runMigration({ name: 'bounded', steps: [provisioned, step], directory });
    held.releaseAll(running.catch(() => undefined));
    await expect(running).rejects.toThrow(/apply failed on web-2/);
    expect(held.peak()).toBe(2);
    expect([...held.applied].sort()).toEqual(instances.map((instance) => instance.name).sort());
  });
});
