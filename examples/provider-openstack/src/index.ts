export { createOpenStackProvider, openStackProviderPlugin, adaptToOpenStack, OPENSTACK_IMAGES, type OpenStackProviderOptions, type OpenStackPluginOptions } from './provider.js';
export { OpenStackClient, type OpenStackCredentials, type ServiceType } from './client.js';
export { mapOpenStackError, parseFault, OPENSTACK_PROVIDER_ID, type OpenStackFault } from './errors.js';
export { keyPairCloudName, parseKeyPairCloudName, serverEnvironmentTag } from './context.js';
export { fromNeutronRule, toNeutronRule, type NeutronRule } from './firewall.js';
export { serverMetadata } from './instance.js';

import { openStackProviderPlugin } from './provider.js';

/**
 * What `armada --plugin @armada/example-provider-openstack` loads: the plugin configured from the
 * OpenStack variables of the environment it is given (OS_AUTH_URL, OS_USERNAME, OS_PASSWORD,
 * OS_PROJECT_NAME, and the domains), the way the `openstack` command reads them.
 */
export default ({ env }: { env: Readonly<Record<string, string | undefined>> }) =>
  openStackProviderPlugin({
    ...(env.OS_AUTH_URL ? { authUrl: env.OS_AUTH_URL } : {}),
    ...(env.OS_USERNAME ? { username: env.OS_USERNAME } : {}),
    ...(env.OS_PASSWORD ? { password: env.OS_PASSWORD } : {}),
    ...(env.OS_PROJECT_NAME ? { project: env.OS_PROJECT_NAME } : {}),
    ...(env.OS_USER_DOMAIN_NAME ? { userDomain: env.OS_USER_DOMAIN_NAME } : {}),
    ...(env.OS_PROJECT_DOMAIN_NAME ? { projectDomain: env.OS_PROJECT_DOMAIN_NAME } : {}),
  });
