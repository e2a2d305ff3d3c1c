/**
 * One spec file, two clouds: the Armada environment applies unchanged on the AWS and the
 * DigitalOcean emulators (only the provider selection differs), and the plans say, side by side,
 * how each provider honoured the subnets and the firewalls.
 */
import { executePlan, isEmptyPlan, loadSpecFile, plan, renderHonouringSideBySide, type EnvironmentSpec, type Plan } from '@armada/core';
import { createAwsProvider } from '@armada/provider-aws';
import { createDigitalOceanProvider } from '@armada/provider-digitalocean';
import { startAwsEmulator, startDigitalOceanEmulator } from '@armada/testkit';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const specPath = fileURLToPath(new URL('../environments/armada.yaml', import.meta.url));

describe('the same spec on AWS and DigitalOcean', () => {
  it('applies unchanged on both and explains how each honoured subnets and firewalls', async () => {
    const aws = await startAwsEmulator({ bootMs: 50, terminateMs: 20 });
    const digitalocean = await startDigitalOceanEmulator({ bootMs: 50 });
    try {
      const spec = await loadSpecFile(specPath);
      const on = (id: string, region: string): EnvironmentSpec => ({ ...spec, provider: { id, region } });
      const providers = [
        { spec: on('aws', 'us-east-1'), provider: createAwsProvider({ region: 'us-east-1', endpoint: aws.endpoint, credentials: { accessKeyId: 'a', secretAccessKey: 'b' }, pollIntervalMs: 20 }) },
        { spec: on('digitalocean', 'nyc3'), provider: createDigitalOceanProvider({ region: 'nyc3', token: 't', endpoint: `${digitalocean.endpoint}/v2`, pollIntervalMs: 20 }) },
      ];
      const plans: Plan[] = [];
      for (const { spec: target, provider } of providers) {
        const planned = await plan({ spec: target, provider });
        plans.push(planned);
        const result = await executePlan(planned, { provider });
        expect(result.failed, provider.id).toEqual([]);
        expect(isEmptyPlan(await plan({ spec: target, provider })), provider.id).toBe(true);
      }
      const text = renderHonouringSideBySide(plans);
      expect(text).toContain('How each provider honours the spec of "armada"');
      expect(text).toContain('subnet.private\n    aws            EC2 subnet with its own route table and no route to the internet');
      expect(text).toMatch(/subnet\.private\n.*\n {4}digitalocean {3}no subnets on DigitalOcean: its droplets are in the VPC 10\.0\.0\.0\/16, closed from outside by their firewalls/);
      expect(text).toMatch(/firewall\.Web Public\n {4}aws {12}security group attached to its instances; firewall peers are group references\n {4}digitalocean {3}Cloud Firewall targeting droplets by tag/);
      // The data tier has its own firewall: no guard (one admitting the VPC would undo its rules).
      expect(text).not.toContain('firewall.private-subnet-private');
    } finally {
      await aws.close();
      await digitalocean.close();
    }
  });
});
