/**
 * SSH tunnels to data stores on private networks, as operators make them with `ssh -L` and
 * `ssh -R` through a jump host, but kept up: a session that drops (the jump host rebooted, its
 * sshd restarted, the network blinked) is opened again with connectSsh's bounded backoff, the
 * tunnel's local address stays the same, and a remote forward is asked for again on its port.
 *
 * Connections that were inside a dropped session are lost with it: the data steps resume their
 * copy from its checkpoint, and a replica reconnects by itself (MySQL's connect retry, Redis's
 * replication link), so a drop costs time, never data.
 */
import { createServer, connect as connectTcp, type Server, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { SshSession } from './transport.js';

export interface HostAndPort {
  host: string;
  port: number;
}

export type TunnelEvent =
  | { type: 'opened'; via: string }
  | { type: 'lost'; via: string }
  | { type: 'reopened'; via: string; afterMs: number }
  | { type: 'failed'; via: string; message: string };

/**
 * One SSH session shared by every tunnel through the same host, opened on first use and again
 * whenever it has dropped.
 */
export class SessionKeeper {
  private current: Promise<SshSession> | undefined;
  private lostAt: number | undefined;
  private closed = false;

  constructor(
    /** Opens the session (connectSsh, with its own wait while the host does not answer). */
    private readonly open: (signal?: AbortSignal) => Promise<SshSession>,
    /** For messages and events: `admin@203.0.113.7:22`. */
    readonly description: string,
    private readonly onEvent?: (event: TunnelEvent) => void,
  ) {}

  session(signal?: AbortSignal): Promise<SshSession> {
    if (this.closed) return Promise.reject(new Error(`The tunnel through ${this.description} is closed.`));
    if (this.current) {
      return this.current.then(
        (session) => (session.isOpen ? session : this.reopen(signal)),
        () => this.reopen(signal),
      );
    }
    return this.reopen(signal);
  }

  private reopen(signal?: AbortSignal): Promise<SshSession> {
    const opening = this.open(signal).then((session) => {
      const afterMs = this.lostAt === undefined ? undefined : Math.round(performance.now() - this.lostAt);
      this.lostAt = undefined;
      this.onEvent?.(afterMs === undefined ? { type: 'opened', via: this.description } : { type: 'reopened', via: this.description, afterMs });
      session.onClose(() => {
        if (this.closed || this.current !== opening) return;
        this.lostAt ??= performance.now();
        this.onEvent?.({ type: 'lost', via: this.description });
        for (const listener of this.lostListeners) listener();
      });
      return session;
    });
    this.current = opening;
    opening.catch((error: Error) => {
      if (this.current === opening) this.current = undefined;
      this.onEvent?.({ type: 'failed', via: this.description, message: error.message });
    });
    return opening;
  }

  private readonly lostListeners = new Set<() => void>();
  /** Told each time the session drops (remote forwards ask for their port again). */
  onLost(listener: () => void): () => void {
    this.lostListeners.add(listener);
    return () => this.lostListeners.delete(listener);
  }

  async close(): Promise<void> {
    this.closed = true;
    const current = this.current;
    this.current = undefined;
    if (current) await current.then((session) => session.close()).catch(() => undefined);
  }
}

/** Both ways until either side ends; an error on one ends the other. */
function splice(a: Duplex, b: Duplex): void {
  a.pipe(b).on('error', () => a.destroy());
  b.pipe(a).on('error', () => b.destroy());
  a.on('error', () => b.destroy());
  b.on('error', () => a.destroy());
  a.on('close', () => b.destroy());
  b.on('close', () => a.destroy());
}

export interface LocalForward extends HostAndPort {
  close(): Promise<void>;
}

/**
 * `ssh -L 127.0.0.1:<port>:<destination>`: a loopback listener whose connections reach
 * `destination` from the far side of `keeper`'s session. The local port stays the same for the
 * tunnel's life, across reconnections.
 */
export async function openLocalForward(keeper: SessionKeeper, destination: HostAndPort): Promise<LocalForward> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.pause();
    keeper
      .session()
      .then(async (session) => {
        const channel = await session.openChannel(destination.host, destination.port);
        // ssh2 does not always close a channel whose connection dropped: end the client's side
        // at once, so the client sees the loss now instead of after its own timeout.
        const stop = session.onClose(() => {
          channel.destroy();
          socket.destroy();
        });
        socket.once('close', stop);
        return channel;
      })
      .then(
        (channel) => {
          splice(socket, channel);
          socket.resume();
        },
        () => socket.destroy(),
      );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  // The tunnel alone never keeps a process alive: the connections through it do.
  server.unref();
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    host: '127.0.0.1',
    port,
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export interface RemoteForward {
  /** The port the far side listens on, on its loopback. */
  port: number;
  close(): Promise<void>;
}

/**
 * `ssh -R 127.0.0.1:<port>:...`: the far side of `keeper`'s session listens on its loopback
 * `port`, and each connection to it is handed to `dial()` on this side (a direct connection, or
 * a channel through another tunnel). Asked for again on the same port whenever the session comes
 * back, so what the far side was told to connect to (a replica's source) stays true.
 */
export async function openRemoteForward(keeper: SessionKeeper, port: number, dial: () => Promise<Duplex>): Promise<RemoteForward> {
  let closed = false;
  const listen = async () => {
    const session = await keeper.session();
    await session.listenRemote('127.0.0.1', port, (channel) => {
      dial().then(
        (stream) => {
          splice(channel, stream);
          const stop = session.onClose(() => stream.destroy());
          stream.once('close', stop);
        },
        () => channel.destroy(),
      );
    });
  };
  await listen();
  const stopWatching = keeper.onLost(() => {
    // Re-listen in the background, waiting out the outage (connectSsh's own backoff).
    const again = async () => {
      while (!closed) {
        try {
          await listen();
          return;
        } catch {
          await new Promise((resolve) => setTimeout(resolve, 1_000).unref());
        }
      }
    };
    void again();
  });
  return {
    port,
    async close() {
      closed = true;
      stopWatching();
    },
  };
}

/** A direct TCP connection, for a remote forward whose destination this side reaches itself. */
export function dialDirect(destination: HostAndPort): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    const socket = connectTcp(destination.port, destination.host);
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
}

/** A channel through `keeper`'s session to `destination`, for a remote forward's far end. */
export async function dialThrough(keeper: SessionKeeper, destination: HostAndPort): Promise<Duplex> {
  return (await keeper.session()).openChannel(destination.host, destination.port);
}

const LOST_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ECONNABORTED', 'PROTOCOL_CONNECTION_LOST']);

/**
 * An error that says a connection was lost or could not be made, anywhere in its cause chain:
 * after a tunnel drop, what is worth trying again once the tunnel is back.
 */
export function isConnectionLost(error: unknown): boolean {
  for (let current = error, depth = 0; current && depth < 8; current = (current as { cause?: unknown }).cause, depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && LOST_CODES.has(code)) return true;
    const message = (current as { message?: unknown }).message;
    if (typeof message === 'string' && /connection is closed|closed the connection|lost the connection|connection lost|connection is in closed state|socket hang up|Can't connect to|ECONNRESET|ECONNREFUSED/i.test(message)) return true;
  }
  return false;
}
