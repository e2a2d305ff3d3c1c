export { createDigitalOceanProvider, digitalOceanProviderPlugin, adaptToDigitalOcean, imageSlug, type DigitalOceanProviderOptions } from './provider.js';
export { mapDigitalOceanError, digitalOceanErrorId, DIGITALOCEAN_PROVIDER_ID, ERROR_IDS, type DigitalOceanErrorId } from './errors.js';
export { encodeTagPart, decodeTagPart, firewallCloudName, parseFirewallCloudName, tag, parseTag } from './encoding.js';
export { RESERVED_RANGES, vpcRangeIssues } from './limits.js';
export { dropletTags } from './services.js';
