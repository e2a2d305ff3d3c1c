/**
 * A small OpenStack client on global fetch: Keystone v3 password authentication scoped to a
 * project, the service catalog (endpoints of one region), JSON calls with `X-Auth-Token`, lists
 * followed page by page (`limit` / `marker` and the `<key>_links` next link), and errors mapped to
 * core's typed errors.
 *
 * A 429 or 503 took no effect, so the call is tried again here a few times (honouring
 * `Retry-After`) before the error goes to the executor. A connection that fails without a reply
 * may have taken effect: that is never repeated here, and goes back as a ConnectionError, so that
 * the service's create knows to look for what that attempt made before it tries again (createOnce
 * in context.ts).
 */
import { ConnectionError, ThrottledError, ValidationError, sleep } from '@armada/core';
import { OPENSTACK_PROVIDER_ID, mapOpenStackError, parseFault } from './errors.js';

export type ServiceType = 'compute' | 'network' | 'image';

export interface OpenStackCredentials {
  /** Keystone v3 URL, ending in `/v3`. */
  authUrl: string;
  username: string;
  password: string;
  /** Project (tenant) name. */
  project: string;
  userDomain: string;
  projectDomain: string;
}

export interface ClientOptions {
  credentials: Partial<OpenStackCredentials>;
  region: string;
  /** Items per page of list calls. */
  pageSize: number;
  /** Tries of a throttled (429/503) call inside the client, the first included. */
  throttleAttempts: number;
  /** First wait before such a retry; doubles each time. `Retry-After` wins when longer. */
  throttleDelayMs: number;
  /** Replaces global fetch (a proxy, a test double). */
  fetch?: typeof fetch;
}

interface CatalogEntry {
  type: string;
  endpoints: Array<{ interface: string; region?: string; region_id?: string; url: string }>;
}

interface Session {
  token: string;
  expiresAt: number;
  catalog: CatalogEntry[];
}

export interface RequestOptions {
  body?: unknown;
  query?: Record<string, string | number | undefined>;
  /** Nova microversion, sent as `OpenStack-API-Version: compute <version>`. */
  microversion?: string;
}

const MISSING: Record<keyof OpenStackCredentials, string> = {
  authUrl: 'OS_AUTH_URL',
  username: 'OS_USERNAME',
  password: 'OS_PASSWORD',
  project: 'OS_PROJECT_NAME',
  userDomain: 'OS_USER_DOMAIN_NAME',
  projectDomain: 'OS_PROJECT_DOMAIN_NAME',
};

export class OpenStackClient {
  private session: Promise<Session> | undefined;
  private readonly fetch: typeof fetch;

  constructor(private readonly options: ClientOptions) {
    this.fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
  }

  get region(): string {
    return this.options.region;
  }

  /** Every credential, or a ValidationError naming each missing option and its variable. */
  credentials(): OpenStackCredentials {
    const given = this.options.credentials;
    const missing = (Object.keys(MISSING) as Array<keyof OpenStackCredentials>).filter((key) => !given[key]);
    if (missing.length > 0) {
      throw new ValidationError('OpenStack credentials are incomplete.', {
        provider: OPENSTACK_PROVIDER_ID,
        issues: missing.map((key) => ({ path: key, message: 'not given', fix: `pass \`${key}\` to openStackProviderPlugin(), or set ${MISSING[key]}` })),
      });
    }
    return given as OpenStackCredentials;
  }

