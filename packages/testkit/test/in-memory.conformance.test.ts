import { describeProviderConformance } from '../src/conformance.js';
import { InMemoryCloud, createInMemoryProvider } from '../src/index.js';

// The in-memory provider is the reference implementation: it must pass the whole suite with
// nothing skipped.
describeProviderConformance({
  name: 'in-memory',
  setup() {
    const cloud = new InMemoryCloud({ zones: ['conformance.test'], pageSize: 3 });
    const provider = createInMemoryProvider({ cloud, region: 'local-1' });
    return {
      provider,
      faults: cloud.faults,
      dnsZone: 'conformance.test',
      countInstances: async (environment) => cloud.instancesTagged({ 'armada:environment': environment }).length,
    };
  },
});
