import { describe, expect, it } from 'vitest';
import {
  CancelledError,
  NotFoundError,
  ThrottledError,
  TimeoutError,
  ValidationError,
  buildSteps,
  diff,
  executePlan,
  waitUntil,
  type DesiredResource,
  type ExecutionEvent,
} from '../src/index.js';
import { FakeProvider, baseNetwork, desired, instance } from './fake-provider.js';

const fastRetry = { minDelayMs: 1, maxDelayMs: 5 };

async function planFor(fake: FakeProvider, resources: DesiredResource[]) {
  const provider = fake.provider();
  const observed = [...fake.resources.values()];
  return { provider, plan: diff({ environment: 'test', provider, desired: resources, observed }) };
}

describe('executePlan', () => {
  it('creates dependencies before dependents', async () => {
    const fake = new FakeProvider();
    const { provider, plan } = await planFor(fake, [...baseNetwork(), instance('web', 'a'), instance('db', 'b')]);
    const result = await executePlan(plan, { provider });
    expect(result.status).toBe('succeeded');
    const position = (call: string) => fake.calls.indexOf(call);
    expect(position('create:network.net')).toBe(0);
    expect(position('create:subnet.a')).toBeLessThan(position('create:instance.web'));
    expect(position('create:subnet.b')).toBeLessThan(position('create:instance.db'));
    expect(result.done).toHaveLength(5);
    expect(result.resources.map((resource) => resource.address).sort()).toEqual(['instance.db', 'instance.web', 'network.net', 'subnet.a', 'subnet.b']);
  });

  it('runs at most `concurrency` steps at once (default 10)', async () => {
    const keys = Array.from({ length: 40 }, (_, index) => desired('keyPair', `k${index}`, { publicKey: `ssh-ed25519 AAAA${index}` }));
    const bounded = new FakeProvider();
    bounded.script.delayMs = 5;
    const first = await planFor(bounded, keys);
    await executePlan(first.plan, { provider: first.provider, concurrency: 4 });
    expect(bounded.maxRunning).toBe(4);

    const byDefault = new FakeProvider();
    byDefault.script.delayMs = 5;
    const second = await planFor(byDefault, keys);
    await executePlan(second.plan, { provider: second.provider });
    expect(byDefault.maxRunning).toBe(10);
  });

  it('retries retryable errors with events, and keeps one idempotency token per create', async () => {
    const fake = new FakeProvider();
    fake.fail('create:instance.web', new ThrottledError('slow down'), new ThrottledError('slow down'));
    const { provider, plan } = await planFor(fake, [...baseNetwork(), instance('web', 'a')]);
    const events: ExecutionEvent[] = [];
    const result = await executePlan(plan, { provider, retry: fastRetry, onEvent: (event) => events.push(event) });
    expect(result.status).toBe('succeeded');
    const retried = events.filter((event) => event.type === 'retried');
    expect(retried.map((event) => [event.address, event.type === 'retried' && event.attempt])).toEqual([
      ['instance.web', 1],
      ['instance.web', 2],
    ]);
    expect(fake.calls.filter((call) => call === 'create:instance.web')).toHaveLength(3);
    // The fake records a token only on the attempt that got through; the next plan gets a new one.
    const token = fake.tokens.get('instance.web')?.[0];
    expect(token).toMatch(/^[0-9a-f]{64}$/);
    expect(fake.tokens.get('subnet.a')?.[0]).not.toBe(token);
  });

  it('gives up when the retry budget is spent, and reports the last error', async () => {
    const fake = new FakeProvider();
    fake.fail('create:network.net', ...Array.from({ length: 10 }, () => new ThrottledError('slow down')));
    const { provider, plan } = await planFor(fake, baseNetwork());
    const result = await executePlan(plan, { provider, retry: { ...fastRetry, maxAttempts: 3 } });
    expect(result.status).toBe('failed');
    expect(fake.calls.filter((call) => call === 'create:network.net')).toHaveLength(3);
    expect(result.failed).toHaveLength(1);
    expect(ThrottledError.isInstance(result.failed[0]?.error)).toBe(true);
  });

  it('does not retry errors that are not retryable', async () => {
    const fake = new FakeProvider();
    fake.fail('create:network.net', new ValidationError('bad cidr'));
    const { provider, plan } = await planFor(fake, baseNetwork());
    const result = await executePlan(plan, { provider, retry: fastRetry });
    expect(fake.calls).toEqual(['create:network.net']);
    expect(result.failed[0]?.error.code).toBe('Validation');
  });

  it('skips what depends on a failed step, finishes everything else, and says which is which', async () => {
    const fake = new FakeProvider();
    fake.fail('create:subnet.a', new ValidationError('subnet refused'));
    const { provider, plan } = await planFor(fake, [...baseNetwork(), instance('web', 'a'), instance('db', 'b')]);
    const result = await executePlan(plan, { provider });
    expect(result.status).toBe('failed');
    expect(result.failed.map((failure) => [failure.step, failure.address])).toEqual([['create', 'subnet.a']]);
    expect(result.notDone).toEqual([{ address: 'instance.web', step: 'create', reason: 'create of subnet.a failed' }]);
    expect(result.done.map((step) => step.address).sort()).toEqual(['instance.db', 'network.net', 'subnet.b']);
  });

  it('stops starting steps when cancelled, and lists them as not done', async () => {
    const fake = new FakeProvider();
    const controller = new AbortController();
    const { provider, plan } = await planFor(fake, [...baseNetwork(), instance('web', 'a'), instance('db', 'b')]);
    const result = await executePlan(plan, {
      provider,
      concurrency: 1,
      signal: controller.signal,
      onEvent: (event) => event.type === 'succeeded' && event.address === 'network.net' && controller.abort(),
    });
    expect(result.status).toBe('cancelled');
    expect(fake.calls).toEqual(['create:network.net']);
    expect(result.notDone.map((step) => [step.address, step.reason]).sort()).toEqual([
      ['instance.db', 'cancelled'],
      ['instance.web', 'cancelled'],
      ['subnet.a', 'cancelled'],
      ['subnet.b', 'cancelled'],
    ]);
  });

  it('deletes dependents before what they depend on', async () => {
    const fake = new FakeProvider();
    const first = await planFor(fake, [...baseNetwork(), instance('web', 'a'), instance('db', 'b')]);
    await executePlan(first.plan, { provider: first.provider });
    fake.calls.length = 0;
    const { provider, plan } = await planFor(fake, []);
    expect(plan.summary.delete).toBe(5);
    const result = await executePlan(plan, { provider, concurrency: 5 });
    expect(result.status).toBe('succeeded');
    const position = (call: string) => fake.calls.indexOf(call);
    expect(position('delete:instance.web')).toBeLessThan(position('delete:subnet.a'));
    expect(position('delete:instance.db')).toBeLessThan(position('delete:subnet.b'));
    expect(position('delete:subnet.a')).toBeLessThan(position('delete:network.net'));
    expect(position('delete:subnet.b')).toBeLessThan(position('delete:network.net'));
    expect(fake.resources.size).toBe(0);
  });

  it('replaces by deleting first, and replaces what sits on a replaced resource', async () => {
    const fake = new FakeProvider();
    const first = await planFor(fake, [...baseNetwork(), instance('web', 'a'), instance('db', 'b')]);
    await executePlan(first.plan, { provider: first.provider });
    const oldWeb = fake.resources.get('instance.web')?.id;
    fake.calls.length = 0;
    const changed = [...baseNetwork().map((resource) => (resource.address === 'subnet.a' ? desired('subnet', 'a', { network: 'net', cidr: '10.0.3.0/24', access: 'public' }) : resource)), instance('web', 'a'), instance('db', 'b')];
    const { provider, plan } = await planFor(fake, changed);
    const types = Object.fromEntries(plan.actions.map((action) => [action.address, action.type]));
    expect(types).toEqual({ 'network.net': 'noop', 'subnet.a': 'replace', 'subnet.b': 'noop', 'instance.web': 'replace', 'instance.db': 'noop' });
    expect(plan.actions.find((action) => action.address === 'instance.web')?.reason).toBe('subnet.a is replaced');
    const result = await executePlan(plan, { provider });
    expect(result.status).toBe('succeeded');
    expect(fake.calls).toEqual(['delete:instance.web', 'delete:subnet.a', 'create:subnet.a', 'create:instance.web']);
    expect(fake.resources.get('instance.web')?.id).not.toBe(oldWeb);
  });

  it('starts what needs only an id as soon as the dependency announces it, the rest when it finishes', async () => {
    const fake = new FakeProvider();
    const provider = fake.provider();
    const timeline: string[] = [];
    const createSubnet = provider.services.subnet.create;
    provider.services.subnet.create = async (resource, context) => {
      const created = await createSubnet(resource, context);
      timeline.push(`announced ${resource.address}`);
      context.announce(created);
      await new Promise((resolve) => setTimeout(resolve, 30)); // routes and attributes still being set
      timeline.push(`finished ${resource.address}`);
      return created;
    };
    const createInstance = provider.services.instance.create;
    provider.services.instance.create = async (resource, context) => {
      timeline.push(`launching ${resource.address} in ${context.idOf('subnet.a')}`);
      return createInstance(resource, context);
    };
    const plan = diff({ environment: 'test', provider, desired: [...baseNetwork(), instance('web', 'a')], observed: [] });
    const result = await executePlan(plan, { provider });
    expect(result.status).toBe('succeeded');
    const subnetId = fake.resources.get('subnet.a')?.id;
    expect(timeline.filter((entry) => entry.includes('subnet.a') || entry.includes('instance.web'))).toEqual([
      'announced subnet.a',
      `launching instance.web in ${subnetId}`,
      'finished subnet.a',
    ]);
  });

  it('builds delete steps that wait for updates still referring to the deleted resource', async () => {
    const fake = new FakeProvider();
    const fw = desired('firewall', 'old', { network: 'net', description: 'old', ingress: [] });
    const first = await planFor(fake, [...baseNetwork(), fw, instance('web', 'a', { firewalls: ['old'] })]);
    await executePlan(first.plan, { provider: first.provider });
    const { plan } = await planFor(fake, [...baseNetwork(), instance('web', 'a', { firewalls: [] })]);
    const steps = buildSteps(plan);
    const deleteOld = [...steps.values()].find((step) => step.key.startsWith('delete:firewall.old'));
    expect(deleteOld && [...deleteOld.needs]).toEqual(['update:instance.web']);
  });
});