  /** POST /v3/auth/tokens: the token comes back in `X-Subject-Token`, the catalog in the body. */
  private async authenticate(): Promise<Session> {
    const credentials = this.credentials();
    const url = `${credentials.authUrl.replace(/\/+$/, '')}/auth/tokens`;
    const body = {
      auth: {
        identity: {
          methods: ['password'],
          password: { user: { name: credentials.username, domain: { name: credentials.userDomain }, password: credentials.password } },
        },
        scope: { project: { name: credentials.project, domain: { name: credentials.projectDomain } } },
      },
    };
    const response = await this.send('POST /v3/auth/tokens', url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const token = response.headers.get('x-subject-token');
    const parsed = (await response.json()) as { token?: { expires_at?: string; catalog?: CatalogEntry[] } };
    if (!token || !parsed.token) throw new ThrottledError('Keystone answered without a token; trying again.', { provider: OPENSTACK_PROVIDER_ID });
    return { token, expiresAt: Date.parse(parsed.token.expires_at ?? '') || Date.now() + 3_600_000, catalog: parsed.token.catalog ?? [] };
  }

  /** The current session, renewed a minute before the token expires. */
  private async current(): Promise<Session> {
    const existing = this.session ? await this.session.catch(() => undefined) : undefined;
    if (existing && existing.expiresAt - Date.now() > 60_000) return existing;
    this.session = this.authenticate();
    this.session.catch(() => {
      this.session = undefined;
    });
    return this.session;
  }

  /** Authenticates now (verify()): proves the credentials and returns the catalog. */
  async catalog(): Promise<CatalogEntry[]> {
    this.session = undefined;
    return (await this.current()).catalog;
  }

  /** Regions that offer every service in `types`. */
  static regionsOffering(catalog: CatalogEntry[], types: readonly string[]): string[] {
    const sets = types.map((type) => new Set((catalog.find((entry) => entry.type === type)?.endpoints ?? []).map((endpoint) => endpoint.region_id ?? endpoint.region ?? '')));
    const [first, ...rest] = sets;
    return [...(first ?? [])].filter((region) => region && rest.every((set) => set.has(region))).sort();
  }

  private async endpoint(type: ServiceType): Promise<string> {
    const { catalog } = await this.current();
    const entry = catalog.find((candidate) => candidate.type === type);
    const endpoint = entry?.endpoints.find((candidate) => candidate.interface === 'public' && (candidate.region_id ?? candidate.region) === this.region);
    if (!endpoint) {
      throw new ValidationError(`The OpenStack catalog has no public ${type} endpoint in region "${this.region}".`, {
        provider: OPENSTACK_PROVIDER_ID,
        issues: [{ path: 'provider.region', message: `no ${type} service in "${this.region}"`, fix: `use one of: ${OpenStackClient.regionsOffering(catalog, [type]).join(', ')}` }],
      });
    }
    return endpoint.url.replace(/\/+$/, '');
  }

  /** One HTTP exchange; a non-2xx reply becomes a typed error. 429 and 503 are tried again here. */
  private async send(context: string, url: string, init: RequestInit): Promise<Response> {
    for (let attempt = 1; ; attempt++) {
      let response: Response;
      try {
        response = await this.fetch(url, init);
      } catch (error) {
        // No reply: unlike a 429 or 503, the call may have taken effect.
        throw new ConnectionError(`${context}: the connection failed (${(error as Error).message}); the call may have taken effect`, { provider: OPENSTACK_PROVIDER_ID, cause: error });
      }
      if (response.ok) return response;
      const text = await response.text();
      let body: unknown = text;
      try {
        body = text ? JSON.parse(text) : undefined;
      } catch {
        // An HTML page from a proxy: keep the text.
      }
      const fault = parseFault(response.status, body, response.headers);
      const throttled = response.status === 429 || response.status === 503;
      if (throttled && attempt < this.options.throttleAttempts) {
        const backoff = this.options.throttleDelayMs * 2 ** (attempt - 1) * (0.5 + Math.random() / 2);
        await sleep(Math.max(backoff, fault.retryAfterMs ?? 0));
        continue;
      }
      throw mapOpenStackError(fault, context);
    }
  }

  /** A JSON call to a service of the catalog. `path` starts after the endpoint (`/v2.0/networks`). */
  async request<T = Record<string, unknown>>(service: ServiceType, method: string, path: string, options: RequestOptions = {}): Promise<T> {
    return this.requestUrl<T>(service, method, `${await this.endpoint(service)}${path}`, options, `${method} ${path.split('?')[0]}`);
  }

  private async requestUrl<T>(service: ServiceType, method: string, target: string, options: RequestOptions, context: string, renewed = false): Promise<T> {
    const url = new URL(target);
    for (const [key, value] of Object.entries(options.query ?? {})) if (value !== undefined) url.searchParams.set(key, String(value));
    const { token } = await this.current();
    const headers: Record<string, string> = { accept: 'application/json', 'x-auth-token': token };
    if (options.body !== undefined) headers['content-type'] = 'application/json';
    if (options.microversion && service === 'compute') headers['openstack-api-version'] = `compute ${options.microversion}`;
    try {
      const response = await this.send(context, url.toString(), { method, headers, ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}) });
      const text = await response.text();
      return (text ? JSON.parse(text) : {}) as T;
    } catch (error) {
      // A token revoked or expired early: authenticate once more and repeat the call.
      if (!renewed && ValidationError.isInstance(error) && /rejected the credentials/.test(error.message)) {
        this.session = undefined;
        return this.requestUrl<T>(service, method, target, options, context, true);
      }
      throw error;
    }
  }

  /** Every item of a list, following the `<key>_links` next link page by page. */
  async listAll<T>(service: ServiceType, path: string, key: string, options: RequestOptions = {}): Promise<T[]> {
    const items: T[] = [];
    let target: string | undefined = `${await this.endpoint(service)}${path}`;
    let query: RequestOptions['query'] = { limit: this.options.pageSize, ...options.query };
    while (target) {
      const page: Record<string, unknown> = await this.requestUrl<Record<string, unknown>>(service, 'GET', target, { ...options, query }, `GET ${path}`);
      items.push(...((page[key] as T[] | undefined) ?? []));
      const next = ((page[`${key}_links`] as Array<{ rel: string; href: string }> | undefined) ?? []).find((link) => link.rel === 'next');
      // The next link carries the whole query (filters, limit, marker).
      target = next?.href;
      query = {};
    }
    return items;
  }
}
