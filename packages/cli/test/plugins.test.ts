/**
 * Providers from elsewhere: a third-party plugin module loaded with --plugin, and the registry
 * wiring the command uses, on its own.
 */
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRegistry, digitalOceanEndpoint, loadPluginModule } from '../src/index.js';
import { cloud } from './fixtures/mycloud-plugin.js';
import { STACK_LINE, armada, storySpec, tempDir, type TempDir } from './helpers.js';

const pluginPath = fileURLToPath(new URL('./fixtures/mycloud-plugin.ts', import.meta.url));
const noPluginPath = fileURLToPath(new URL('./fixtures/no-plugin.ts', import.meta.url));

describe('--plugin', () => {
  let dir: TempDir;
  let spec: string;

  beforeAll(async () => {
    dir = await tempDir();
    spec = await dir.file('moon.json', storySpec({ id: 'mycloud', region: 'moon-1' }, 'moon'));
  });
  afterAll(async () => {
    await dir?.remove();
  });

  it("runs a third-party provider: plan, apply, plan again, destroy", async () => {
    const io = { cwd: dir.path };
    const plugin = ['--plugin', pluginPath];
    const planned = await armada(['plan', 'moon.json', ...plugin, '--detailed-exitcode'], io);
    expect(planned.code, planned.stderr).toBe(3);
    expect(planned.stdout).toContain('Plan for environment "moon" on mycloud (moon-1)');
    const applied = await armada(['apply', 'moon.json', ...plugin, '--yes'], io);
    expect(applied.code, applied.stderr).toBe(0);
    expect(cloud.inventory()).toMatchObject({ instances: 3 });
    const again = await armada(['plan', 'moon.json', ...plugin, '--detailed-exitcode'], io);
    expect(again.code, again.stderr).toBe(0);
    const destroyed = await armada(['destroy', 'moon.json', ...plugin, '--yes'], io);
    expect(destroyed.code, destroyed.stderr).toBe(0);
    expect(cloud.inventory()).toMatchObject({ instances: 0 });
  });

  it('without the plugin the provider is unknown: exit 2, naming the known ones and --plugin', async () => {
    const run = await armada(['plan', spec]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/^error: no provider "mycloud" \(provider\.id in the spec\)\.$/m);
    expect(run.stderr).toContain('Known: aws, digitalocean, in-memory');
    expect(run.stderr).toContain('--plugin');
  });

  it('a module that exports no plugin, or is not there, is a usage error', async () => {
    const empty = await armada(['plan', spec, '--plugin', noPluginPath]);
    expect(empty.code).toBe(2);
    expect(empty.stderr).toContain('the module exports no Armada plugin');
    const missing = await armada(['plan', spec, '--plugin', './nowhere.js'], { cwd: dir.path });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/^error: --plugin \.\/nowhere\.js: cannot load the module/m);
    expect(missing.stderr).not.toMatch(STACK_LINE);
  });

  it('a bug in a plugin is exit 1 without a stack; --debug prints the stack', async () => {
    const env = { MYCLOUD_BROKEN: 'discover' };
    const run = await armada(['plan', spec, '--plugin', pluginPath], { env });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain("Cannot read properties of undefined (reading 'vpcs')");
    expect(run.stderr).toContain('--debug');
    expect(run.stderr).not.toMatch(STACK_LINE);
    const debug = await armada(['plan', spec, '--plugin', pluginPath, '--debug'], { env });
    expect(debug.code).toBe(1);
    expect(debug.stderr).toMatch(STACK_LINE);
    expect(debug.stderr).toContain('mycloud-plugin.ts');
  });
});

describe('createRegistry', () => {
  it('wires the built-in providers, configured from the environment', async () => {
    const registry = await createRegistry({ env: { DIGITALOCEAN_TOKEN: 'x', AWS_ACCESS_KEY_ID: 'a', AWS_SECRET_ACCESS_KEY: 'b' } });
    expect(registry.providerIds().sort()).toEqual(['aws', 'digitalocean', 'in-memory']);
    expect(registry.provider('digitalocean', 'nyc3').id).toBe('digitalocean');
  });

  it('lets a plugin replace a built-in provider id, and loads only the built-ins asked for', async () => {
    const plugins = await loadPluginModule(pluginPath, { env: {} });
    expect(plugins.map((plugin) => plugin.id)).toEqual(['@acme/armada-provider-mycloud']);
    const registry = await createRegistry({ env: {}, plugins: [pluginPath], builtIns: ['in-memory'] });
    expect(registry.providerIds().sort()).toEqual(['in-memory', 'mycloud']);
  });

  it('takes DIGITALOCEAN_API_URL with or without /v2', () => {
    expect(digitalOceanEndpoint('http://127.0.0.1:9/')).toBe('http://127.0.0.1:9/v2');
    expect(digitalOceanEndpoint('http://127.0.0.1:9/v2')).toBe('http://127.0.0.1:9/v2');
    expect(digitalOceanEndpoint(undefined)).toBeUndefined();
  });
});
