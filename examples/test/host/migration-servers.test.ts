/**
 * The story with its servers configured for real: every new instance is reached over SSH (a real
 * sshd on this machine stands for each) and its role applied by `puppet apply`, so the report says
 * what changed on each server. The files and the app checkout are made inside a scratch directory,
 * never elsewhere on the host. In the "on this host" project: Puppet holds a machine-wide lock.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { runMigration, standardMigrationSteps } from '@armada/core';
import { describe, expect, it } from 'vitest';
import { startStoryWorld, storyMigration } from '../../story/index.js';

describe('the story with Puppet over SSH', () => {
  it('configures every new server, deploys the app from git as its owner, and reports the changes', { timeout: 600_000 }, async () => {
    const world = await startStoryWorld({ source: 'digitalocean', target: 'aws', servers: true, customers: 200, sessions: 200 });
    try {
      const definition = storyMigration(world, { wait: async () => {} });
      const report = await runMigration({ name: definition.name, steps: standardMigrationSteps(definition), directory: join(world.directory, 'run') });
      expect(report.status).toBe('succeeded');
      expect(report.steps.map((step) => step.id)).toEqual(['check-policies', 'provision-target', 'configure-servers', 'deploy-apps', 'copy-data', 'verify-data', 'lower-dns-ttl', 'switch-dns']);
      const configure = report.steps.find((step) => step.id === 'configure-servers');
      expect(configure?.summary).toBe('4 servers configured');
      const root = world.ssh?.root as string;
      // Servers are configured in name order; the first of each role changes things, the second
      // (the same machine here) finds them done.
      const details = (step: typeof configure) => (name: string) => step?.details?.find((line) => line.startsWith(`${name} (`));
      const configured = details(configure);
      expect(configured('data-1')).toMatch(/^data-1 \(data\): 1 changed, \d+ unchanged: File\[.*\/data\/etc\/armada-data\.conf\]$/);
      expect(configured('data-2')).toMatch(/^data-2 \(data\): 0 changed/);
      expect(configured('web-1')).toMatch(new RegExp(`^web-1 \\(web\\): 2 changed, \\d+ unchanged: File\\[${root}/web/etc/motd\\], File\\[${root}/web/etc/shop.env\\]$`));
      expect(configured('web-2')).toMatch(/^web-2 \(web\): 0 changed/);
      // Then the app, on the web servers only (the data role has none).
      const deploy = report.steps.find((step) => step.id === 'deploy-apps');
      expect(deploy?.summary).toBe('2 servers deployed');
      // The checkout's directory, made for its owner, then the clone into it.
      expect(details(deploy)('web-1')).toMatch(new RegExp(`^web-1 \\(web\\): 2 changed, \\d+ unchanged: File\\[${root}/web/srv/shop\\], Exec\\[deploy shop: clone\\]$`));
      expect(details(deploy)('data-1')).toBeUndefined();

      // The database address is the new data server's, from provisioning.
      const provisioned = report.steps.find((step) => step.id === 'provision-target')?.output as { instances: Array<{ name: string; privateIp: string }> };
      const dataIp = provisioned.instances.find((instance) => instance.name === 'data-1')?.privateIp;
      expect(readFileSync(join(root, 'web/etc/shop.env'), 'utf8')).toBe(`DB_HOST=${dataIp}\nDB_NAME=shop\n`);
      const checkout = join(root, 'web/srv/shop');
      expect(readFileSync(join(checkout, 'index.php'), 'utf8')).toContain('Armada shop');
      expect(execFileSync('git', ['-C', checkout, 'rev-parse', 'HEAD'], { encoding: 'utf8' }).trim()).toBe(execFileSync('git', ['-C', join(root, 'shop.git'), 'rev-parse', 'main'], { encoding: 'utf8' }).trim());
      expect(statSync(checkout).uid).toBe(process.getuid?.());
    } finally {
      await world.stop();
    }
  });
});
