/**
 * What the mover's tests share to judge a copy without the mover: mysqldump of a database (the
 * standard tool, in UTC, BLOBs in hex, every object kind), and statements run on a server.
 */
import { execFileSync } from 'node:child_process';
import type { MariaDbServer } from '@armada/testkit';
import { createConnection } from 'mysql2/promise';

export const TIME_ZONE = 'America/New_York';

/** mysqldump, the independent judge: UTC (its default), BLOBs in hex, routines, triggers and events. */
export const dump = (server: MariaDbServer, database: string) =>
  execFileSync(
    'mysqldump',
    ['--no-defaults', '-h', server.host, '-P', String(server.port), '-u', 'root', '--skip-dump-date', '--skip-comments', '--order-by-primary', '--hex-blob', '--routines', '--triggers', '--events', '--databases', database],
    { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 },
  );

export const connect = (server: MariaDbServer) =>
  createConnection({ host: server.host, port: server.port, user: 'root', multipleStatements: true, dateStrings: true, supportBigNumbers: true, bigNumberStrings: true });

/** Runs statements; returns the result of the last (or of each, for several). */
export async function sql(server: MariaDbServer, statements: string, values: unknown[] = []): Promise<unknown> {
  const connection = await connect(server);
  try {
    return (await connection.query(statements, values))[0];
  } finally {
    await connection.end();
  }
}

/** Rows of one SELECT, read in UTC (so TIMESTAMPs are instants, whatever the server's zone). */
export async function select(server: MariaDbServer, query: string, values: unknown[] = []): Promise<Array<Record<string, unknown>>> {
  const connection = await connect(server);
  try {
    await connection.query("SET time_zone = '+00:00'");
    return (await connection.query(query, values))[0] as Array<Record<string, unknown>>;
  } finally {
    await connection.end();
  }
}
