/**
 * The embedded default's clouds: the testkit's wire-level emulators, reached through the real
 * provider plugins (the AWS SDK, dots-wrapper), exactly as a real cloud would be. Each cloud also
 * says which environment variables point the `armada` command at it.
 */
import type { DnsService, ProviderV1 } from '@armada/core';
import { createAwsProvider } from '@armada/provider-aws';
import { createDigitalOceanProvider } from '@armada/provider-digitalocean';
import { createOpenStackProvider } from '@armada/example-provider-openstack';
import { startAwsEmulator, startDigitalOceanEmulator } from '@armada/testkit';
// The third provider's emulator lives with its tests (a plugin author's own test double).
import { startOpenStackEmulator } from '../provider-openstack/test/emulator/index.js';

export type CloudName = 'digitalocean' | 'aws' | 'openstack';

export interface EmulatedCloud {
  name: CloudName;
  region: string;
  provider: ProviderV1;
  /** Absent when the cloud has no DNS service (the OpenStack example): the zone then lives with the other cloud. */
  dns?: DnsService;
  /** Environment variables that point the `armada` command's built-in plugin at this emulator. */
  env: Record<string, string>;
  createZone?(zone: string): void;
  /** What exists on the emulator: compared before and after a dry run. */
  inventory(): unknown;
  close(): Promise<void>;
}

export async function startCloud(name: CloudName): Promise<EmulatedCloud> {
  if (name === 'openstack') {
    const emulator = await startOpenStackEmulator({ bootMs: 50, deleteMs: 20 });
    const region = 'region-b.geo-1';
    const credentials = { authUrl: emulator.authUrl, username: 'demo', password: 'secret', project: 'demo' };
    return {
      name,
      region,
      provider: createOpenStackProvider({ ...credentials, region, pollIntervalMs: 20 }),
      env: { OS_AUTH_URL: emulator.authUrl, OS_USERNAME: 'demo', OS_PASSWORD: 'secret', OS_PROJECT_NAME: 'demo' },
      inventory: () => emulator.inventory(),
      close: () => emulator.close(),
    };
  }
  if (name === 'aws') {
    const emulator = await startAwsEmulator({ bootMs: 50, terminateMs: 20, changeSyncMs: 20 });
    const region = 'us-east-1';
    const provider = createAwsProvider({ region, endpoint: emulator.endpoint, credentials: { accessKeyId: 'armada-demo', secretAccessKey: 'armada-demo' }, pollIntervalMs: 20 });
    return {
      name,
      region,
      provider,
      dns: provider.dns as DnsService,
      env: { AWS_ENDPOINT_URL: emulator.endpoint, AWS_ACCESS_KEY_ID: 'armada-demo', AWS_SECRET_ACCESS_KEY: 'armada-demo', AWS_REGION: region },
      createZone: (zone) => void emulator.createHostedZone(zone),
      inventory: () => emulator.inventory(region),
      close: () => emulator.close(),
    };
  }
  const emulator = await startDigitalOceanEmulator({ bootMs: 50 });
  const region = 'nyc3';
  const provider = createDigitalOceanProvider({ region, token: 'armada-demo', endpoint: `${emulator.endpoint}/v2`, pollIntervalMs: 20 });
  return {
    name,
    region,
    provider,
    dns: provider.dns as DnsService,
    env: { DIGITALOCEAN_TOKEN: 'armada-demo', DIGITALOCEAN_API_URL: `${emulator.endpoint}/v2` },
    createZone: (zone) => emulator.createDomain(zone),
    inventory: () => emulator.inventory(),
    close: () => emulator.close(),
  };
}