describe('waitUntil', () => {
  it('treats NotFound as "not yet" and returns once done', async () => {
    let calls = 0;
    const value = await waitUntil(
      async () => {
        calls++;
        if (calls < 3) throw new NotFoundError('not visible yet');
        return calls < 4 ? { done: false, state: 'pending' } : { done: true, value: 'running' };
      },
      { description: 'thing to run', minDelayMs: 1, maxDelayMs: 2 },
    );
    expect(value).toBe('running');
    expect(calls).toBe(4);
  });

  it('times out with a message naming what was awaited and the last state', async () => {
    const error = await waitUntil(async () => ({ done: false, state: 'pending' }), { description: 'instance i-1 to be running', timeoutMs: 30, minDelayMs: 5 }).catch(
      (caught: unknown) => caught,
    );
    expect(TimeoutError.isInstance(error)).toBe(true);
    expect((error as Error).message).toMatch(/instance i-1 to be running \(last state: pending\)/);
  });

  it('stops when cancelled', async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 10);
    const error = await waitUntil(async () => ({ done: false }), { description: 'x', minDelayMs: 2, signal: controller.signal }).catch((caught: unknown) => caught);
    expect(CancelledError.isInstance(error)).toBe(true);
  });

  it('fails at once on an error that is not retryable', async () => {
    let calls = 0;
    await expect(
      waitUntil(
        async () => {
          calls++;
          throw new ValidationError('broken');
        },
        { description: 'x', minDelayMs: 1 },
      ),
    ).rejects.toSatisfy(ValidationError.isInstance);
    expect(calls).toBe(1);
  });
});
