/**
 * The story's server policies (examples/environments/armada-servers.yaml) validate, resolve their
 * values from provisioning outputs, and render to manifests that Puppet's own parser accepts.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ValidationError, parseServerPolicies, parseSpecText, resolveOutputs, roleOf, type ObservedResource } from '@armada/core';
import { describe, expect, it } from 'vitest';
import { PuppetConfigManager } from '../src/index.js';

const storyPath = fileURLToPath(new URL('../../../examples/environments/armada-servers.yaml', import.meta.url));
const story = () => parseSpecText(readFileSync(storyPath, 'utf8'), storyPath) as Record<string, unknown>;
const instance = (name: string, role: string, privateIp: string): ObservedResource => ({
  address: `instance.${name}`,
  kind: 'instance',
  name,
  id: `i-${name}`,
  properties: { subnet: 'private', firewalls: [], size: 'm3.medium', image: 'ami', tags: {}, role },
  outputs: { privateIp },
});

describe("the story's server policies with Puppet", () => {
  const policies = parseServerPolicies(story());
  const instances = [instance('web-1', 'web', '10.0.1.10'), instance('web-2', 'web', '10.0.1.11'), instance('data-1', 'data', '10.0.2.10'), instance('data-2', 'data', '10.0.2.11')];

  it('assigns every instance a role with policies', () => {
    expect(instances.map((entry) => roleOf(policies, { name: entry.name, role: (entry.properties as { role?: string }).role }))).toEqual(['web', 'web', 'mysql-primary', 'mysql-replica']);
  });

  it('renders manifests that puppet parser validate accepts, with the story in them and no secret', () => {
    const { values, issues } = resolveOutputs(policies, instances);
    expect(issues).toEqual([]);
    const artifacts = new PuppetConfigManager().render(policies, values);
    expect(artifacts.map((artifact) => artifact.path)).toEqual(['manifests/web.pp', 'manifests/mysql-primary.pp', 'manifests/mysql-replica.pp']);
    const directory = mkdtempSync(join(tmpdir(), 'armada-story-'));
    for (const artifact of artifacts) {
      const file = join(directory, artifact.path.replace('manifests/', ''));
      writeFileSync(file, artifact.content);
      execFileSync('puppet', ['parser', 'validate', file], { stdio: 'pipe' });
    }
    const [web, primary, replica] = artifacts.map((artifact) => artifact.content) as [string, string, string];
    for (const expected of ["user { 'alice'", "user { 'bob'", 'temurin-8-jre', 'php5.6-fpm', 'php5.6-mysql', 'https://packages.sury.org/php/ bookworm main', 'fastcgi_pass unix:/run/php/php5.6-fpm.sock', "git clone --quiet \\'https://git.example.com/shop.git\\'", "DB_PRIMARY_HOST='10.0.2.10'", "DB_REPLICA_HOST='10.0.2.11'"]) {
      expect(web).toContain(expected);
    }
    expect(primary).toContain('CREATE DATABASE IF NOT EXISTS `shop`');
    expect(primary).toContain('CREATE DATABASE IF NOT EXISTS `analytics`');
    expect(primary).toContain('GRANT REPLICATION SLAVE ON *.* TO');
    expect(primary).toContain('server-id = 1');
    expect(replica).toContain("CHANGE MASTER TO MASTER_HOST=\\'10.0.2.10\\'");
    expect(replica).toContain('read_only = 1');
    // Render never sees secret values: every password comes from a fact at apply time.
    for (const artifact of artifacts) {
      expect(artifact.content).not.toMatch(/IDENTIFIED BY \\'[^$]|MASTER_PASSWORD=\\'[^$]/);
      for (const line of artifact.content.split('\n').filter((text) => /ARMADA_PASSWORD=|DB_PASSWORD=/.test(text))) expect(line).toMatch(/\$\{(regsubst\(\$)?facts\['armada_secret_/);
    }
  });

  it('renders Redis (a replica of data-1) and file templates, and refuses a template with an undefined placeholder', () => {
    const cache = parseServerPolicies({
      roles: {
        cache: {
          redis: { bind: ['0.0.0.0'], replicaOf: { host: { output: { instance: 'data-1', value: 'privateIp' } } }, maxmemory: '256mb' },
          files: [{ path: '/etc/app/db.conf', template: 'host={{ HOST }}\npassword={{PW}}\n', vars: { HOST: { output: { instance: 'data-1', value: 'privateIp' } }, PW: { secret: 'DB_PW' } } }],
        },
      },
    });
    const [manifest] = new PuppetConfigManager().render(cache, new Map([['data-1.privateIp', '10.0.2.10']]));
    const file = join(mkdtempSync(join(tmpdir(), 'armada-cache-')), 'cache.pp');
    writeFileSync(file, manifest?.content ?? '');
    execFileSync('puppet', ['parser', 'validate', file], { stdio: 'pipe' });
    expect(manifest?.content).toContain("'bind 0.0.0.0\nport 6379\nreplicaof 10.0.2.10 6379\nmaxmemory 256mb\n'");
    expect(manifest?.content).toContain('include /etc/redis/armada.conf');
    expect(manifest?.content).toContain(`Sensitive("host=10.0.2.10\npassword=\${facts['armada_secret_db_pw']}\n")`);
    expect(() => parseServerPolicies({ roles: { x: { files: [{ path: '/etc/a', template: '{{MISSING}}' }] } } })).toThrow(/uses \{\{MISSING\}\}, which vars does not define/);
  });

  it('refuses Java 8 and PHP 5.6 on Debian 12 without a repository, naming what Debian ships', () => {
    const input = story();
    const web = (input.roles as Record<string, { runtimes: Array<Record<string, unknown>> }>).web;
    for (const runtime of web?.runtimes ?? []) delete runtime.repository;
    const error = (() => {
      try {
        parseServerPolicies(input);
      } catch (caught) {
        return caught;
      }
    })();
    expect(ValidationError.isInstance(error)).toBe(true);
    expect((error as ValidationError).issues).toEqual([
      { path: 'roles.web.runtimes[0]', message: 'debian-12 ships Java 17 only', fix: 'use version 17, or add repository: adoptium to take 8 from a third-party repository' },
      { path: 'roles.web.runtimes[1]', message: 'debian-12 ships PHP 8.2 only', fix: 'use version 8.2, or add repository: sury to take 5.6 from a third-party repository' },
    ]);
  });
});
