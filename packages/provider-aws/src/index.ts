export { createAwsProvider, awsProviderPlugin, KNOWN_REGIONS, type AwsProviderOptions } from './provider.js';
export { DEFAULT_IMAGES, DEFAULT_INSTANCE_TYPES, type ImageLookup, type InstanceTypeEntry } from './catalog.js';
export { mapAwsError, AWS_PROVIDER_ID } from './errors.js';
export { keyPairCloudName } from './key-pair.js';
export { recordFqdn } from './route53.js';
