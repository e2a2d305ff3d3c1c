/**
 * The provider conformance suite, run on the wire: the real @aws-sdk/client-ec2 and
 * client-route-53 against the testkit's EC2 / Route 53 emulator on 127.0.0.1.
 */
import { startAwsEmulator, type AwsEmulator } from '@armada/testkit';
import { describeProviderConformance } from '@armada/testkit/conformance';
import { createAwsProvider } from '../src/index.js';

let emulator: AwsEmulator;

describeProviderConformance({
  name: 'aws (EC2 and Route 53 emulator, real SDK clients)',
  async setup() {
    emulator = await startAwsEmulator({ bootMs: 60, terminateMs: 40, changeSyncMs: 20 });
    emulator.createHostedZone('conformance.test');
    const provider = createAwsProvider({
      region: 'us-east-1',
      endpoint: emulator.endpoint,
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
      pollIntervalMs: 20,
      waitTimeoutMs: 20_000,
      // Pages of 5: discovery must follow NextToken through the SDK paginators.
      pageSize: 5,
    });
    return {
      provider,
      faults: emulator.faults,
      dnsZone: 'conformance.test',
      countInstances: async (environment) => emulator.instancesTagged({ 'armada:environment': environment }).length,
      close: () => emulator.close(),
    };
  },
});
