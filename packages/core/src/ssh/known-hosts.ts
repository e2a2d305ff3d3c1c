/**
 * Pinned SSH host keys in OpenSSH's known_hosts format: one file per project that a person can
 * read, diff and commit, and that `ssh` and `ssh-keygen -F` read too. Lines are
 * `host keytype base64` (port 22) or `[host]:port keytype base64`; comments, `@cert-authority`
 * and `@revoked` markers, hashed hosts (`|1|salt|hash`) and host lists (`a,b`) are understood.
 * A line that is none of these is an error naming the file and the line, never a silent "host
 * denied".
 */
import { createHmac } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { ValidationError } from '../errors.js';
import { writeFileAtomic } from '../files.js';
import { fingerprintOf, type HostKeyStore } from './transport.js';

interface KnownHost {
  /** Patterns as written: `example.com`, `[127.0.0.1]:2222`, or `|1|salt|hash`. */
  hosts: string[];
  keyType: string;
  key: Buffer;
  revoked: boolean;
}


/** `host:port` as known_hosts writes it: bare for port 22, bracketed otherwise. */
export function knownHostsName(id: string): string {
  const at = id.lastIndexOf(':');
  const host = at < 0 ? id : id.slice(0, at);
  const port = at < 0 ? '22' : id.slice(at + 1);
  return port === '22' ? host : `[${host}]:${port}`;
}

function matches(pattern: string, name: string): boolean {
  if (!pattern.startsWith('|1|')) return pattern === name;
  const [, , salt, hash] = pattern.split('|');
  if (!salt || !hash) return false;
  return createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64') === hash;
}

/** The key type named inside an SSH public key blob (its first string). */
function typeOf(key: Buffer): string {
  const length = key.readUInt32BE(0);
  return key.subarray(4, 4 + length).toString('ascii');
}

export function parseKnownHosts(text: string, path: string): KnownHost[] {
  const entries: KnownHost[] = [];
  text.split('\n').forEach((raw, index) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const fields = line.split(/\s+/);
    const marker = fields[0]?.startsWith('@') ? fields.shift() : undefined;
    const [hosts, keyType, base64] = fields;
    const key = base64 && /^[A-Za-z0-9+/]+={0,2}$/.test(base64) ? Buffer.from(base64, 'base64') : undefined;
    const valid = hosts && keyType && key && key.length > 4 && (marker === undefined || marker === '@revoked' || marker === '@cert-authority');
    if (!valid || typeOf(key) !== keyType) {
      throw new ValidationError(`The known hosts file ${path} is damaged at line ${index + 1}.`, {
        issues: [{ path: `${path}:${index + 1}`, message: 'is not a known_hosts line (host, key type, base64 key)', fix: 'correct or remove the line; `ssh-keygen -R <host> -f <file>` removes a host' }],
      });
    }
    // Certificate authorities sign host certificates, which Armada does not use: not a pin.
    if (marker !== '@cert-authority') entries.push({ hosts: hosts.split(','), keyType, key, revoked: marker === '@revoked' });
  });
  return entries;
}

export interface KnownHostsOptions {
  /**
   * Refuse a host no pin names (no trust on first use). Pins come from this file and from
   * `pins` (by `host:port`); the first connection to a new host then needs one of them.
   */
  strict?: boolean;
  /** Fingerprints (`SHA256:...`) expected for hosts by `host:port`, besides the file's. */
  pins?: Readonly<Record<string, readonly string[]>>;
}

/**
 * A HostKeyStore on a known_hosts file. A new host's key is appended (trust on first use, unless
 * `strict`); nothing is ever removed: a changed key is refused, and the fix is the user's.
 */
export function knownHostsStore(path: string, options: KnownHostsOptions = {}): HostKeyStore {
  const load = async (): Promise<{ text: string; entries: KnownHost[] }> => {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { text: '', entries: [] };
      throw error;
    }
    return { text, entries: parseKnownHosts(text, path) };
  };
  const pinned = async (id: string): Promise<string[]> => {
    const name = knownHostsName(id);
    const { entries } = await load();
    const found = entries.filter((entry) => !entry.revoked && entry.hosts.some((pattern) => matches(pattern, name))).map((entry) => fingerprintOf(entry.key));
    const revoked = new Set(entries.filter((entry) => entry.revoked).map((entry) => fingerprintOf(entry.key)));
    return [...found, ...(options.pins?.[id] ?? [])].filter((print) => !revoked.has(print));
  };
  return {
    trustOnFirstUse: !options.strict,
    get: async (id) => (await pinned(id))[0],
    all: pinned,
    async set(id, print, key) {
      if (!key) throw new ValidationError(`A known_hosts file keeps keys, not only fingerprints: no key was given for ${id}.`);
      if (fingerprintOf(key) !== print) throw new ValidationError(`The key given for ${id} does not have the fingerprint ${print}.`);
      const { text } = await load();
      const line = `${knownHostsName(id)} ${typeOf(key)} ${key.toString('base64')}\n`;
      await writeFileAtomic(path, `${text}${text === '' || text.endsWith('\n') ? '' : '\n'}${line}`);
    },
  };
}

/** A store that also expects, for each host, the fingerprints `extra` gives. */
function withExtraPins(store: HostKeyStore, extra: (host: string) => Promise<readonly string[]>): HostKeyStore {
  const all = async (host: string) => [...(store.all ? await store.all(host) : [await store.get(host)].filter((print): print is string => print !== undefined)), ...(await extra(host))];
  return { ...store, get: async (host) => (await all(host))[0], all, set: store.set.bind(store) };
}

/** A store that also accepts the given fingerprints for one host (pins written in a migration file). */
export function withPins(store: HostKeyStore, id: string, fingerprints: readonly string[]): HostKeyStore {
  if (fingerprints.length === 0) return store;
  return withExtraPins(store, async (host) => (host === id ? fingerprints : []));
}

/**
 * A store that also honours the pins of an older JSON store (`host:port` -> fingerprint, what
 * Armada kept in a run's directory before known_hosts): a key pinned there is still expected.
 */
export function withJsonPins(store: HostKeyStore, jsonPath: string): HostKeyStore {
  return withExtraPins(store, async (host) => {
    try {
      const print = (JSON.parse(await readFile(jsonPath, 'utf8')) as Record<string, unknown>)[host];
      return typeof print === 'string' ? [print] : [];
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw new ValidationError(`The host key pins ${jsonPath} cannot be read: ${(error as Error).message}.`);
    }
  });
}
