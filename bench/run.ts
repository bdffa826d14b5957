/**
 * Mayfly benchmark suite (`npm run bench`). Starts Redis (unless REDIS_URL), then each server under test
 * in its own process, drives it with autocannon from this process, and prints the results against the
 * project's targets; results also go to bench/results/latest.json (git-ignored).
 *
 *   npm run bench                      full run (~4-5 min on a quiet machine)
 *   npm run bench -- --quick           short smoke run (numbers not meaningful)
 *   npm run bench -- --profile         also CPU-profile the broker under exchange load
 *   npm run bench -- --tsx             run the broker from src/ through tsx instead of compiled JS
 *   options: --duration S  --rounds N  --connections N  --tokens N  --close-runs N
 *
 * Everything binds to 127.0.0.1; every child process and temp dir is removed at the end, even on error.
 */
import { copyFileSync, mkdirSync } from 'node:fs';

import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Cleanup } from './lib/cleanup.js';
import { benchEnv, intOption, loadOptions, prepareBench, runBench, started } from './lib/setup.js';
import { measureClose } from './lib/close-latency.js';
import { cryptoBaselines } from './lib/crypto-baselines.js';
import { NOISY_PCT, type LoadOptions } from './lib/load.js';
import { waitForQuiet } from './lib/cpu-monitor.js';
import { MayflyClient, type HttpRequestSpec } from './lib/mayfly-client.js';
import { profileExchange, type ProfileRun } from './lib/profile-exchange.js';
import { closeTable, loadTable, memoryTable, opsTable, profileTables, targetTable, writeJson } from './lib/report.js';
import { runRounds, type ScenarioDef } from './lib/rounds.js';
import { startBareHono, startMayfly, startOidcProvider } from './lib/servers.js';
import { checkTargets } from './lib/targets.js';
import { measureTokenMemory } from './lib/token-memory.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const RESULTS = join(ROOT, 'bench', 'results');

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    profile: { type: 'boolean', default: false },
    tsx: { type: 'boolean', default: false },
    duration: { type: 'string' },
    rounds: { type: 'string' },
    connections: { type: 'string' },
    tokens: { type: 'string' },
    'close-runs': { type: 'string' },
  },
});
const LOAD: LoadOptions = loadOptions(args);
const ROUNDS = intOption(args.rounds, args.quick ? 1 : 2, 10);
const TOKENS = intOption(args.tokens, args.quick ? 2000 : 10_000, 200_000);
const CLOSE_RUNS = intOption(args['close-runs'], args.quick ? 2 : 5, 20);
const BASELINE_MS = args.quick ? 500 : 2000;

const log = (msg: string) => process.stderr.write(`[bench] ${msg}\n`);


