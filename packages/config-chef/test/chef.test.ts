/**
 * The Chef config manager: the story's cookbook passes Ruby's syntax check and a structural test
 * (each recipe evaluated by real Ruby against a recording DSL); the bootstrap sequence runs over a
 * real SSH server; and where no Chef client can be installed (Debian ships none), that is said.
 */
import { execFileSync, execSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UnsupportedError, connectSsh, loadServerPoliciesFile, memoryHostKeyStore, parseServerPolicies } from '@armada/core';
import { generateKeyPair, startSshServer } from '@armada/testkit';
import { afterAll, describe, expect, it } from 'vitest';
import { CHEF_ROOT, ChefConfigManager, parseChefRun } from '../src/index.js';

const storyPath = fileURLToPath(new URL('../../../examples/environments/armada-servers.yaml', import.meta.url));
const policies = await loadServerPoliciesFile(storyPath);
const values = new Map([
  ['data-1.privateIp', '10.0.2.10'],
  ['data-2.privateIp', '10.0.2.11'],
]);

/** Evaluates a recipe with a DSL that records each resource, its name and its properties. */
const RECORDER = `
require 'json'
class Node
  def [](key) = Hash.new { |hash, name| hash[name] = "<#{key}.#{name}>" }.tap { |h| h.default_proc = proc { |hash, name| Hash.new { |inner, secret| "<secret #{secret}>" } } }
end
class Properties < BasicObject
  def initialize(into) = @into = into
  def node = ::Node.new
  def method_missing(name, *args) = @into[name.to_s] = args.length == 1 ? args[0] : args
end
class Recipe
  attr_reader :resources
  def initialize = @resources = []
  def node = Node.new
  def method_missing(type, name = nil, &block)
    properties = {}
    Properties.new(properties).instance_eval(&block) if block
    @resources << { 'type' => type.to_s, 'name' => name, 'properties' => properties }
  end
  def respond_to_missing?(*) = true
end
recipe = Recipe.new
recipe.instance_eval(File.read(ARGV[0]), ARGV[0])
puts JSON.generate(recipe.resources)
`;

type Recorded = Array<{ type: string; name: string; properties: Record<string, unknown> }>;

describe("the story's cookbook", () => {
  const artifacts = new ChefConfigManager().render(policies, values);
  const directory = mkdtempSync(join(tmpdir(), 'armada-cookbook-'));
  const written = artifacts.map((artifact) => {
    const file = join(directory, artifact.path.replaceAll('/', '_'));
    writeFileSync(file, artifact.content);
    return { path: artifact.path, file };
  });
  const recorder = join(directory, 'recorder.rb');
  writeFileSync(recorder, RECORDER);
  const record = (path: string): Recorded => JSON.parse(execFileSync('ruby', [recorder, written.find((entry) => entry.path === path)?.file ?? ''], { encoding: 'utf8' }));

  it('is a cookbook with metadata and one recipe per role, and Ruby finds no syntax error', () => {
    expect(artifacts.map((artifact) => artifact.path)).toEqual([
      'cookbooks/armada/metadata.rb',
      'cookbooks/armada/recipes/web.rb',
      'cookbooks/armada/recipes/mysql-primary.rb',
      'cookbooks/armada/recipes/mysql-replica.rb',
    ]);
    for (const { file } of written) expect(execFileSync('ruby', ['-c', file], { encoding: 'utf8' })).toBe('Syntax OK\n');
  });

  it('declares what the story asks for, with built-in resources, and no secret value', () => {
    const web = record('cookbooks/armada/recipes/web.rb');
    const names = web.map((resource) => `${resource.type}[${resource.name}]`);
    expect(names).toEqual(
      expect.arrayContaining([
        'group[developers]',
        'user[alice]',
        'user[bob]',
        'file[/home/alice/.ssh/authorized_keys]',
        'apt_repository[armada-adoptium]',
        'apt_repository[armada-sury]',
        'package[java 8]',
        'package[php 5.6]',
        'file[/etc/nginx/sites-available/shop]',
        'link[/etc/nginx/sites-enabled/shop]',
        'service[nginx]',
        'git[/srv/shop]',
        'file[/etc/armada/environment]',
      ]),
    );
    const builtIn = ['group', 'user', 'directory', 'file', 'link', 'package', 'service', 'execute', 'git', 'apt_repository'];
    for (const resource of web) expect(builtIn, resource.type).toContain(resource.type);
    const byName = new Map(web.map((resource) => [`${resource.type}[${resource.name}]`, resource.properties]));
    expect(byName.get('package[java 8]')?.package_name).toEqual(['temurin-8-jre']);
    expect(byName.get('git[/srv/shop]')).toMatchObject({ repository: 'https://git.example.com/shop.git', revision: 'main', user: 'alice' });
    const environment = byName.get('file[/etc/armada/environment]');
    expect(environment?.sensitive).toBe(true);
    expect(environment?.content).toContain("DB_PRIMARY_HOST='10.0.2.10'");
    expect(environment?.content).toContain("DB_PASSWORD='<secret SHOP_DB_PASSWORD>'");

    const primary = record('cookbooks/armada/recipes/mysql-primary.rb').map((resource) => `${resource.type}[${resource.name}]`);
    expect(primary).toEqual(expect.arrayContaining(['execute[mysql database shop]', 'execute[mysql database analytics]', 'execute[mysql user shop@10.0.1.%]', 'execute[mysql user analytics@10.0.1.%]']));
    const replica = record('cookbooks/armada/recipes/mysql-replica.rb');
    const link = replica.find((resource) => resource.name === 'mysql replica of its primary');
    expect(link?.properties.sensitive).toBe(true);
    expect(String(link?.properties.command)).toContain("MASTER_HOST='10.0.2.10'");
    for (const artifact of artifacts) expect(artifact.content).not.toMatch(/IDENTIFIED BY '[^$]|MASTER_PASSWORD='[^$]/);
  });
});

