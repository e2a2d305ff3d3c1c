/**
 * keyPair -> a Nova key pair, imported from the spec's public key. Key pairs carry no tags or
 * metadata, so the ownership is the name: `armada.<environment>.<logical name>`.
 */
import { AlreadyExistsError, type ObservedResource, type ResourceService } from '@armada/core';
import { ignoreNotFound, keyPairCloudName, NOVA_MICROVERSION, parseKeyPairCloudName, type OpenStackContext } from './context.js';
import { OPENSTACK_PROVIDER_ID } from './errors.js';

interface Keypair {
  name: string;
  public_key: string;
  fingerprint: string;
}

/** Only the key material counts: Nova keeps the text as given, comment and all. */
const material = (publicKey: string) => publicKey.trim().split(/\s+/).slice(0, 2).join(' ');

export function keyPairService(context: OpenStackContext): ResourceService<'keyPair'> {
  const { client } = context;
  const observed = (keypair: Keypair, name: string): ObservedResource<'keyPair'> => ({
    address: `keyPair.${name}`,
    kind: 'keyPair',
    name,
    id: keypair.name,
    properties: { publicKey: keypair.public_key },
    outputs: { cloudName: keypair.name, fingerprint: keypair.fingerprint },
  });
  return {
    kind: 'keyPair',
    replaceOn: ['publicKey'],
    async discover({ environment }) {
      // Nova wraps each entry: { keypairs: [{ keypair: {...} }] }.
      const keypairs = await client.listAll<{ keypair: Keypair }>('compute', '/os-keypairs', 'keypairs', { microversion: NOVA_MICROVERSION });
      return keypairs.flatMap(({ keypair }) => {
        const owner = parseKeyPairCloudName(keypair.name);
        return owner?.environment === environment ? [observed(keypair, owner.name)] : [];
      });
    },
    async create(resource, apply) {
      const cloudName = keyPairCloudName(apply.environment, resource.name);
      try {
        const { keypair } = await client.request<{ keypair: Keypair }>('compute', 'POST', '/os-keypairs', {
          microversion: NOVA_MICROVERSION,
          body: { keypair: { name: cloudName, public_key: resource.properties.publicKey, type: 'ssh' } },
        });
        return observed(keypair, resource.name);
      } catch (error) {
        if (!AlreadyExistsError.isInstance(error)) throw error;
        // Ours by name. The same key: an earlier attempt made it. Another key: refuse to guess.
        const { keypair } = await client.request<{ keypair: Keypair }>('compute', 'GET', `/os-keypairs/${encodeURIComponent(cloudName)}`, { microversion: NOVA_MICROVERSION });
        if (material(keypair.public_key) !== material(resource.properties.publicKey)) {
          throw new AlreadyExistsError(
            `The key pair "${cloudName}" exists with another public key. Delete it (openstack keypair delete "${cloudName}") or re-plan, which replaces it.`,
            { provider: OPENSTACK_PROVIDER_ID, resource: resource.address },
          );
        }
        return observed(keypair, resource.name);
      }
    },
    async delete(current, apply) {
      const cloudName = typeof current.outputs.cloudName === 'string' ? current.outputs.cloudName : keyPairCloudName(apply.environment, current.name);
      await ignoreNotFound(() => client.request('compute', 'DELETE', `/os-keypairs/${encodeURIComponent(cloudName)}`, { microversion: NOVA_MICROVERSION }));
    },
  };
}