async function main(cleanup: Cleanup): Promise<number> {
  const { dir, loadBefore, entry, redis, admin, keys, jwksPath, orchJwt, agentJwt } = await prepareBench(cleanup, { root: ROOT, tmpPrefix: 'mayfly-bench-', tsx: Boolean(args.tsx), log });

  log(`in-process crypto baselines (${BASELINE_MS} ms each)`);
  const baselines = await cryptoBaselines(BASELINE_MS, () => waitForQuiet({ self: process.pid, ...(redis.pid ? { redis: redis.pid } : {}) }, NOISY_PCT, 15_000));

  // every server up at once (idle ones cost nothing), so rounds can interleave the scenarios
  const bare = await started(startBareHono(ROOT), cleanup, log);
  // the shapes src/http/app.ts installs now (--fixed-middleware); --mayfly-middleware is the old ones
  const bareMw = await started(startBareHono(ROOT, ['--fixed-middleware']), cleanup, log);
  const oidc = await started(startOidcProvider(ROOT), cleanup, log);
  const mayfly = await started(startMayfly({ root: ROOT, entry, dir, redisUrl: redis.url, prefix: keys.prefix, jwksPath }), cleanup, log);
  const client = new MayflyClient(mayfly.baseUrl, orchJwt, agentJwt);

  // memory first, while the audit stream is far below its MAXLEN cap (trimming would hide its growth)
  log(`memory per token: minting ${TOKENS} tokens into a fresh task`);
  const memory = await measureTokenMemory(client, admin, keys, TOKENS, LOAD.connections);

  const taskId = await client.openTask();
  // a fresh token per round (rounds may outlast a 5-minute token), checked active before and after
  const introspectRound = async () => {
    const token = await client.exchange(taskId);
    const active = async (when: string) => {
      if ((await client.introspect(token)).active !== true) throw new Error(`introspection token not active ${when} the round`);
    };
    await active('before');
    return { request: client.introspectRequest(token), check: () => active('after') };
  };

  const S = {
    bare: 'bare hono POST',
    bareMw: 'bare hono POST + app.ts middleware (reference)',
    oidc: 'oidc-provider client_credentials (ES256 JWT)',
    exchange: 'mayfly token exchange',
    introspect: 'mayfly introspection (active token)',
  };
  const fixed = (request: HttpRequestSpec) => async () => ({ request });
  const defs: ScenarioDef[] = [
    { name: S.bare, baseUrl: bare.baseUrl, serverPid: bare.child.pid, prepare: fixed(bare.request) },
    { name: S.bareMw, baseUrl: bareMw.baseUrl, serverPid: bareMw.child.pid, prepare: fixed(bareMw.request) },
    { name: S.oidc, baseUrl: oidc.baseUrl, serverPid: oidc.child.pid, prepare: fixed(oidc.request) },
    { name: S.exchange, baseUrl: mayfly.baseUrl, serverPid: mayfly.child.pid, prepare: fixed(client.exchangeRequest(taskId)) },
    { name: S.introspect, baseUrl: mayfly.baseUrl, serverPid: mayfly.child.pid, prepare: introspectRound },
  ];
  const scenarios = await runRounds(defs, ROUNDS, LOAD, redis.pid, log);
  const pick = (name: string) => scenarios.find((s) => s.name === name)!.best;

  log(`close latency: ${CLOSE_RUNS} fresh tasks with ${TOKENS} tokens each`);
  const quietPids = { loadgen: process.pid, server: mayfly.child.pid, ...(redis.pid ? { redis: redis.pid } : {}) };
  const close = await measureClose(client, admin, {
    tokens: TOKENS,
    runs: CLOSE_RUNS,
    connections: LOAD.connections,
    keys,
    canSlowlog: redis.owned,
    beforeTiming: () => waitForQuiet(quietPids, NOISY_PCT, 15_000),
  });
  for (const t of [bare, bareMw, oidc, mayfly]) await t.child.stop();

  let profile: ProfileRun | undefined;
  if (args.profile) {
    log('CPU profile of the broker under exchange load (separate broker process)');
    profile = await profileExchange({ root: ROOT, entry, dir, redisUrl: redis.url, prefix: keys.prefix, jwksPath, orchJwt, agentJwt, load: LOAD }, cleanup);
    mkdirSync(RESULTS, { recursive: true });
    copyFileSync(profile.file, join(RESULTS, 'mayfly-exchange.cpuprofile'));
  }

  const checks = checkTargets({ bare: pick(S.bare), oidc: pick(S.oidc), exchange: pick(S.exchange), introspect: pick(S.introspect), close, memory });
  const env = {
    ...benchEnv(ROOT, redis.version),
    load: LOAD,
    rounds: ROUNDS,
    tokens: TOKENS,
    closeRuns: CLOSE_RUNS,
    quick: args.quick,
    broker: args.tsx ? 'src/ through tsx' : 'tsc output (as deploy/Dockerfile runs it)',
    loadavgBefore: loadBefore,
  };

  const out = process.stdout;
  out.write(`\nMayfly bench  ${env.date}  commit ${env.commit ?? '?'}${env.dirty ? ' + uncommitted src/ changes' : ''}  node ${env.node}  ${env.cpus} CPU (${env.cpuModel})  redis ${env.redis}\n`);
  out.write(`broker: ${env.broker}\n`);
  out.write(
    `autocannon: ${LOAD.connections} connections, pipelining ${LOAD.pipelining}, ${LOAD.warmupS}s warm-up + ${LOAD.durationS}s, ` +
      `${ROUNDS} interleaved round(s), best shown; load generator, server and redis share the machine (1-min load avg before: ${loadBefore.toFixed(2)})\n\n`,
  );
  out.write(loadTable(scenarios) + '\n');
  out.write('(* = round disturbed: other processes + steal used > 25% of a core; cpu columns in % of one core, for the round shown)\n\n');
  out.write(opsTable(baselines) + '\n\n');
  out.write(closeTable(close) + '\n\n');
  out.write(memoryTable(memory) + '\n\n');
  out.write(targetTable(checks) + '\n');
  if (profile) out.write('\n' + profileTables(profile) + `\n(full profile: bench/results/mayfly-exchange.cpuprofile)\n`);

  const invalid = scenarios.filter((s) => !s.best.valid);
  if (invalid.length) out.write(`\nINVALID: ${invalid.map((s) => s.name).join(', ')} had non-2xx answers, errors or timeouts\n`);

  writeJson(join(RESULTS, 'latest.json'), { env, scenarios, baselines, close, memory, targets: checks, ...(profile ? { profile: { load: profile.load, summary: profile.summary } } : {}) });
  log('results written to bench/results/latest.json');
  return invalid.length || checks.some((c) => c.verdict === 'INVALID') ? 1 : 0;
}

await runBench('bench', main);