describe('Redis and templates in a recipe', () => {
  it('renders a Redis replica and a template that Ruby evaluates to the expected text', () => {
    const cache = parseServerPolicies({
      roles: {
        cache: {
          redis: { replicaOf: { host: { output: { instance: 'data-1', value: 'privateIp' } } } },
          files: [{ path: '/etc/app/db.conf', template: "host={{HOST}}\nquote='{{PW}}'\n", vars: { HOST: { output: { instance: 'data-1', value: 'privateIp' } }, PW: { secret: 'DB_PW' } } }],
        },
      },
    });
    const [, recipe] = new ChefConfigManager().render(cache, values);
    const directory = mkdtempSync(join(tmpdir(), 'armada-cache-'));
    writeFileSync(join(directory, 'cache.rb'), recipe?.content ?? '');
    writeFileSync(join(directory, 'recorder.rb'), RECORDER);
    expect(execFileSync('ruby', ['-c', join(directory, 'cache.rb')], { encoding: 'utf8' })).toBe('Syntax OK\n');
    const recorded = JSON.parse(execFileSync('ruby', [join(directory, 'recorder.rb'), join(directory, 'cache.rb')], { encoding: 'utf8' })) as Recorded;
    const byName = new Map(recorded.map((resource) => [`${resource.type}[${resource.name}]`, resource.properties]));
    expect(byName.get('file[/etc/redis/armada.conf]')?.content).toBe('bind 127.0.0.1\nport 6379\nreplicaof 10.0.2.10 6379\n');
    expect(byName.get('file[/etc/app/db.conf]')).toMatchObject({ content: "host=10.0.2.10\nquote='<secret DB_PW>'\n", sensitive: true });
    expect(byName.has('execute[redis.conf includes armada.conf]')).toBe(true);
  });
});

