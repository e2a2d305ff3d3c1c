/**
 * A third cloud from the command line: `armada migrate --plugin <module>` loads the example
 * OpenStack provider (written only against the public API) and moves the story from it to AWS.
 * OpenStack here has no DNS service, so the zone lives with the target.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SPEC_PATH, startStoryWorld, ZONE } from '../story/index.js';
import { armada } from './armada-cli.js';

describe('armada migrate --plugin', () => {
  it('moves the story from the example OpenStack provider to AWS', { timeout: 120_000 }, async () => {
    const world = await startStoryWorld({ source: 'openstack', target: 'aws', customers: 300, sessions: 500 });
    try {
      const file = join(world.directory, 'migration.yaml');
      await writeFile(
        file,
        [
          'name: openstack-to-aws',
          `directory: ${join(world.directory, 'run')}`,
          `source: { environment: armada, provider: { id: openstack, region: ${world.source.region} } }`,
          `target: { spec: ${SPEC_PATH}, provider: { id: aws, region: ${world.target.region} } }`,
          'data:',
          `  - { name: shop-db, mover: mysql, source: { host: 127.0.0.1, port: ${world.mysql.source.port}, user: root, databases: [shop] }, target: { host: 127.0.0.1, port: ${world.mysql.target.port}, user: root, databases: [shop] } }`,
          `  - { name: sessions, mover: redis, source: { host: 127.0.0.1, port: ${world.redis.source.port} }, target: { host: 127.0.0.1, port: ${world.redis.target.port} } }`,
          `dns: { provider: target, zone: ${ZONE}, maxWaitSeconds: 0, records: [{ name: www, to: { instance: [web-1, web-2] } }] }`,
          '',
        ].join('\n'),
      );
      const env = { ...process.env, ...world.source.env, ...world.target.env };
      const without = await armada(['migrate', file], env).done;
      expect(without.code).toBe(2);
      expect(without.stderr).toContain('source.provider.id: no provider "openstack" is registered (fix: use one of: ');
      expect(without.stderr).toContain('or register its plugin (--plugin)');

      const run = await armada(['migrate', file, '--plugin', './examples/provider-openstack/src/index.ts'], env).done;
      expect(run.code, run.stderr).toBe(0);
      expect(run.stdout).toContain('Migration openstack-to-aws: succeeded');
      expect(run.stdout).toMatch(/2 stores identical/);
      const www = (await world.dns.listRecords(ZONE)).find((record) => record.name === 'www');
      expect(www?.values.every((value) => value.startsWith('203.0.113.'))).toBe(true);
    } finally {
      await world.stop();
    }
  });
});
