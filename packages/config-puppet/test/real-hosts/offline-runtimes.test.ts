/**
 * The offline world's runtimes: substituteUnreachableRuntimes (core) takes the distribution's own
 * PHP and Java where the repository a policy names cannot be reached, and says so, so that the
 * rendered manifests install what the real hosts' image holds (story-on-real-hosts.test.ts). No
 * host is started here: these are the substitution's rules, beside the test that relies on them.
 */
import { fileURLToPath } from 'node:url';
import { ALL_REPOSITORIES_REACHABLE, OFFLINE_REPOSITORIES, checkServerPolicies, loadServerPoliciesFile, parseServerPolicies, substituteUnreachableRuntimes } from '@armada/core';
import { describe, expect, it } from 'vitest';
import { PuppetConfigManager } from '../../src/index.js';

const policiesPath = fileURLToPath(new URL('../../../../examples/environments/armada-servers.yaml', import.meta.url));
const values = new Map([
  ['data-1.privateIp', '10.0.2.10'],
  ['data-2.privateIp', '10.0.2.11'],
]);

describe('runtimes when third-party repositories cannot be reached', () => {
  it('changes nothing where every repository is reachable (a real cloud)', async () => {
    const story = await loadServerPoliciesFile(policiesPath);
    const sources = substituteUnreachableRuntimes(story, ALL_REPOSITORIES_REACHABLE);
    expect(sources.policies).toBe(story);
    expect(sources.substitutions).toEqual([]);
    expect(sources.notes).toEqual([]);
  });

  it("offline, takes Debian's Java 17 and PHP 8.2 for the story's web tier, the site following PHP, and leaves the policies as written", async () => {
    const story = await loadServerPoliciesFile(policiesPath);
    const written = JSON.stringify(story);
    const { policies, substitutions, notes } = substituteUnreachableRuntimes(story, OFFLINE_REPOSITORIES);
    expect(notes).toEqual([
      "web: Java 8 from adoptium → Debian's Java 17 (adoptium unreachable offline)",
      "web: PHP 5.6 from sury → Debian's PHP 8.2 (sury unreachable offline)",
      'web: nginx site shop passes PHP to PHP-FPM 8.2 instead of 5.6',
    ]);
    expect(substitutions).toEqual([
      expect.objectContaining({ role: 'web', path: 'roles.web.runtimes[0]', language: 'java', requested: { version: '8', repository: 'adoptium' }, substituted: { version: '17', packages: ['openjdk-17-jre-headless'] }, sites: [] }),
      expect.objectContaining({
        role: 'web',
        path: 'roles.web.runtimes[1]',
        language: 'php',
        requested: { version: '5.6', repository: 'sury' },
        substituted: { version: '8.2', packages: ['php8.2-fpm', 'php8.2-cli', 'php8.2-mysql', 'php8.2-curl', 'php8.2-mbstring'] },
        sites: ['shop'],
      }),
    ]);
    expect(policies.roles.web?.runtimes).toEqual([
      { language: 'java', version: '17', modules: [] },
      { language: 'php', version: '8.2', modules: ['mysql', 'curl', 'mbstring'] },
    ]);
    expect(policies.roles.web?.nginx?.sites[0]?.php).toBe('8.2');
    // The data tier has no runtimes: its policies are the very same objects.
    expect(policies.roles['mysql-primary']).toBe(story.roles['mysql-primary']);
    expect(checkServerPolicies(policies)).toEqual([]);
    expect(JSON.stringify(story)).toBe(written);
    const web = new PuppetConfigManager().render(policies, values).find((artifact) => artifact.path === 'manifests/web.pp')?.content ?? '';
    expect(web).toContain("service { 'php8.2-fpm'");
    expect(web).not.toMatch(/sury|adoptium|temurin|php5\.6|apt-get update/);
  });

  it('substitutes only what cannot be reached, and gives the reason it is told', async () => {
    const story = await loadServerPoliciesFile(policiesPath);
    const { policies, notes } = substituteUnreachableRuntimes(story, { thirdPartyRepositories: ['sury'], reason: 'behind the proxy' });
    expect(notes).toEqual(["web: Java 8 from adoptium → Debian's Java 17 (adoptium unreachable behind the proxy)"]);
    expect(policies.roles.web?.runtimes[1]).toEqual({ language: 'php', version: '5.6', modules: ['mysql', 'curl', 'mbstring'], repository: 'sury' });
    expect(policies.roles.web?.nginx?.sites[0]?.php).toBe('5.6');
  });

  it("keeps the version where the distribution ships it, and merges runtimes that land on one version", () => {
    const policies = parseServerPolicies({
      os: 'ubuntu-22.04',
      roles: {
        app: {
          runtimes: [
            { language: 'java', version: '8', repository: 'adoptium' },
            { language: 'php', version: '5.6', modules: ['mysql'], repository: 'sury' },
            { language: 'php', version: '7.4', modules: ['curl'], repository: 'sury' },
          ],
          nginx: { sites: [{ name: 'old', serverNames: ['old.example.com'], root: '/srv/old', php: '5.6' }, { name: 'new', serverNames: ['new.example.com'], root: '/srv/new', php: '7.4' }] },
        },
      },
    });
    const sources = substituteUnreachableRuntimes(policies, OFFLINE_REPOSITORIES);
    expect(sources.notes).toEqual([
      "app: Java 8 from adoptium → Ubuntu's Java 8 (adoptium unreachable offline)",
      "app: PHP 5.6 from sury → Ubuntu's PHP 8.1 (sury unreachable offline)",
      'app: nginx site old passes PHP to PHP-FPM 8.1 instead of 5.6',
      "app: PHP 7.4 from sury → Ubuntu's PHP 8.1 (sury unreachable offline)",
      'app: nginx site new passes PHP to PHP-FPM 8.1 instead of 7.4',
    ]);
    expect(sources.policies.roles.app?.runtimes).toEqual([
      { language: 'java', version: '8', modules: [] },
      { language: 'php', version: '8.1', modules: ['mysql', 'curl'] },
    ]);
    expect(sources.policies.roles.app?.nginx?.sites.map((site) => site.php)).toEqual(['8.1', '8.1']);
    expect(checkServerPolicies(sources.policies)).toEqual([]);
  });
});
