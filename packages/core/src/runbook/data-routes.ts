/**
 * Data routes over SSH: how a migration reaches databases on private networks (through a jump
 * host's tunnel) and how a target database reaches its source for replication across clouds (a
 * forward on the target host's loopback, kept up by the runbook, relayed through Armada).
 */
import type { Duplex } from 'node:stream';
import { type HostAndPort, type LocalForward, type SessionKeeper, dialDirect, dialThrough, openLocalForward, openRemoteForward } from '../ssh/tunnel.js';
import type { DataRoute } from './steps.js';

export interface SshDataRoute extends DataRoute {
  close(): Promise<void>;
}

/** A route through `keeper`'s host: one loopback forward per destination, opened on first use and shared. */
export function sshDataRoute(keeper: SessionKeeper): SshDataRoute {
  const forwards = new Map<string, Promise<LocalForward>>();
  return {
    description: `through ${keeper.description}`,
    async forward(destination, signal) {
      // The jump host first: a refused key or host key fails here with its own message, not later
      // as a mover's "connection closed".
      await keeper.session(signal);
      const key = `${destination.host}:${destination.port}`;
      let forward = forwards.get(key);
      if (!forward) {
        forward = openLocalForward(keeper, destination);
        forwards.set(key, forward);
        forward.catch(() => forwards.delete(key));
      }
      return forward.then(({ host, port }) => ({ host, port }));
    },
    dial: (destination) => dialThrough(keeper, destination),
    async close() {
      const opened = await Promise.allSettled(forwards.values());
      forwards.clear();
      await Promise.all(opened.map((entry) => (entry.status === 'fulfilled' ? entry.value.close() : undefined)));
    },
  };
}

/**
 * The port a store's replication path listens on, on the target host's loopback: the same in
 * every run of the migration (a resumed run re-opens it where the replica was told to connect).
 */
export function replicationPort(storeName: string): number {
  let hash = 2166136261;
  for (const char of storeName) hash = Math.imul(hash ^ char.charCodeAt(0), 16777619) >>> 0;
  return 41_000 + (hash % 8_000);
}

export interface ReplicationTunnel {
  /** What the target's server must connect to: its own loopback. */
  seenFromTarget: HostAndPort;
  close(): Promise<void>;
}

/**
 * The target host listens on 127.0.0.1:`port`; each connection is relayed by this process to the
 * source store (`source`, through `sourceRoute` when the source is itself behind a jump host).
 * The listener is asked for again whenever the target host's session comes back.
 */
export async function openReplicationTunnel(targetHost: SessionKeeper, port: number, source: HostAndPort, sourceRoute?: DataRoute): Promise<ReplicationTunnel> {
  const dial = (): Promise<Duplex> => (sourceRoute ? sourceRoute.dial(source) : dialDirect(source));
  const forward = await openRemoteForward(targetHost, port, dial);
  return { seenFromTarget: { host: '127.0.0.1', port: forward.port }, close: () => forward.close() };
}
