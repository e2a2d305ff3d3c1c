/**
 * SSH to the servers Armada provisions, on ssh2: connect with the key pair's private key, wait for
 * a new server to accept connections (bounded backoff), pin host keys on first use and refuse a
 * changed one, run commands with streamed output, exit code and timeout, sudo, upload over SFTP,
 * reach private instances through a public one as jump host, and reuse connections.
 *
 * Private keys are only ever handed to ssh2: never logged, never put in errors.
 */
import { createHash } from 'node:crypto';
import { readFile, } from 'node:fs/promises';
import { Client, type ClientChannel, type ConnectConfig } from 'ssh2';
import type { CommandChannel, CommandResult } from '../config-manager.js';
import { ArmadaError, CancelledError, TimeoutError, ValidationError } from '../errors.js';
import { writeFileAtomic } from '../files.js';
import { sleep } from '../execute/retry.js';

/** Where pinned host keys are kept: `host:port` -> SHA256 fingerprint(s). */
export interface HostKeyStore {
  /** The (first) fingerprint pinned for a host. */
  get(host: string): Promise<string | undefined>;
  /** Pins a host's key on first use; `key` is the public key blob (a known_hosts file keeps it). */
  set(host: string, fingerprint: string, key?: Buffer): Promise<void>;
  /** Every fingerprint pinned for a host (a server has a key per algorithm). Default: `get`'s. */
  all?(host: string): Promise<string[]>;
  /** `false`: a host with no pin is refused, not trusted on first use (strict). Default `true`. */
  readonly trustOnFirstUse?: boolean;
}

export function memoryHostKeyStore(initial: Record<string, string> = {}): HostKeyStore {
  const keys = new Map(Object.entries(initial));
  return { get: async (host) => keys.get(host), set: async (host, fingerprint) => void keys.set(host, fingerprint) };
}

/** A JSON file of pinned keys (mode 0600), written atomically. */
export function fileHostKeyStore(path: string): HostKeyStore {
  const load = async (): Promise<Record<string, string>> => {
    try {
      return JSON.parse(await readFile(path, 'utf8')) as Record<string, string>;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return {};
      throw error;
    }
  };
  return {
    get: async (host) => (await load())[host],
    async set(host, fingerprint) {
      const keys = { ...(await load()), [host]: fingerprint };
      await writeFileAtomic(path, `${JSON.stringify(keys, null, 2)}\n`);
    },
  };
}

export function fingerprintOf(key: Buffer): string {
  return `SHA256:${createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}`;
}

export interface SshTarget {
  host: string;
  port?: number;
  username: string;
  /** OpenSSH or PEM private key text. A secret: handed to ssh2 and nowhere else. */
  privateKey?: string | Buffer;
  /** An ssh-agent's socket (SSH_AUTH_SOCK): its keys are offered too, or alone without `privateKey`. */
  agent?: string;
}

export interface SshConnectOptions extends SshTarget {
  hostKeys: HostKeyStore;
  /** Reach this host through another one (a public instance in front of private ones). */
  jumpHost?: SshTarget;
  /** How long to keep trying while the server does not accept connections yet. Default 5 min. */
  waitTimeoutMs?: number;
  /** First retry delay while waiting; doubles up to 10 s. Default 500 ms. */
  retryDelayMs?: number;
  signal?: AbortSignal;
}

const hostId = (target: SshTarget) => `${target.host}:${target.port ?? 22}`;

/** Errors worth waiting through: the server is not up yet. */
function isNotUpYet(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException).code ?? '';
  const level = (error as { level?: string }).level ?? '';
  return ['ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ETIMEDOUT'].includes(code) || level === 'client-timeout';
}

