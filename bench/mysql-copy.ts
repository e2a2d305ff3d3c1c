/**
 * The MySQL mover against `mysqldump | mysql` and mydumper/myloader (where installed), on the same
 * generated data set, in one run: `tsx bench/mysql-copy.ts [orders]`. Prints one JSON line.
 * The mover runs twice, with its secondary indexes built during the load and after it
 * (`deferIndexes`), each into its own server. It runs in a child process (`copy` mode) so its peak
 * memory is its own. Threads: 2 for the mover and 2 each for mydumper and myloader. Every tool
 * copies the same schema: two secondary indexes on orders (customer, date), one on customers.
 */
import { execFileSync, execSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MysqlDataMover } from '@armada/data-mysql';
import { startMariaDbServer } from '@armada/testkit';
import { createConnection } from 'mysql2/promise';

if (process.argv[2] === 'copy') {
  const [sourcePort, targetPort, deferIndexes, database] = [Number(process.argv[3]), Number(process.argv[4]), process.argv[5] === 'true', process.argv[6] ?? 'shop'];
  const started = performance.now();
  const report = await new MysqlDataMover().copy({ host: '127.0.0.1', port: sourcePort, user: 'root', databases: [database] }, { host: '127.0.0.1', port: targetPort, user: 'root', databases: [database] }, { concurrency: 2, deferIndexes });
  console.log(JSON.stringify({ copyMs: Math.round(performance.now() - started), rows: report.items, peakRssMB: Math.round(process.resourceUsage().maxRSS / 1024) }));
  process.exit(0);
}

