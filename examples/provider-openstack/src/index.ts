export { createOpenStackProvider, openStackProviderPlugin, adaptToOpenStack, OPENSTACK_IMAGES, type OpenStackProviderOptions, type OpenStackPluginOptions } from './provider.js';
export { OpenStackClient, type OpenStackCredentials, type ServiceType } from './client.js';
export { mapOpenStackError, parseFault, OPENSTACK_PROVIDER_ID, type OpenStackFault } from './errors.js';
export { keyPairCloudName, parseKeyPairCloudName, serverEnvironmentTag } from './context.js';
export { fromNeutronRule, toNeutronRule, type NeutronRule } from './firewall.js';
export { serverMetadata } from './instance.js';
