/**
 * `pnpm bench`: every benchmark, each phase in its own process, printed side by side. Timings are
 * for comparing changes on one machine, not absolute truths: run it before and after.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));
const resources = Number(process.env.ARMADA_BENCH_RESOURCES ?? 10_000);

function runPhase(script: string, ...args: string[]): Record<string, unknown> {
  const output = execFileSync(process.execPath, ['--import', 'tsx', '--conditions=source', here(script), ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  return JSON.parse(output.trim().split('\n').at(-1) ?? '{}');
}

console.log(`Planner and executor, ${resources} resources on the in-memory provider (instant boots):`);
const planned = runPhase('./plan-apply.ts', 'plan', String(resources));
const applied = runPhase('./plan-apply.ts', 'apply', String(resources));
const subnets = runPhase('./plan-apply.ts', 'subnets', '40000');
const rows = [
  ['plan (empty cloud)', `${planned.planSeconds} s`, `${planned.peakRssMB} MB`, 'target < 1 s, < 300 MB'],
  ['apply (plan + execute)', `${applied.applySeconds} s`, `${applied.peakRssMB} MB`, 'peak of the apply process'],
  ['re-plan (all discovered, empty)', `${applied.replanSeconds} s`, '', ''],
  ['destroy', `${applied.destroySeconds} s`, '', ''],
  ['40,000 subnets: check (parse)', `${subnets.parseSeconds} s`, '', 'target < 2 s (integrity checks)'],
  ['40,000 subnets: plan', `${subnets.planSeconds} s`, `${subnets.peakRssMB} MB`, ''],
];
for (const row of rows) console.log(`  ${row[0]?.padEnd(34)} ${row[1]?.padStart(9)} ${row[2]?.padStart(8)}   ${row[3]}`);

console.log('\nAWS provider on the EC2 emulator: the Armada environment, 50 ms per call, 2 s instance boot:');
const aws = runPhase('./aws-apply.ts', '5');
console.log(`  apply (median of 5)                ${String(aws.medianApplyMs).padStart(7)} ms   runs: ${String(aws.applyMs)}`);
console.log(`  critical-path lower bound          ${String(aws.boundMs).padStart(7)} ms   (CreateVpc -> CreateSubnet -> RunInstances -> boot -> DescribeInstances)`);
console.log(`  ratio                              ${String(aws.ratio).padStart(7)}      target <= 1.15; ${aws.callsPerApply} API calls per apply`);

console.log('\nRedis mover against REPLICAOF full sync, same generated data set (300,000 keys, one 200,000-field hash), medians of 5 paired rounds:');
const redis = runPhase('./redis-copy.ts', '300000');
console.log(`  REPLICAOF full sync                ${String(redis.replicaofFullSyncMs).padStart(7)} ms   (repl-diskless-sync-delay 0)`);
console.log(`  mover copy (${String(redis.copyStrategy).padEnd(4)} strategy)         ${String(redis.copyMs).padStart(7)} ms   peak ${redis.copyPeakRssMB} MB (its own process); verify ${redis.verifyMs} ms, ${redis.verified ? 'identical' : 'DIFFERENT'}`);
console.log(`  mover copy (scan strategy)         ${String(redis.scanCopyMs).padStart(7)} ms   peak ${redis.scanPeakRssMB} MB; ${redis.scanVerified ? 'identical' : 'DIFFERENT'}`);
console.log(`  redis-cli --scan + MIGRATE         ${String(redis.redisCliMigrateMs).padStart(7)} ms`);
console.log(`  SCAN + DUMP | redis-cli --pipe     ${String(redis.redisCliPipeMs).padStart(7)} ms   ratio to REPLICAOF ${redis.redisCliPipeRatio}`);
console.log(`  rdb / REPLICAOF                    ${String(redis.rdbRatio ?? '-').padStart(7)}      target <= 1.2`);
console.log(`  verify / copy                      ${String(redis.verifyRatio).padStart(7)}      target <= 1 (source read from its snapshot: ${redis.verifyFromSnapshot ? 'yes' : 'no'}); live verify ${redis.verifyLiveMs} ms, ${redis.verifyLiveRatio}x`);
console.log(`  scan / REPLICAOF                   ${String(redis.scanRatio).padStart(7)}      target <= 3; scan / redis-cli --pipe ${redis.scanRatioToRedisCliPipe}, scan / MIGRATE ${redis.scanRatioToRedisCli}`);

console.log('\nMySQL mover against mysqldump | mysql and mydumper/myloader (2 threads each), same generated data (470,000 rows):');
const mysql = runPhase('./mysql-copy.ts', '400000');
console.log(`  mover copy (2 workers)             ${String(mysql.moverMs).padStart(7)} ms   peak ${mysql.moverPeakRssMB} MB (its own process)`);
console.log(`  mysqldump | mysql                  ${String(mysql.mysqldumpPipeMs).padStart(7)} ms   ratio ${mysql.moverVsMysqldump}`);
console.log(`  mydumper + myloader                ${String(mysql.mydumperMyloaderMs ?? 'not installed').padStart(7)} ms   ratio ${mysql.moverVsMydumper ?? '-'} (target < 1)`);
console.log(`  mover copy, keys after the load    ${String(mysql.deferredMs).padStart(7)} ms   peak ${mysql.deferredPeakRssMB} MB; ratio to mydumper ${mysql.deferredVsMydumper ?? '-'}`);
console.log(`  verify (of that copy)              ${String(mysql.verifyMs).padStart(7)} ms   ratio to the copy ${mysql.verifyVsCopy} (target <= 1)`);
console.log(`  ${String(mysql.sparseRows)} rows with 64-bit sparse ids: mover ${mysql.sparseMoverMs} ms (peak ${mysql.sparsePeakRssMB} MB), mysqldump | mysql ${mysql.sparseMysqldumpPipeMs} ms, ratio ${mysql.sparseVsMysqldump}; ${mysql.sparseVerified ? 'identical' : 'DIFFERENT'}`);

const failures: string[] = [];
if (mysql.moverVsMydumper !== null && Number(mysql.moverVsMydumper) >= 1) failures.push(`MySQL copy at ${mysql.moverVsMydumper}x mydumper/myloader (target: faster)`);
if (Number(mysql.moverPeakRssMB) >= 300) failures.push(`MySQL copy peaked at ${mysql.moverPeakRssMB} MB (target < 300 MB)`);
if (mysql.verified !== true) failures.push('the MySQL copy did not verify');
if (Number(mysql.moverVsMysqldump) >= 1) failures.push(`MySQL copy at ${mysql.moverVsMysqldump}x mysqldump | mysql (target: faster)`);
if (Number(mysql.verifyVsCopy) > 1) failures.push(`MySQL verify at ${mysql.verifyVsCopy}x its copy (target: at most the copy)`);
if (Number(mysql.sparsePeakRssMB) >= 300) failures.push(`MySQL copy of sparse ids peaked at ${mysql.sparsePeakRssMB} MB (target < 300 MB)`);
if (Number(mysql.sparseVsMysqldump) >= 1) failures.push(`MySQL copy of sparse ids at ${mysql.sparseVsMysqldump}x mysqldump | mysql (target: faster)`);
if (mysql.sparseVerified !== true) failures.push('the MySQL copy of sparse ids did not verify');
if (redis.copyStrategy !== 'rdb') failures.push(`the Redis copy took strategy ${redis.copyStrategy}, not rdb`);
if (Number(redis.rdbRatio ?? redis.ratio) > 1.2) failures.push(`Redis rdb copy at ${redis.rdbRatio ?? redis.ratio}x the REPLICAOF full sync (target <= 1.2x)`);
if (Number(redis.scanRatio) > 3) failures.push(`Redis scan copy at ${redis.scanRatio}x the REPLICAOF full sync (target <= 3x)`);
if (redis.scanVerified !== true) failures.push('the Redis scan copy did not verify');
if (Number(redis.verifyRatio) > 1) failures.push(`Redis verify at ${redis.verifyRatio}x its copy (target: at most the copy)`);
if (Number(redis.copyPeakRssMB) >= 300) failures.push(`Redis copy peaked at ${redis.copyPeakRssMB} MB (target < 300 MB)`);
if (redis.verified !== true) failures.push('the Redis copy did not verify');
if (Number(aws.ratio) > 1.15) failures.push(`AWS apply at ${aws.ratio}x the critical path (target <= 1.15x)`);
if (Number(planned.planSeconds) >= 1) failures.push(`plan took ${planned.planSeconds} s (target < 1 s)`);
if (Number(subnets.parseSeconds) >= 2) failures.push(`checking 40,000 subnets took ${subnets.parseSeconds} s (target < 2 s)`);
if (Number(planned.peakRssMB) >= 300) failures.push(`plan peaked at ${planned.peakRssMB} MB (target < 300 MB)`);
if (failures.length > 0) {
  console.log(`Targets missed: ${failures.join('; ')}`);
  process.exitCode = 1;
}
