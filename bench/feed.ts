/**
 * Revocation feed benchmark (`npm run bench:feed`): how fast a task close reaches resource servers, and
 * what offline verification costs next to raw jose.
 *
 * 1. Propagation: Redis, the compiled broker, and N verifier processes (bench/feed/verifier-child.ts:
 *    the SDK's `createVerifier({feed: 'stream'})`). Per trial: open a task, exchange a token, every
 *    verifier accepts it, POST /v1/tasks/{id}/close, then time on the shared wall clock (see
 *    bench/feed/protocol.ts) until every verifier refuses it. Target: p99 < 50 ms; and no verifier
 *    may still accept 1 s after the close.
 * 2. Throughput: in this process, `verifier.verify(token, {audience})` against raw `jose.jwtVerify`
 *    with the same key and token, interleaved rounds. Target: >= 90%.
 *
 * Before each phase it waits (bounded) for the 1-minute load average to fall below --load-max, and
 * reports the load each phase ran under. Results: a table on stdout, bench/results/feed.json.
 *
 *   npm run bench:feed                         ~2 min on a quiet machine (plus load waits)
 *   npm run bench:feed -- --quick              smoke run (numbers not meaningful)
 *   options: --verifiers N (12)  --trials N (200)  --poll-ms N (20)  --delivery N (50)  --rounds N (36)  --ms N (500)
 *            --load-max X (1.5)  --load-wait S (60)  --tsx (broker and SDK from src/ through tsx)
 *
 * Everything binds to 127.0.0.1; every child process and temp dir is removed at the end, even on error.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { createAttestor } from './lib/attestation.js';
import { AUDIENCE, RS_CLIENT } from './lib/broker-config.js';
import { compileBroker } from './lib/build-broker.js';
import { Cleanup } from './lib/cleanup.js';
import { benchEnv, runBench } from './lib/setup.js';
import { CpuMonitor, waitForQuiet } from './lib/cpu-monitor.js';
import { NOISY_PCT } from './lib/load.js';
import { MayflyClient } from './lib/mayfly-client.js';
import { acquireRedis } from './lib/redis.js';
import { targetTable, writeJson } from './lib/report.js';
import { startMayfly } from './lib/servers.js';
import { deleteAll, storeKeys } from './lib/store-keys.js';
import { VerifierFleet } from './feed/fleet.js';
import { waitForLoad, type LoadGate } from './feed/load-gate.js';
import { measureDelivery, type DeliverySample } from './feed/delivery.js';
import { runPropagation } from './feed/propagation.js';
import {
  countsTable,
  deliveryTable,
  feedTargets,
  loadTable,
  propagationTable,
  summariseDelivery,
  summarisePropagation,
  throughputTable,
  type DeliverySummary,
} from './feed/report.js';
import { measureThroughput } from './feed/throughput.js';

type Sdk = typeof import('../src/sdk/index.js');

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const RESULTS = join(ROOT, 'bench', 'results');

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    tsx: { type: 'boolean', default: false },
    verifiers: { type: 'string' },
    trials: { type: 'string' },
    'poll-ms': { type: 'string' },
    delivery: { type: 'string' },
    rounds: { type: 'string' },
    ms: { type: 'string' },
    'load-max': { type: 'string' },
    'load-wait': { type: 'string' },
  },
});
const num = (v: string | undefined, dflt: number, min: number, max: number) => {
  const n = v === undefined ? dflt : Number(v);
  if (!Number.isFinite(n) || n < min || n > max) throw new Error(`bad numeric option: ${v} (${min}..${max})`);
  return n;
};
const VERIFIERS = Math.round(num(args.verifiers, args.quick ? 4 : 12, 1, 64));
const TRIALS = Math.round(num(args.trials, args.quick ? 20 : 200, 1, 100_000));
const WARMUP = args.quick ? 2 : 5;
const POLL_MS = Math.round(num(args['poll-ms'], 20, 0, 1000));
const DELIVERY = Math.round(num(args.delivery, args.quick ? 10 : 50, 0, 10_000));
const ROUNDS = Math.round(num(args.rounds, args.quick ? 3 : 36, 1, 1000));
const MS_EACH = Math.round(num(args.ms, args.quick ? 300 : 500, 100, 60_000));
const LOAD_MAX = num(args['load-max'], 1.5, 0.01, 1000);
const LOAD_WAIT_MS = num(args['load-wait'], 60, 0, 3600) * 1000;

const log = (msg: string) => process.stderr.write(`[bench:feed] ${msg}\n`);


async function main(cleanup: Cleanup): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'mayfly-bench-feed-'));
  cleanup.defer('temp dir', () => rmSync(dir, { recursive: true, force: true }));
  const loadBefore = loadavg()[0]!;
  const gates: LoadGate[] = [];

  // before any load of ours (compiling, starting processes): do not start on top of someone else's run
  gates.push(await waitForLoad('start (before compiling)', LOAD_MAX, LOAD_WAIT_MS, log));

  let entry = 'src/cli/main.ts';
  let sdkPath = join(ROOT, 'src', 'sdk', 'index.ts');
  if (!args.tsx) {
    log('compiling src/ (tsconfig.build.json): the broker and the verifiers run the emitted JS');
    const build = compileBroker(ROOT, cleanup);
    if (build.typeErrors) log('warning: src/ has type errors; benchmarking the emitted JS anyway');
    entry = build.entry;
    sdkPath = join(ROOT, dirname(dirname(entry)), 'sdk', 'index.js');
  }
  const sdkUrl = pathToFileURL(sdkPath).href;

  const redis = await acquireRedis(cleanup);
  log(`redis ${redis.version} at ${redis.url}${redis.owned ? ' (started by the bench)' : ' (REDIS_URL)'}`);
  const admin = new Redis(redis.url, { maxRetriesPerRequest: 1 });
  cleanup.defer('redis admin connection', () => void admin.disconnect());
  const keys = storeKeys(redis.owned ? 'benchfeed:' : `benchfeed:${randomBytes(4).toString('hex')}:`);
  if (!redis.owned) cleanup.defer('bench keys on REDIS_URL', async () => void (await deleteAll(admin, keys.prefix)));

  const jwksPath = join(dir, 'attest-jwks.json');
  const attestor = await createAttestor(jwksPath);
  const mayfly = await startMayfly({ root: ROOT, entry, dir, redisUrl: redis.url, prefix: keys.prefix, jwksPath });
  cleanup.defer(mayfly.child.name, () => mayfly.child.stop());
  log(`mayfly up at ${mayfly.baseUrl} (pid ${mayfly.child.pid})`);
  const mf = new MayflyClient(mayfly.baseUrl, await attestor.mint('orch'), await attestor.mint('agent'));
  const issuer = mayfly.baseUrl; // broker-config.ts: issuer = http://127.0.0.1:<port>

  // ---- phase 1: propagation to verifier processes
  log(`starting ${VERIFIERS} verifier processes (SDK from ${args.tsx ? 'src/ through tsx' : 'the compiled build'}, feed: 'stream', backstop poll ${POLL_MS} ms)`);
  const fleet = await VerifierFleet.start(
    ROOT,
    VERIFIERS,
    { sdkUrl, issuer, clientId: RS_CLIENT.id, clientSecret: RS_CLIENT.secret, audience: AUDIENCE, pollMs: POLL_MS },
    cleanup,
    log,
  );
  const clockBefore = await fleet.calibrate();
  fleet.useOffsets(clockBefore);

  const gateP = await waitForLoad('propagation', LOAD_MAX, LOAD_WAIT_MS, log);
  gates.push(gateP);
  log(`propagation: ${WARMUP} warm-up + ${TRIALS} trials, ${VERIFIERS} verifiers`);
  const pids: Record<string, number> = { bench: process.pid, broker: mayfly.child.pid, ...(redis.pid ? { redis: redis.pid } : {}) };
  fleet.children.forEach((c, i) => (pids[`verifier${i}`] = c.pid));
  const mon = new CpuMonitor(pids);
  const snap = mon.start();
  const trials = await runPropagation(mf, fleet, { trials: TRIALS, warmup: WARMUP, probeAfterMs: 1000, lateWaitMs: 5000, jitterMs: 40 }, log);
  const cpu = mon.stop(snap);
  gateP.atEnd = loadavg()[0]!;
  let delivery: DeliverySummary | undefined;
  let deliverySamples: DeliverySample[] = [];
  if (DELIVERY > 0) {
    const gateD = await waitForLoad('feed-only delivery (diagnostic)', LOAD_MAX, LOAD_WAIT_MS, log);
    gates.push(gateD);
    log(`diagnostic: ${DELIVERY} events appended straight to the stream, timed to each verifier`);
    deliverySamples = await measureDelivery(admin, `${keys.prefix}revocations`, fleet, DELIVERY, log);
    delivery = summariseDelivery(deliverySamples);
    gateD.atEnd = loadavg()[0]!;
  }
  const clockAfter = await fleet.calibrate();
  const verifierStatus = await fleet.statuses();
  await fleet.stop();
  const summary = summarisePropagation(trials, VERIFIERS);
  log(`  propagation p50 ${summary.propagation.p50.toFixed(2)} ms, p99 ${summary.propagation.p99.toFixed(2)} ms, max ${summary.propagation.max.toFixed(2)} ms`);

  // ---- phase 2: in-process verification throughput
  const gateT = await waitForLoad('throughput', LOAD_MAX, LOAD_WAIT_MS, log);
  gates.push(gateT);
  const sdk = (await import(sdkUrl)) as Sdk;
  const verifier = sdk.createVerifier({ issuer, clientId: RS_CLIENT.id, clientSecret: RS_CLIENT.secret, feed: 'stream' });
  cleanup.defer('in-process verifier', () => verifier.close());
  await verifier.start({ timeoutMs: 15_000 });
  const taskId = await mf.openTask();
  const token = await mf.exchange(taskId);
  log(`throughput: ${ROUNDS} interleaved rounds x 3 scenarios x ${MS_EACH} ms`);
  const quietPids = { bench: process.pid, broker: mayfly.child.pid, ...(redis.pid ? { redis: redis.pid } : {}) };
  const q = await waitForQuiet(quietPids, NOISY_PCT, 15_000);
  if (!q.quiet) log(`  other processes still use ${q.lastOther?.toFixed(0)}% of a core; measuring anyway (disturbed rounds are counted)`);
  const throughput = await measureThroughput({
    verifier,
    token,
    audience: AUDIENCE,
    issuer,
    jwksUrl: `${mayfly.baseUrl}/.well-known/jwks.json`,
    rounds: ROUNDS,
    msEach: MS_EACH,
    monitor: new CpuMonitor(quietPids),
    loadavg: () => loadavg()[0]!,
    log,
  });
  gateT.atEnd = loadavg()[0]!;
  const stillActive = await verifier.verify(token, { audience: AUDIENCE });
  if (!stillActive.ok) throw new Error(`the throughput token stopped verifying during the run: ${stillActive.code}`);
  verifier.close();
  await mf.close(taskId);

  const checks = feedTargets(summary, throughput);
  const env = {
    ...benchEnv(ROOT, redis.version),
    broker: args.tsx ? 'src/ through tsx' : 'tsc output (as deploy/Dockerfile runs it)',
    verifiers: VERIFIERS,
    trials: TRIALS,
    warmup: WARMUP,
    pollMs: POLL_MS,
    rounds: ROUNDS,
    msEach: MS_EACH,
    quick: args.quick,
    loadavgBefore: loadBefore,
    clock: 'performance.timeOrigin + performance.now() in every process, child offsets measured by IPC ping-pong and subtracted',
  };

  const out = process.stdout;
  out.write(`\nMayfly feed bench  ${env.date}  commit ${env.commit ?? '?'}${env.dirty ? ' + uncommitted src/ changes' : ''}  node ${env.node}  ${env.cpus} CPU (${env.cpuModel})  redis ${env.redis}\n`);
  out.write(`broker: ${env.broker}; ${VERIFIERS} verifier processes (SDK createVerifier, feed: 'stream'); broker, redis, verifiers and the bench share the machine\n\n`);
  out.write(loadTable(gates) + '\n\n');
  out.write(propagationTable(summary) + '\n');
  out.write('(all times on one wall clock; negative = before the close answered: the broker writes the event before it flips the task state)\n\n');
  out.write(countsTable(summary, { before: clockBefore, after: clockAfter }) + '\n');
  if (cpu) {
    const v = Object.entries(cpu.byPid).filter(([k]) => k.startsWith('verifier')).reduce((a, [, x]) => a + x, 0);
    out.write(
      `cpu during the propagation phase (% of one core): machine ${cpu.machine.toFixed(0)}, broker ${(cpu.byPid.broker ?? 0).toFixed(0)}, redis ${(cpu.byPid.redis ?? 0).toFixed(0)}, ` +
        `bench ${(cpu.byPid.bench ?? 0).toFixed(0)}, ${VERIFIERS} verifiers ${v.toFixed(0)}, other ${cpu.other.toFixed(0)}, steal ${cpu.steal.toFixed(0)}\n`,
    );
  }
  if (delivery) out.write('\n' + deliveryTable(delivery, VERIFIERS) + '\n');
  out.write('\n' + throughputTable(throughput) + '\n');
  out.write('(disturbed: other processes + steal used > 25% of a core during the round; every round is in bench/results/feed.json)\n\n');
  out.write(targetTable(checks) + '\n');

  writeJson(join(RESULTS, 'feed.json'), {
    env,
    load: gates,
    propagation: { summary, cpu, clock: { before: clockBefore, after: clockAfter }, verifierStatus, trials },
    delivery: delivery ? { summary: delivery, samples: deliverySamples } : null,
    throughput,
    targets: checks,
  });
  log('results written to bench/results/feed.json');
  return checks.some((c) => c.verdict === 'INVALID') ? 1 : 0;
}

await runBench('bench:feed', main);
