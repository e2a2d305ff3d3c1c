/** Connections to a Redis server, and what the copy and verify read of its keyspace. */
import { ValidationError, type DataEndpoint } from '@armada/core';
import { Redis } from 'ioredis';

export const where = (endpoint: DataEndpoint) => `${endpoint.host}:${endpoint.port}`;

/** A connected client; a wrong address or password is one clear error that never carries the password. */
export async function open(endpoint: DataEndpoint, role: 'source' | 'target'): Promise<Redis> {
  const client = new Redis({
    host: endpoint.host,
    port: endpoint.port,
    ...(endpoint.password ? { password: endpoint.password } : {}),
    ...(endpoint.user ? { username: endpoint.user } : {}),
    lazyConnect: true,
    maxRetriesPerRequest: 2,
    retryStrategy: () => null,
    enableOfflineQueue: false,
  });
  // The real cause (WRONGPASS, ECONNREFUSED) comes on the error event; connect() may only say "closed".
  let cause: Error | undefined;
  client.on('error', (error: Error) => {
    cause ??= error;
  });
  try {
    await client.connect();
    await client.ping();
    return client;
  } catch (error) {
    client.disconnect();
    const message = (cause ?? (error as Error)).message;
    const auth = /NOAUTH|WRONGPASS|invalid password|invalid username/i.test(message);
    throw new ValidationError(`Cannot reach the ${role} Redis at ${where(endpoint)}: ${auth ? 'authentication failed' : message}.`, {
      issues: [{ path: role, message: auth ? 'the password (or user) was refused' : message, fix: auth ? 'check the password of the endpoint' : 'check host and port, and that the server is running' }],
    });
  }
}

/** Databases that hold keys, from INFO keyspace (`db3:keys=10,...`), with their key counts. */
export async function keyspace(client: Redis): Promise<Map<number, number>> {
  const info = await client.info('keyspace');
  return new Map([...info.matchAll(/^db(\d+):keys=(\d+)/gm)].map((match) => [Number(match[1]), Number(match[2])]));
}