function connectOnce(target: SshTarget, hostKeys: HostKeyStore, sock?: ClientChannel): Promise<Client> {
  const id = hostId(target);
  return new Promise((resolve, reject) => {
    const client = new Client();
    let offered: string | undefined;
    let pinned: string[] = [];
    // Why the host key was refused, when it was: said as that, not as ssh2's "Host denied".
    let refusal: Error | undefined;
    client.on('ready', () => resolve(client));
    client.on('error', (error: Error & { level?: string }) => {
      client.end();
      if (refusal) reject(refusal);
      else if (offered !== undefined && pinned.length > 0 && !pinned.includes(offered)) {
        reject(
          new ValidationError(`The SSH host key of ${id} has changed: refusing to connect.`, {
            issues: [
              {
                path: id,
                message: `expected ${pinned.join(' or ')}, the server offered ${offered}`,
                fix: 'if the server was rebuilt on purpose, remove its entry from the host key store; otherwise treat this as a possible attack',
              },
            ],
          }),
        );
      } else if (error.level === 'client-authentication') {
        reject(
          new ValidationError(`SSH authentication as ${target.username}@${id} failed: the server refused the key.`, {
            issues: [{ path: `${target.username}@${id}`, message: error.message, fix: "check the key pair's private key and the user's authorized_keys" }],
          }),
        );
      } else reject(error);
    });
    const config: ConnectConfig = {
      host: target.host,
      port: target.port ?? 22,
      username: target.username,
      ...(target.privateKey !== undefined ? { privateKey: target.privateKey } : {}),
      ...(target.agent ? { agent: target.agent } : {}),
      readyTimeout: 20_000,
      ...(sock ? { sock } : {}),
      // Trust on first use, then insist: the fingerprint is pinned per host:port.
      hostVerifier: (key: Buffer, verify: (valid: boolean) => void) => {
        offered = fingerprintOf(key);
        const known = hostKeys.all ? hostKeys.all(id) : hostKeys.get(id).then((print) => (print === undefined ? [] : [print]));
        known
          .then(async (prints) => {
            pinned = prints;
            if (prints.length > 0) return verify(prints.includes(offered as string));
            if (hostKeys.trustOnFirstUse === false) {
              refusal = new ValidationError(`No host key is pinned for ${id}, and host keys are strict: refusing to connect.`, {
                issues: [{ path: id, message: `the server offered ${offered}, which nothing pins`, fix: 'pin its fingerprint (from the cloud console output, or a trusted first connection), or turn strict host keys off' }],
              });
              return verify(false);
            }
            await hostKeys.set(id, offered as string, key);
            verify(true);
          })
          .catch((error: unknown) => {
            // A damaged store: its own error (file and line), not a bare refusal.
            refusal = error instanceof Error ? error : new Error(String(error));
            verify(false);
          });
      },
    };
    client.connect(config);
  });
}

function forward(jump: Client, target: SshTarget): Promise<ClientChannel> {
  return new Promise((resolve, reject) => {
    jump.forwardOut('127.0.0.1', 0, target.host, target.port ?? 22, (error, channel) => (error ? reject(error) : resolve(channel)));
  });
}

function shellQuote(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}

export interface ExecOptions {
  /** Run as root through `sudo -n` (not needed, and not used, when already root). */
  sudo?: boolean;
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Output as it arrives (stdout and stderr). */
  onOutput?: (chunk: string) => void;
}

/** An open SSH connection: a CommandChannel for the config managers. */
export class SshSession implements CommandChannel {
  readonly description: string;
  private closed = false;

  constructor(
    private readonly client: Client,
    private readonly target: SshTarget,
    private readonly jump?: Client,
  ) {
    this.description = `${target.username}@${hostId(target)}${jump ? ' (through a jump host)' : ''}`;
    client.on('close', () => {
      this.closed = true;
      for (const listener of this.closeListeners) listener();
      this.closeListeners.clear();
    });
  }

  get isOpen(): boolean {
    return !this.closed;
  }

  exec(command: string, options: ExecOptions = {}): Promise<CommandResult> {
    const wrapped = options.sudo && this.target.username !== 'root' ? `sudo -n sh -c ${shellQuote(command)}` : command;
    const cancelled = () => new CancelledError(`Cancelled a command on ${this.description}.`);
    if (options.signal?.aborted) return Promise.reject(cancelled());
    return new Promise((resolve, reject) => {
      this.client.exec(wrapped, (error, stream) => {
        if (error) return reject(error);
        let stdout = '';
        let stderr = '';
        let timer: NodeJS.Timeout | undefined;
        const stop = (failure: Error) => {
          clearTimeout(timer);
          stream.close();
          reject(failure);
        };
        if (options.timeoutMs !== undefined) {
          timer = setTimeout(
            () => stop(new TimeoutError(`The command on ${this.description} ran over ${options.timeoutMs} ms and was stopped.`, { timeoutMs: options.timeoutMs as number })),
            options.timeoutMs,
          );
        }
        // Opening the channel takes a round trip: a cancel that came meanwhile has already fired.
        if (options.signal?.aborted) return stop(cancelled());
        options.signal?.addEventListener('abort', () => stop(cancelled()), { once: true });
        stream.on('data', (chunk: Buffer) => {
          stdout += chunk.toString('utf8');
          options.onOutput?.(chunk.toString('utf8'));
        });
        stream.stderr.on('data', (chunk: Buffer) => {
          stderr += chunk.toString('utf8');
          options.onOutput?.(chunk.toString('utf8'));
        });
        stream.on('close', (code: number | null, signalName?: string) => {
          clearTimeout(timer);
          resolve({ exitCode: code ?? (signalName ? 128 : -1), stdout, stderr });
        });
      });
    });
  }

