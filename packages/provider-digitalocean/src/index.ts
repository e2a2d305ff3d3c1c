export { createDigitalOceanProvider, digitalOceanProviderPlugin, adaptToDigitalOcean, imageSlug, type DigitalOceanProviderOptions } from './provider.js';
export { mapDigitalOceanError, DIGITALOCEAN_PROVIDER_ID } from './errors.js';
export { encodeTagPart, decodeTagPart, firewallCloudName, parseFirewallCloudName, tag, parseTag } from './encoding.js';
export { dropletTags } from './services.js';
