/**
 * Applying the story's "Armada" environment on the EC2 emulator with 50 ms of latency on every
 * call and a 2 s instance boot, against the critical-path lower bound for that latency.
 *
 * The bound is the longest chain of calls that any provider must make one after another, given
 * what each EC2 call needs from the one before:
 *   CreateVpc -> CreateSubnet -> RunInstances -> (boot) -> DescribeInstances says running.
 * (Security groups, the key pair, the gateway and route tables can all be made alongside; a
 * public IP can be asked for in RunInstances itself.) So: 4 calls x latency + boot.
 *
 * `tsx bench/aws-apply.ts [runs]` prints one JSON line.
 */
import { destroyEnvironment, executePlan, loadSpecFile, plan } from '@armada/core';
import { createAwsProvider } from '@armada/provider-aws';
import { startAwsEmulator } from '@armada/testkit';
import { fileURLToPath } from 'node:url';

const LATENCY_MS = 50;
const BOOT_MS = 2000;
const CRITICAL_CHAIN = ['CreateVpc', 'CreateSubnet', 'RunInstances', 'DescribeInstances'];
const boundMs = CRITICAL_CHAIN.length * LATENCY_MS + BOOT_MS;
const runs = Number(process.argv[2] ?? 3);

const specPath = fileURLToPath(new URL('../examples/environments/armada.yaml', import.meta.url));
const spec = { ...(await loadSpecFile(specPath)), provider: { id: 'aws', region: 'us-east-1' } };
const results: Array<{ applyMs: number; planMs: number; calls: number }> = [];

for (let run = 0; run < runs; run++) {
  const emulator = await startAwsEmulator({ bootMs: BOOT_MS, terminateMs: 100 });
  try {
    emulator.faults.configure({ latencyMs: LATENCY_MS });
    const provider = createAwsProvider({
      region: 'us-east-1',
      endpoint: emulator.endpoint,
      credentials: { accessKeyId: 'bench', secretAccessKey: 'bench' },
      pollIntervalMs: LATENCY_MS,
    });
    let started = performance.now();
    const planned = await plan({ spec, provider });
    const planMs = performance.now() - started;
    const before = emulator.calls();
    started = performance.now();
    const result = await executePlan(planned, { provider });
    const applyMs = performance.now() - started;
    if (result.status !== 'succeeded') throw new Error(`apply ${result.status}: ${result.failed[0]?.error.message}`);
    results.push({ applyMs: Math.round(applyMs), planMs: Math.round(planMs), calls: emulator.calls() - before });
    emulator.faults.configure({ latencyMs: 0 });
    await destroyEnvironment({ environment: spec.name, provider });
  } finally {
    await emulator.close();
  }
}
const sorted = [...results].sort((a, b) => a.applyMs - b.applyMs);
const median = sorted[Math.floor(sorted.length / 2)] as (typeof results)[number];
console.log(
  JSON.stringify({
    latencyMs: LATENCY_MS,
    bootMs: BOOT_MS,
    boundMs,
    applyMs: results.map((entry) => entry.applyMs),
    medianApplyMs: median.applyMs,
    ratio: Number((median.applyMs / boundMs).toFixed(3)),
    planMs: median.planMs,
    callsPerApply: median.calls,
  }),
);