  upload(content: string | Uint8Array, remotePath: string, options: { mode?: number } = {}): Promise<void> {
    return new Promise((resolve, reject) => {
      this.client.sftp((error, sftp) => {
        if (error) return reject(error);
        sftp.writeFile(remotePath, typeof content === 'string' ? Buffer.from(content) : Buffer.from(content), { mode: options.mode ?? 0o644 }, (writeError) => {
          if (writeError) {
            sftp.end();
            return reject(new ArmadaError('Unknown', `Upload to ${this.description}:${remotePath} failed: ${writeError.message}`, { cause: writeError }));
          }
          // writeFile keeps an existing file's mode: set the one asked for.
          sftp.chmod(remotePath, options.mode ?? 0o644, (chmodError) => {
            sftp.end();
            if (chmodError) reject(chmodError);
            else resolve();
          });
        });
      });
    });
  }

  /**
   * A TCP connection from the server to `host:port` (SSH's direct-tcpip channel: what `ssh -L`
   * uses), for tunnels to services only the server can reach.
   */
  openChannel(host: string, port: number): Promise<ClientChannel> {
    return new Promise((resolve, reject) => {
      this.client.forwardOut('127.0.0.1', 0, host, port, (error, channel) => (error ? reject(error) : resolve(channel)));
    });
  }

  /**
   * Asks the server to listen on `bindHost:bindPort` and hand each connection to `accept` (what
   * `ssh -R` does): the way back from a server to something only this side can reach.
   * Resolves with the port the server listens on. The listener ends with the session.
   */
  listenRemote(bindHost: string, bindPort: number, accept: (channel: ClientChannel) => void): Promise<number> {
    this.client.on('tcp connection', (info, acceptConnection) => {
      if (info.destIP === bindHost && (bindPort === 0 || info.destPort === bindPort)) accept(acceptConnection());
    });
    return new Promise((resolve, reject) => {
      this.client.forwardIn(bindHost, bindPort, (error, port) => (error ? reject(error) : resolve(port || bindPort)));
    });
  }

  private readonly closeListeners = new Set<() => void>();

  /** Called once when the connection ends, whoever ended it. Returns how to stop listening. */
  onClose(listener: () => void): () => void {
    if (this.closed) {
      listener();
      return () => undefined;
    }
    this.closeListeners.add(listener);
    return () => this.closeListeners.delete(listener);
  }

  close(): void {
    this.client.end();
    this.jump?.end();
  }
}

/** Connects, waiting with bounded backoff while the server (or the jump host) is not up yet. */
export async function connectSsh(options: SshConnectOptions): Promise<SshSession> {
  const waitTimeoutMs = options.waitTimeoutMs ?? 300_000;
  const started = performance.now();
  let delay = options.retryDelayMs ?? 500;
  for (;;) {
    if (options.signal?.aborted) throw new CancelledError(`Cancelled while connecting to ${hostId(options)}.`);
    let jump: Client | undefined;
    try {
      if (options.jumpHost) {
        jump = await connectOnce(options.jumpHost, options.hostKeys);
        const client = await connectOnce(options, options.hostKeys, await forward(jump, options));
        return new SshSession(client, options, jump);
      }
      return new SshSession(await connectOnce(options, options.hostKeys), options);
    } catch (error) {
      jump?.end();
      if (!isNotUpYet(error)) throw error;
      if (performance.now() - started + delay > waitTimeoutMs) {
        throw new TimeoutError(
          `${hostId(options)} did not accept SSH connections within ${Math.round(waitTimeoutMs / 1000)} s (last error: ${(error as Error).message}). Check that the instance is running and its firewall admits port ${options.port ?? 22} from here.`,
          { timeoutMs: waitTimeoutMs },
        );
      }
      await sleep(delay, options.signal);
      delay = Math.min(delay * 2, 10_000);
    }
  }
}

/** Reuses one connection per user@host:port; `closeAll` when done. */
export class SshConnectionPool {
  private readonly sessions = new Map<string, Promise<SshSession>>();

  constructor(private readonly defaults: Pick<SshConnectOptions, 'hostKeys' | 'waitTimeoutMs' | 'retryDelayMs'>) {}

  session(options: Omit<SshConnectOptions, 'hostKeys'> & Partial<Pick<SshConnectOptions, 'hostKeys'>>): Promise<SshSession> {
    const key = `${options.username}@${hostId(options)}${options.jumpHost ? ` via ${hostId(options.jumpHost)}` : ''}`;
    const existing = this.sessions.get(key);
    if (existing) {
      return existing.then((session) => {
        if (session.isOpen) return session;
        this.sessions.delete(key);
        return this.session(options);
      });
    }
    const opened = connectSsh({ ...this.defaults, ...options });
    this.sessions.set(key, opened);
    opened.catch(() => this.sessions.delete(key));
    return opened;
  }

  async closeAll(): Promise<void> {
    const sessions = await Promise.allSettled(this.sessions.values());
    for (const entry of sessions) if (entry.status === 'fulfilled') entry.value.close();
    this.sessions.clear();
  }
}