describe('Chef over a real SSH server', () => {
  afterAll(() => {
    execSync(`rm -rf ${CHEF_ROOT}; rmdir /etc/armada 2>/dev/null || true`);
  });

  it('bootstraps: uploads the cookbook and secrets, and says plainly when no Chef client can be installed', async () => {
    const key = await generateKeyPair();
    const server = await startSshServer({ authorizedKeys: [key.publicKey] });
    const session = await connectSsh({ host: server.host, port: server.port, username: server.username, privateKey: key.privateKey, hostKeys: memoryHostKeyStore() });
    const manager = new ChefConfigManager();
    try {
      const clientInstalled = (await session.exec('command -v chef-client || command -v cinc-client')).exitCode === 0;
      const bootstrap = manager.bootstrap(session, manager.render(policies, values), { secrets: { SHOP_DB_PASSWORD: 's3cret' } });
      if (clientInstalled) await expect(bootstrap).resolves.toBeUndefined();
      else {
        const error = await bootstrap.catch((caught: unknown) => caught);
        expect(UnsupportedError.isInstance(error)).toBe(true);
        expect((error as UnsupportedError).capability).toBe('chef-client');
        expect((error as Error).message).toMatch(/No Chef client could be installed on .*: the cookbook is uploaded to \/etc\/armada\/chef/);
      }
      // Either way the sequence ran over SSH: the cookbook and the root-only attributes are in place.
      expect(readFileSync(`${CHEF_ROOT}/cookbooks/armada/recipes/web.rb`, 'utf8')).toContain("user 'alice' do");
      expect(statSync(`${CHEF_ROOT}/attributes.json`).mode & 0o777).toBe(0o600);
      expect(JSON.parse(readFileSync(`${CHEF_ROOT}/attributes.json`, 'utf8'))).toEqual({ armada: { secrets: { SHOP_DB_PASSWORD: 's3cret' } } });
      if (!clientInstalled) {
        // The converge itself needs a client: without one, apply says so instead of pretending.
        console.info('chef-client is not installed on this machine (Debian ships no package): the converge is not run, and apply reports that.');
        await expect(manager.apply(session, { role: 'web' })).rejects.toThrow(/No Chef client on .*install Chef Infra Client or Cinc/);
      } else {
        const report = await manager.apply(session, { role: 'mysql-primary', noop: true });
        expect(report.exitCode).toBe(0);
      }
    } finally {
      session.close();
      await server.stop();
    }
    expect(existsSync(`${CHEF_ROOT}/cookbooks/armada/metadata.rb`)).toBe(true);
  });

  it('brings your own cookbooks: uploads a repository and refuses a malformed run list', async () => {
    const key = await generateKeyPair();
    const server = await startSshServer({ authorizedKeys: [key.publicKey] });
    const session = await connectSsh({ host: server.host, port: server.port, username: server.username, privateKey: key.privateKey, hostKeys: memoryHostKeyStore() });
    const repository = mkdtempSync(join(tmpdir(), 'armada-cookbooks-'));
    mkdirSync(join(repository, 'shop', 'recipes'), { recursive: true });
    writeFileSync(join(repository, 'shop', 'metadata.rb'), "name 'shop'\nversion '1.0.0'\n");
    writeFileSync(join(repository, 'shop', 'recipes', 'web.rb'), "file '/tmp/shop.conf' do\n  content \"db=#{node['armada']['values']['data_1_privateip']}\\n\"\nend\n");
    const manager = new ChefConfigManager();
    try {
      expect(await manager.bootstrapCookbooks(session, repository)).toEqual(['shop/metadata.rb', 'shop/recipes/web.rb']);
      expect(readFileSync(`${CHEF_ROOT}/own-cookbooks/shop/recipes/web.rb`, 'utf8')).toContain("file '/tmp/shop.conf' do");
      await expect(manager.applyRunList(session, { runList: ['shop::web'] })).rejects.toThrow(/invalid entries: shop::web/);
      const clientInstalled = (await session.exec('command -v chef-client || command -v cinc-client')).exitCode === 0;
      const run = manager.applyRunList(session, { runList: ['recipe[shop::web]'], values: new Map([['data-1.privateIp', '10.0.2.10']]) });
      if (clientInstalled) expect((await run).failed).toBe(0);
      else await expect(run).rejects.toSatisfy(UnsupportedError.isInstance);
    } finally {
      session.close();
      await server.stop();
    }
  });
});

describe('parseChefRun', () => {
  it("reads changed, unchanged and failed resources from chef-client's output", () => {
    const output = [
      'Starting Chef Infra Client, version 17.10.3',
      'Recipe: armada::web',
      '  * group[developers] action create',
      '    - create group developers',
      '  * user[alice] action create (up to date)',
      "  * execute[mysql database shop] action run (skipped due to not_if)",
      '  * execute[broken] action run',
      '    ',
      '    ================================================================================',
      "    Error executing action `run` on resource 'execute[broken]'",
      '    ================================================================================',
      '    ',
      '    Mixlib::ShellOut::ShellCommandFailed',
      '    ------------------------------------',
      "    Expected process to exit with [0], but received '1'",
      '    ',
      '    Resource Declaration:',
      'Chef Infra Client failed. 1 resources updated in 02 seconds',
    ].join('\n');
    const report = parseChefRun(output, 1);
    expect(report.resources.map((entry) => [entry.resource, entry.status])).toEqual([
      ['group[developers]', 'changed'],
      ['execute[broken]', 'failed'],
    ]);
    expect(report.resources[1]?.message).toContain("Expected process to exit with [0], but received '1'");
    expect(report.failed).toBe(1);
    expect(report.unchanged).toBe(2);
  });

  it('counts what a why-run would change from the closing line', () => {
    const output = ['  * user[bob] action create', '    - Would create user bob', 'Chef Infra Client finished, 1/12 resources would have been updated'].join('\n');
    const report = parseChefRun(output, 0);
    expect([report.changed, report.unchanged, report.failed]).toEqual([1, 11, 0]);
    expect(report.resources[0]).toEqual({ resource: 'user[bob]', status: 'changed', message: 'Would create user bob' });
  });
});