const orders = Number(process.argv[2] ?? 400_000);
const servers = await Promise.all([startMariaDbServer(), startMariaDbServer(), startMariaDbServer(), startMariaDbServer(), startMariaDbServer()]);
type Server = (typeof servers)[number];
const [source, moverTarget, deferredTarget, dumpTarget, mydumperTarget] = servers as [Server, Server, Server, Server, Server];
const hasMydumper = (() => {
  try {
    execFileSync('sh', ['-c', 'command -v mydumper && command -v myloader'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();
const time = (command: string) => {
  const started = performance.now();
  execSync(command, { stdio: ['ignore', 'ignore', 'inherit'], shell: '/bin/sh', maxBuffer: 1 << 30 });
  return Math.round(performance.now() - started);
};
try {
  const connection = await createConnection({ host: source.host, port: source.port, user: 'root', multipleStatements: true });
  await connection.query(`
    CREATE DATABASE shop CHARACTER SET utf8mb4;
    CREATE TABLE shop.customers (id INT PRIMARY KEY, name VARCHAR(100) NOT NULL, email VARCHAR(200) NULL, created DATETIME NOT NULL, KEY by_email (email)) ENGINE=InnoDB;
    CREATE TABLE shop.orders (id BIGINT PRIMARY KEY, customer_id INT NOT NULL, total DECIMAL(12,2) NOT NULL, details JSON NULL, placed DATETIME NOT NULL, KEY (customer_id), KEY by_placed (placed)) ENGINE=InnoDB;
    CREATE TABLE shop.events (happened DATETIME NOT NULL, message VARCHAR(255) NOT NULL) ENGINE=InnoDB;
  `);
  const batch = async (table: string, count: number, row: (index: number) => unknown[]) => {
    for (let start = 0; start < count; start += 5000) {
      const values: unknown[][] = [];
      for (let index = start; index < Math.min(count, start + 5000); index++) values.push(row(index));
      await connection.query(`INSERT INTO shop.${table} VALUES ?`, [values]);
    }
  };
  await batch('customers', 50_000, (index) => [index + 1, `Customer ${index} 🚀`, index % 3 ? `c${index}@example.com` : null, '2024-01-01 10:00:00']);
  // Dates spread over a year out of key order, as a real orders table's index sees them.
  const placed = (index: number) => new Date(Date.UTC(2024, 0, 1) + ((index * 7919) % 31_536_000) * 1000).toISOString().slice(0, 19).replace('T', ' ');
  await batch('orders', orders, (index) => [index + 1, (index % 50_000) + 1, `${index % 1000}.99`, JSON.stringify({ items: [index, 'ünïcode'], gift: index % 2 === 0 }), placed(index)]);
  await batch('events', 20_000, (index) => ['2024-03-01 00:00:00', `event ${index}`]);
  await connection.end();
  const rows = 50_000 + orders + 20_000;

  const moverRun = (target: Server, deferIndexes: boolean, database = 'shop') => {
    const child = execFileSync(process.execPath, [...process.execArgv, new URL(import.meta.url).pathname, 'copy', String(source.port), String(target.port), String(deferIndexes), database], { encoding: 'utf8' });
    return JSON.parse(child.trim().split('\n').at(-1) ?? '{}') as { copyMs: number; rows: number; peakRssMB: number };
  };
  const mover = moverRun(moverTarget, false);
  const deferred = moverRun(deferredTarget, true);

  const client = (server: { port: number }) => `--no-defaults -h 127.0.0.1 -P ${server.port} -u root`;
  const dumpMs = time(`mysqldump ${client(source)} --single-transaction --databases shop | mysql ${client(dumpTarget)}`);
  let mydumperMs: number | undefined;
  if (hasMydumper) {
    const directory = mkdtempSync(join(tmpdir(), 'armada-mydumper-'));
    mydumperMs =
      time(`mydumper -h 127.0.0.1 -P ${source.port} -u root -B shop -t 2 -o ${directory}`) + time(`myloader -h 127.0.0.1 -P ${mydumperTarget.port} -u root -B shop -t 2 -d ${directory}`);
    rmSync(directory, { recursive: true, force: true });
  }
  const shop = (server: Server, database = 'shop') => ({ host: server.host, port: server.port, user: 'root', databases: [database] });
  // Verify's cost next to the copy's, on the same data and machine (its default: 4 connections a side).
  const verifyStarted = performance.now();
  const verifiedDeferred = (await new MysqlDataMover().verify(shop(source), shop(deferredTarget))).ok;
  const verifyMs = Math.round(performance.now() - verifyStarted);
  const verified = verifiedDeferred && (await new MysqlDataMover().verify(shop(source), shop(moverTarget))).ok;

  // 64-bit sparse keys (Snowflake-style ids: a millisecond clock in the high bits), where chunks
  // cut by key range would be counted in the billions: the mover against mysqldump | mysql.
  const sparseRows = Math.max(1000, Math.round(orders / 2));
  const sparse = await createConnection({ host: source.host, port: source.port, user: 'root', multipleStatements: true });
  await sparse.query('CREATE DATABASE ids; CREATE TABLE ids.events (id BIGINT UNSIGNED PRIMARY KEY, kind VARCHAR(20) NOT NULL, payload VARCHAR(200) NOT NULL) ENGINE=InnoDB');
  for (let start = 0; start < sparseRows; start += 5000) {
    const values: unknown[][] = [];
    for (let index = start; index < Math.min(sparseRows, start + 5000); index++) values.push([String((BigInt(1_700_000_000_000 + index * 37) << 22n) | BigInt(index % 4096)), `kind ${index % 10}`, `payload ${index} ${'x'.repeat(60)}`]);
    await sparse.query('INSERT INTO ids.events VALUES ?', [values]);
  }
  await sparse.end();
  const sparseMover = moverRun(moverTarget, true, 'ids');
  const sparseDumpMs = time(`mysqldump ${client(source)} --single-transaction --databases ids | mysql ${client(dumpTarget)}`);
  const sparseVerified = (await new MysqlDataMover().verify(shop(source, 'ids'), shop(moverTarget, 'ids'))).ok;
  // The deferred copy must end with the same indexes as the source.
  const indexes = async (server: Server) => {
    const check = await createConnection({ host: server.host, port: server.port, user: 'root' });
    const [found] = await check.query("SELECT GROUP_CONCAT(CONCAT(TABLE_NAME, '.', INDEX_NAME) ORDER BY TABLE_NAME, INDEX_NAME) AS names FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = 'shop'");
    await check.end();
    return String((found as Array<{ names: string }>)[0]?.names);
  };
  const sameIndexes = (await indexes(deferredTarget)) === (await indexes(source)) && (await indexes(moverTarget)) === (await indexes(source));
  console.log(
    JSON.stringify({
      rows,
      moverRows: mover.rows,
      moverMs: mover.copyMs,
      moverPeakRssMB: mover.peakRssMB,
      deferredMs: deferred.copyMs,
      deferredPeakRssMB: deferred.peakRssMB,
      mysqldumpPipeMs: dumpMs,
      mydumperMyloaderMs: mydumperMs ?? null,
      moverVsMysqldump: Number((mover.copyMs / dumpMs).toFixed(2)),
      moverVsMydumper: mydumperMs ? Number((mover.copyMs / mydumperMs).toFixed(2)) : null,
      deferredVsMydumper: mydumperMs ? Number((deferred.copyMs / mydumperMs).toFixed(2)) : null,
      deferredVsMover: Number((deferred.copyMs / mover.copyMs).toFixed(2)),
      verified,
      verifyMs,
      verifyVsCopy: Number((verifyMs / deferred.copyMs).toFixed(2)),
      sameIndexes,
      sparseRows,
      sparseMoverMs: sparseMover.copyMs,
      sparsePeakRssMB: sparseMover.peakRssMB,
      sparseMysqldumpPipeMs: sparseDumpMs,
      sparseVsMysqldump: Number((sparseMover.copyMs / sparseDumpMs).toFixed(2)),
      sparseVerified,
    }),
  );
} finally {
  await Promise.all(servers.map((server) => server.stop()));
}
