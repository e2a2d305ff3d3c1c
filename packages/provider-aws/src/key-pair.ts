/**
 * keyPair -> an imported EC2 key pair named `<environment>-<name>` (key names are unique per
 * region and account, so two environments may both have a "deploy" key). EC2 gives a key's text
 * back only on request and reformatted, so discovery reports the digest Armada tagged it with.
 */
import { DeleteKeyPairCommand, DescribeKeyPairsCommand, ImportKeyPairCommand, type KeyPairInfo } from '@aws-sdk/client-ec2';
import { AlreadyExistsError, ConflictError, digestOf, type ObservedResource, type ResourceService } from '@armada/core';
import { followUp, ignoreNotFound, type AwsContext } from './context.js';
import { environmentFilter, fromTagList, ownedAddress, tagSpecification } from './ec2-helpers.js';
import { aws } from './errors.js';

const KEY_DIGEST_TAG = 'armada:public-key';

export function keyPairCloudName(environment: string, name: string): string {
  return `${environment}-${name}`;
}

function observedKeyPair(info: KeyPairInfo): ObservedResource<'keyPair'> | undefined {
  const tags = fromTagList(info.Tags);
  const owned = ownedAddress(tags);
  if (!owned || !info.KeyPairId) return undefined;
  return {
    ...owned,
    kind: 'keyPair',
    id: info.KeyPairId,
    properties: { publicKey: tags[KEY_DIGEST_TAG] ?? '(unknown)' },
    outputs: { keyName: info.KeyName, fingerprint: info.KeyFingerprint },
  };
}

export function keyPairService(context: AwsContext): ResourceService<'keyPair'> {
  const { ec2 } = context;
  return {
    kind: 'keyPair',
    replaceOn: ['publicKey'],
    async discover({ environment }) {
      // DescribeKeyPairs is not paginated: it returns every match.
      const found = await aws('DescribeKeyPairs', () => ec2.send(new DescribeKeyPairsCommand({ Filters: environmentFilter(environment) })));
      return (found.KeyPairs ?? []).flatMap((info) => observedKeyPair(info) ?? []);
    },
    async create(resource, apply) {
      const keyName = keyPairCloudName(apply.environment, resource.name);
      const tags = { Name: keyName, [KEY_DIGEST_TAG]: digestOf(resource.properties.publicKey), ...apply.ownershipTags(resource.address) };
      try {
        const imported = await aws('ImportKeyPair', () =>
          ec2.send(
            new ImportKeyPairCommand({
              KeyName: keyName,
              PublicKeyMaterial: new TextEncoder().encode(resource.properties.publicKey),
              TagSpecifications: tagSpecification('key-pair', tags),
            }),
          ),
        );
        if (!imported.KeyPairId) throw new ConflictError(`ImportKeyPair returned no id for ${resource.address}.`);
        return {
          address: resource.address,
          kind: 'keyPair',
          name: resource.name,
          id: imported.KeyPairId,
          properties: resource.properties,
          outputs: { keyName, fingerprint: imported.KeyFingerprint },
        };
      } catch (error) {
        if (!AlreadyExistsError.isInstance(error)) throw error;
        // NotFound right after a Duplicate is eventual consistency: wait for the key to show.
        const existing = await followUp(context, `key pair ${keyName} to be visible`, async () =>
          (await aws('DescribeKeyPairs', () => ec2.send(new DescribeKeyPairsCommand({ KeyNames: [keyName] })))).KeyPairs?.[0],
        );
        const adopted = existing && observedKeyPair(existing);
        if (!adopted || adopted.address !== resource.address || adopted.properties.publicKey !== tags[KEY_DIGEST_TAG]) {
          throw new AlreadyExistsError(
            `An EC2 key pair named "${keyName}" already exists and is not this environment's key with this public key. Delete it or rename the key pair.`,
            { provider: 'aws', resource: resource.address },
          );
        }
        return { ...adopted, properties: resource.properties };
      }
    },
    async delete(current) {
      await ignoreNotFound(() => aws('DeleteKeyPair', () => ec2.send(new DeleteKeyPairCommand({ KeyPairId: current.id }))));
    },
  };
}
