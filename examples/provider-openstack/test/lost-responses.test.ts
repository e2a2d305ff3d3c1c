/**
 * Creates whose reply was lost, when what they made is not listed yet: the retry must not make a
 * second one. The random runs of faulted-applies.test.ts mostly end in the retry finding it by its
 * tags; these cases take the paths behind that, one at a time: the conflict Neutron or Nova answers
 * to the second create, and what the provider does about it (adopt ours, refuse someone else's).
 *
 * "Not listed yet" is made deterministic by the client's fetch: while a lag is on, a list call
 * filtered by tags answers an empty list. GETs by id, and lists by other filters, see everything.
 */
import { executePlan, isEmptyPlan, parseSpec, plan, type EnvironmentSpec, type EnvironmentSpecInput } from '@armada/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { OpenStackClient, createOpenStackProvider, serverEnvironmentTag } from '../src/index.js';
import { EMULATOR_REGION as REGION, providerOptionsFor, startOpenStackEmulator, type OpenStackEmulator } from './emulator/index.js';

const retry = { minDelayMs: 10, maxDelayMs: 50 };

interface Lag {
  /** Path of the list call, e.g. `/v2.0/subnets`. */
  path: string;
  /** The body key of the list, e.g. `subnets`. */
  key: string;
  on: boolean;
}

/** A fetch whose tag-filtered lists of `lag.path` come back empty while `lag.on`. */
function lagging(lag: Lag): typeof fetch {
  return async (input, init) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    if (lag.on && (init?.method ?? 'GET') === 'GET' && url.pathname.endsWith(lag.path) && url.searchParams.has('tags')) {
      return new Response(JSON.stringify({ [lag.key]: [] }), { status: 200, headers: { 'content-type': 'application/json' } });
    }
    return fetch(input, init);
  };
}

const base = (name: string): EnvironmentSpecInput => ({
  name,
  provider: { id: 'openstack', region: REGION },
  network: { name: 'net', cidr: '10.9.0.0/16', subnets: [{ name: 'a', cidr: '10.9.1.0/24', access: 'private' }] },
});

describe('lost create replies, when the retry cannot list what the first attempt made', () => {
  let emulator: OpenStackEmulator;
  const providerWith = (lag?: Lag) =>
    createOpenStackProvider(
      providerOptionsFor(emulator, {
        // The look-up of a lost create gives up soon here: the lag never ends while it is on.
        consistencyWindowMs: 100,
        ...(lag ? { fetch: lagging(lag) } : {}),
      }),
    );

  beforeEach(async () => {
    emulator = await startOpenStackEmulator({ bootMs: 40, deleteMs: 10, retryAfterSeconds: 0 });
  });
  afterEach(async () => {
    await emulator?.close();
  });

  it("adopts its own subnet from Neutron's overlap conflict", async () => {
    const lag: Lag = { path: '/v2.0/subnets', key: 'subnets', on: false };
    const provider = providerWith(lag);
    const spec = await parseSpec(base('lost-subnet'));
    const planned = await plan({ spec, provider });
    emulator.faults.loseNextResponse('createSubnet');
    lag.on = true;
    const result = await executePlan(planned, { provider, retry });
    lag.on = false;
    expect(result.failed).toEqual([]);
    // The retry listed nothing, created again, was told the range is taken, and adopted its own.
    expect(emulator.calls('POST neutron subnets')).toBe(2);
    expect(emulator.inventory().subnets).toBe(1);
    expect(isEmptyPlan(await plan({ spec, provider }))).toBe(true);
  });

  it('refuses a range held by a subnet that is not its own, naming it', async () => {
    const provider = providerWith();
    const first = await parseSpec(base('foreign-subnet'));
    expect((await executePlan(await plan({ spec: first, provider }), { provider, retry })).status).toBe('succeeded');
    const networkId = (await plan({ spec: first, provider })).actions.find((action) => action.address === 'network.net')?.current?.id ?? '';
    // Someone else's subnet in our network, made outside Armada (no ownership tags).
    const client = new OpenStackClient({ credentials: { authUrl: emulator.authUrl, username: 'demo', password: 'secret', project: 'demo', userDomain: 'Default', projectDomain: 'Default' }, region: REGION, pageSize: 100, throttleAttempts: 1, throttleDelayMs: 1 });
    const { subnet: foreign } = await client.request<{ subnet: { id: string } }>('network', 'POST', '/v2.0/subnets', {
      body: { subnet: { network_id: networkId, cidr: '10.9.2.0/25', ip_version: 4, name: 'someone-else' } },
    });
    const input = base('foreign-subnet');
    const second: EnvironmentSpec = await parseSpec({ ...input, network: { ...input.network, subnets: [...(input.network?.subnets ?? []), { name: 'b', cidr: '10.9.2.0/24', access: 'private' }] } } as EnvironmentSpecInput);
    const result = await executePlan(await plan({ spec: second, provider }), { provider, retry });
    expect(result.failed.map((failure) => [failure.address, failure.error.code])).toEqual([['subnet.b', 'Conflict']]);
    expect(result.failed[0]?.error.message).toContain(`overlaps subnet ${foreign.id} ("someone-else", 10.9.2.0/25)`);
    expect(result.failed[0]?.error.message).toContain("not this environment's");
    expect(emulator.inventory().subnets).toBe(2);
  });

  it('adopts its own server from Nova\'s "port in use"', async () => {
    const lag: Lag = { path: '/servers/detail', key: 'servers', on: false };
    const provider = providerWith(lag);
    const spec = await parseSpec({ ...base('lost-server'), instances: [{ name: 'one', size: 'small', image: 'debian-12', subnet: 'a', firewalls: [] }] });
    const planned = await plan({ spec, provider });
    emulator.faults.loseNextResponse('createInstance');
    lag.on = true;
    const result = await executePlan(planned, { provider, retry });
    lag.on = false;
    expect(result.failed).toEqual([]);
    // The retry listed no server, booted again on the port the first attempt bound, and Nova's
    // "port in use" led it to the server that holds the port: its own.
    expect(emulator.calls('POST nova servers')).toBe(2);
    expect(emulator.servers().filter((server) => server.tags.includes(serverEnvironmentTag('lost-server')))).toHaveLength(1);
    expect(emulator.inventory()).toMatchObject({ servers: 1, ports: 1 });
    expect(isEmptyPlan(await plan({ spec, provider }))).toBe(true);
  });
});
