import { describe, expect, it } from 'vitest';
import { ValidationError, parseServerPolicies, resolveOutputs, secretsOf, type ObservedResource } from '../src/index.js';

const instance = (name: string, outputs: Record<string, string>): ObservedResource => ({
  address: `instance.${name}`,
  kind: 'instance',
  name,
  id: `i-${name}`,
  properties: { subnet: 'a', firewalls: [], size: 's', image: 'i', tags: {} },
  outputs,
});

describe('server policies', () => {
  const policies = parseServerPolicies({
    roles: {
      web: {
        environment: { DB_HOST: { output: { instance: 'data-1', value: 'privateIp' } }, API_KEY: { secret: 'API_KEY' } },
        files: [{ path: '/etc/app.conf', content: { output: { instance: 'data-2', value: 'privateIp' } } }],
      },
      data: {
        mysql: {
          role: 'replica',
          source: { output: { instance: 'data-1', value: 'privateIp' } },
          replicationUser: { name: 'replicator', password: { secret: 'REPLICATION_PASSWORD' } },
          users: [{ name: 'shop', password: { secret: 'SHOP_DB_PASSWORD' } }],
        },
      },
    },
  });

  it('resolves values from provisioning outputs, and names what cannot be resolved', () => {
    const { values, issues } = resolveOutputs(policies, [instance('data-1', { privateIp: '10.0.2.10' })]);
    expect(values.get('data-1.privateIp')).toBe('10.0.2.10');
    expect(issues).toEqual([{ path: 'roles.web.files[0].content', message: 'refers to instance "data-2", which provisioning did not make', fix: 'use one of: data-1' }]);
    const missing = resolveOutputs(policies, [instance('data-1', { publicIp: '198.51.100.1' }), instance('data-2', { privateIp: '10.0.2.11' })]);
    expect(missing.issues.map((issue) => issue.message)).toContain('instance "data-1" has no output "privateIp"');
  });

  it('lists the secrets a role needs', () => {
    expect(secretsOf(policies.roles.web as NonNullable<typeof policies.roles.web>)).toEqual(['API_KEY']);
    expect(secretsOf(policies.roles.data as NonNullable<typeof policies.roles.data>)).toEqual(['REPLICATION_PASSWORD', 'SHOP_DB_PASSWORD']);
  });

  it('refuses a replica without its source', () => {
    expect(() => parseServerPolicies({ roles: { db: { mysql: { role: 'replica' } } } })).toThrow(/roles\.db\.mysql: a replica needs its source and a replicationUser/);
  });

  it('refuses a password written in clear, and names every problem', () => {
    const error = (() => {
      try {
        parseServerPolicies({ roles: { db: { users: [{ name: 'Bad Name' }], mysql: { users: [{ name: 'shop', password: 'hunter2' }] } } } });
      } catch (caught) {
        return caught;
      }
    })();
    expect(ValidationError.isInstance(error)).toBe(true);
    const issues = (error as ValidationError).issues;
    expect(issues.map((issue) => issue.path)).toEqual(['roles.db.users[0].name', 'roles.db.mysql.users[0].password']);
    expect(issues[1]?.message).toBe('passwords are secret references: { secret: NAME }');
    expect((error as Error).message).not.toContain('hunter2');
  });
});
