/**
 * Certificate benchmark (`npm run bench:certs`): X509-SVIDs issued per second over HTTP from P-256 CSRs
 * (POST /v1/certificates, Bearer agent attestation, JSON {task_id, csr}) by the compiled broker on a
 * real Redis, next to CloudFlare's cfssl (`cfssl serve`, POST /api/v1/cfssl/sign) with a P-256 CA in
 * the same run, both driven by autocannon from this process; then GET /v1/ca/crl with N revoked
 * serials (first fetch after the close, which rebuilds it, and cached fetches). Prints the results
 * against the targets; also writes bench/results/certs.json (git-ignored).
 *
 * Two request mixes for each server:
 *   pool  N distinct CSRs (distinct keys) split between the connections, each cycling through its share: many agents, each
 *         new to the broker (N exceeds its CSR cache, so every request pays the full CSR check)
 *   one   the same CSR every time: one agent renewing with the same key
 * Each scenario first runs once unmeasured (8 s: JIT, heap growth, caches), then 3 interleaved rounds,
 * the best undisturbed one shown: the same for cfssl and Mayfly.
 * The broker runs with `workers` = the CPU count (node:cluster), as a deployment on this machine would;
 * --workers 1 measures one process.
 * Every answer is checked by the load generator (Mayfly: a PEM certificate in the JSON; cfssl:
 * success and a PEM certificate); one sample of each is fully verified first (CA signature, the CSR's
 * key, client+server auth, lifetime). Any non-2xx, rejected body, error or timeout invalidates a run.
 *
 *   npm run bench:certs                    full run (~7 min on a quiet machine, plus a cfssl install)
 *   npm run bench:certs -- --quick         short smoke run (numbers not meaningful)
 *   npm run bench:certs -- --profile       also CPU-profile the broker under the pool load, and CRL rebuilds
 *   npm run bench:certs -- --tsx           run the broker from src/ through tsx instead of compiled JS
 *   options: --duration S  --rounds N  --connections N  --pool N  --crl-certs N  --workers N  --no-cfssl
 *
 * Everything binds to 127.0.0.1; every child process and temp dir is removed at the end, even on error.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';

import { availableParallelism } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Cleanup } from './lib/cleanup.js';
import { benchEnv, intOption, loadOptions, prepareBench, runBench, started } from './lib/setup.js';
import { waitForQuiet } from './lib/cpu-monitor.js';
import { NOISY_PCT, type LoadOptions } from './lib/load.js';
import { MayflyClient } from './lib/mayfly-client.js';
import { profileExchange, type ProfileRun } from './lib/profile-exchange.js';
import { loadTable, opsTable, profileTables, targetTable, writeJson } from './lib/report.js';
import { runRounds, type ScenarioDef } from './lib/rounds.js';
import { startMayfly } from './lib/servers.js';
import { certBaselines } from './certs/baselines.js';
import { checkCfsslIssues, cfsslSignRequest, ensureCfssl, startCfssl, writeCfsslFiles, CFSSL_BACKDATE, CFSSL_EXPIRY, type CfsslBinary, type CfsslServer } from './certs/cfssl.js';
import { measureCrl, type CrlReport } from './certs/crl.js';
import { makeCsrPool, makeP256Csr } from './certs/csr.js';
import { certificateRequest, checkMayflyIssues, type IssuedCheck } from './certs/mayfly-certs.js';
import { profileCrl, type CrlProfile } from './certs/profile-crl.js';
import { checkCertTargets, crlProfileTables, crlTable, issuedTable } from './certs/report.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const RESULTS = join(ROOT, 'bench', 'results');
const OPERATOR_TOKEN = 'admin-token'; // bench/lib/broker-config.ts

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    profile: { type: 'boolean', default: false },
    tsx: { type: 'boolean', default: false },
    'no-cfssl': { type: 'boolean', default: false },
    duration: { type: 'string' },
    rounds: { type: 'string' },
    connections: { type: 'string' },
    pool: { type: 'string' },
    'crl-certs': { type: 'string' },
    workers: { type: 'string' },
  },
});
const LOAD: LoadOptions = loadOptions(args);
const ROUNDS = intOption(args.rounds, args.quick ? 1 : 3, 10);
// more distinct CSRs than the broker's CSR cache holds (src/issue/csr-cache.ts, 4,096), split between the connections:
// every request in the pool mix is a key the broker has not just seen, so each pays the full CSR check
const CSR_CACHE_ENTRIES = 4096;
const POOL = intOption(args.pool, args.quick ? 5000 : 20_000, 200_000);
const WORKERS = intOption(args.workers, availableParallelism(), 64);
const CRL_CERTS = intOption(args['crl-certs'], args.quick ? 2000 : 10_000, 200_000);
const CRL_CACHED = args.quick ? 20 : 50;
const CRL_REBUILDS = args.quick ? 2 : 5;
const CRL_PROFILE_REBUILDS = args.quick ? 5 : 20;
const BASELINE_MS = args.quick ? 500 : 1500;

const log = (msg: string) => process.stderr.write(`[bench:certs] ${msg}\n`);


/** `openssl req -verify` on one generated CSR: the bench's requests are what OpenSSL itself accepts. */
function opensslChecksCsr(pem: string, dir: string): void {
  const f = join(dir, 'sample.csr');
  writeFileSync(f, pem);
  const r = spawnSync('openssl', ['req', '-in', f, '-noout', '-verify', '-text'], { encoding: 'utf8' });
  const out = `${r.stdout}${r.stderr}`;
  if (r.status !== 0 || !/verify OK/i.test(out) || !/prime256v1|P-256/.test(out)) throw new Error(`openssl does not accept the generated CSR:\n${out}`);
}

async function main(cleanup: Cleanup): Promise<number> {
  const { dir, loadBefore, entry, redis, admin, keys, jwksPath, orchJwt, agentJwt } = await prepareBench(cleanup, { root: ROOT, tmpPrefix: 'mayfly-bench-certs-', tsx: Boolean(args.tsx), log });

  log(`generating ${POOL} P-256 CSRs (+1 for the renewing agent)`);
  const pool = makeCsrPool(POOL);
  const single = makeP256Csr('bench-agent-renewing');
  opensslChecksCsr(pool[0]!.pem, dir);

  const cfsslBin: CfsslBinary = args['no-cfssl'] ? { path: null, reason: 'skipped (--no-cfssl)' } : ensureCfssl(log);
  if (cfsslBin.path !== null) log(`cfssl at ${cfsslBin.path}${cfsslBin.installedNow ? ' (installed now from Debian golang-cfssl)' : ''}: ${cfsslBin.version}`);
  else log(`NO cfssl BASELINE: ${cfsslBin.reason}`);

  const quietSelf = () => waitForQuiet({ self: process.pid, ...(redis.pid ? { redis: redis.pid } : {}) }, NOISY_PCT, 15_000);
  log(`in-process baselines (${BASELINE_MS} ms each)`);
  const baselines = await certBaselines(pool, CRL_CERTS, BASELINE_MS, quietSelf);

  const mayfly = await started(startMayfly({ root: ROOT, entry, dir, redisUrl: redis.url, prefix: keys.prefix, jwksPath, certificates: true, workers: WORKERS }), cleanup, log);
  const client = new MayflyClient(mayfly.baseUrl, orchJwt, agentJwt);
  const samples: { who: string; check: IssuedCheck }[] = [{ who: 'mayfly', check: await checkMayflyIssues(mayfly.baseUrl, agentJwt, await client.openTask(), pool[0]!) }];

  let cfssl: CfsslServer | undefined;
  let cfsslMissing: string | null = cfsslBin.path === null ? cfsslBin.reason : null;
  if (cfsslBin.path !== null) {
    try {
      const files = writeCfsslFiles(dir);
      cfssl = await started(startCfssl(ROOT, cfsslBin.path, files), cleanup, log);
      samples.push({ who: 'cfssl', check: await checkCfsslIssues(cfssl, pool[0]!, readFileSync(files.caPem, 'utf8')) });
    } catch (e) {
      cfsslMissing = `cfssl could not be set up: ${(e as Error).message.split('\n')[0]}`;
      log(`NO cfssl BASELINE: ${(e as Error).message}`);
      await cfssl?.child.stop();
      cfssl = undefined;
    }
  }

  const S = {
    mayflyPool: `mayfly POST /v1/certificates, pool of ${POOL} CSRs`,
    mayflyOne: 'mayfly POST /v1/certificates, one CSR reused',
    cfsslPool: `cfssl /api/v1/cfssl/sign, pool of ${POOL} CSRs`,
    cfsslOne: 'cfssl /api/v1/cfssl/sign, one CSR reused',
  };
  // a fresh task per round, as agents get certificates for tasks that come and go
  const mayflyDef = (name: string, csrs: typeof pool): ScenarioDef => ({
    name,
    baseUrl: mayfly.baseUrl,
    serverPid: mayfly.child.pid,
    prepare: async () => ({ request: certificateRequest(agentJwt, await client.openTask(), csrs) }),
  });
  const defs: ScenarioDef[] = [mayflyDef(S.mayflyPool, pool)];
  if (cfssl) defs.push({ name: S.cfsslPool, baseUrl: cfssl.baseUrl, serverPid: cfssl.child.pid, prepare: async () => ({ request: cfsslSignRequest(pool) }) });
  defs.push(mayflyDef(S.mayflyOne, [single]));
  if (cfssl) defs.push({ name: S.cfsslOne, baseUrl: cfssl.baseUrl, serverPid: cfssl.child.pid, prepare: async () => ({ request: cfsslSignRequest([single]) }) });
  const scenarios = await runRounds(defs, ROUNDS, LOAD, redis.pid, log, { preWarmS: args.quick ? 1 : 8 });
  const pick = (name: string) => scenarios.find((s) => s.name === name)?.best ?? null;
  await cfssl?.child.stop();

  log(`CRL: ${CRL_CERTS} certificates into one task, close it, then GET /v1/ca/crl`);
  let crl: CrlReport | null = null;
  let crlError: string | null = null;
  let replica: Awaited<ReturnType<typeof startMayfly>> | undefined;
  try {
    // a second broker process on the same store and CA, making none of the revocations: where the
    // whole rebuild after a close is timed (the closing process starts its own in the background)
    replica = await started(startMayfly({ root: ROOT, entry, dir, redisUrl: redis.url, prefix: keys.prefix, jwksPath, certificates: true, workers: 1 }), cleanup, log);
    const quietPids = { loadgen: process.pid, server: mayfly.child.pid, replica: replica.child.pid, ...(redis.pid ? { redis: redis.pid } : {}) };
    crl = await measureCrl(client, admin, {
      replicaBase: replica.baseUrl,
      certs: CRL_CERTS,
      connections: LOAD.connections,
      cachedFetches: CRL_CACHED,
      rebuilds: CRL_REBUILDS,
      agentJwt,
      orchJwt,
      operatorToken: OPERATOR_TOKEN,
      csrs: pool,
      keys,
      canSlowlog: redis.owned,
      dir,
      beforeTiming: () => waitForQuiet(quietPids, NOISY_PCT, 15_000),
    });
  } catch (e) {
    crlError = (e as Error).message.split('\n')[0] ?? 'failed';
    log(`CRL measurement failed: ${(e as Error).stack ?? String(e)}`);
  }
  await replica?.child.stop();
  await mayfly.child.stop();

  let profile: ProfileRun | undefined;
  let crlProfile: CrlProfile | undefined;
  if (args.profile) {
    log('CPU profile of the broker under the certificate load, pool of CSRs (separate broker process)');
    profile = await profileExchange(
      {
        root: ROOT,
        entry,
        dir,
        redisUrl: redis.url,
        prefix: keys.prefix,
        jwksPath,
        orchJwt,
        agentJwt,
        load: LOAD,
        certificates: true,
        scenario: { name: `mayfly certificates, pool of ${POOL} CSRs (profiled)`, slug: 'certs', request: (_c, taskId) => certificateRequest(agentJwt, taskId, pool) },
      },
      cleanup,
    );
    mkdirSync(RESULTS, { recursive: true });
    copyFileSync(profile.file, join(RESULTS, 'mayfly-certs.cpuprofile'));
    log(`CPU profile of ${CRL_PROFILE_REBUILDS} CRL rebuilds with ${CRL_CERTS} serials (separate broker process and key prefix)`);
    crlProfile = await profileCrl(
      { root: ROOT, entry, dir, redisUrl: redis.url, prefix: `${keys.prefix}crlprof:`, jwksPath, orchJwt, agentJwt, csrs: pool, certs: CRL_CERTS, rebuilds: CRL_PROFILE_REBUILDS, connections: LOAD.connections },
      admin,
      cleanup,
    );
    copyFileSync(crlProfile.file, join(RESULTS, 'mayfly-crl.cpuprofile'));
  }

  const mayflyPool = pick(S.mayflyPool)!;
  const mayflyOne = pick(S.mayflyOne)!;
  const checks = checkCertTargets({ mayflyPool, mayflyOne, cfsslPool: pick(S.cfsslPool), cfsslOne: pick(S.cfsslOne), cfsslMissing, connections: LOAD.connections, crl, crlError });
  const opensslVersion = spawnSync('openssl', ['version'], { encoding: 'utf8' }).stdout.trim();
  const env = {
    ...benchEnv(ROOT, redis.version),
    nodeOpenssl: process.versions.openssl,
    cfssl: cfsslBin.path !== null ? { path: cfsslBin.path, version: cfsslBin.version, installedNow: cfsslBin.installedNow, config: `default profile: digital signature, server auth, client auth; expiry ${CFSSL_EXPIRY} from a notBefore backdated ${CFSSL_BACKDATE}; P-256 CA (openssl)` } : { missing: cfsslMissing },
    openssl: opensslVersion,
    load: LOAD,
    rounds: ROUNDS,
    pool: POOL,
    workers: WORKERS,
    crlCerts: CRL_CERTS,
    quick: args.quick,
    broker: args.tsx ? 'src/ through tsx' : 'tsc output (as deploy/Dockerfile runs it)',
    loadavgBefore: loadBefore,
  };

  const out = process.stdout;
  out.write(`\nMayfly certificate bench  ${env.date}  commit ${env.commit ?? '?'}${env.dirty ? ' + uncommitted src/ changes' : ''}  node ${env.node} (OpenSSL ${env.nodeOpenssl})  ${env.cpus} CPU (${env.cpuModel})  redis ${env.redis}\n`);
  out.write(`broker: ${env.broker}; workers: ${WORKERS} (config \`workers\`, node:cluster); agent registration certificates: true; CA generated by the broker (P-256, ES256)\n`);
  out.write(cfsslBin.path !== null && cfssl !== undefined ? `cfssl: ${cfsslBin.version}${cfsslBin.installedNow ? ' (installed by this run: apt-get install golang-cfssl)' : ''}; ${(env.cfssl as { config: string }).config}\n` : `cfssl: NOT MEASURED: ${cfsslMissing}\n`);
  out.write(
    `autocannon: ${LOAD.connections} connections, pipelining ${LOAD.pipelining}, ${LOAD.warmupS}s warm-up + ${LOAD.durationS}s, ` +
      `${ROUNDS} interleaved round(s), best shown; load generator, servers and redis share the machine (1-min load avg before: ${loadBefore.toFixed(2)})\n` +
      `requests: P-256 CSRs (ecdsa-with-SHA256, subject CN only); pool = ${POOL} distinct keys split between the connections, each cycling through its share (${POOL > CSR_CACHE_ENTRIES ? `more than the broker's ${CSR_CACHE_ENTRIES}-entry CSR cache: every request is checked in full` : `NOT more than the broker's ${CSR_CACHE_ENTRIES}-entry CSR cache: repeats are cache hits`}); one = the same CSR every time (renewal: a cache hit)\n\n`,
  );
  out.write(loadTable(scenarios, { badBody: true }) + '\n');
  out.write('(* = round disturbed: other processes + steal used > 25% of a core; cpu columns in % of one core, for the round shown; bad body = 2xx without a certificate)\n\n');
  out.write(issuedTable(samples) + '\n\n');
  out.write(opsTable(baselines) + '\n\n');
  if (crl) out.write(crlTable(crl) + '\n\n');
  else out.write(`CRL: NOT MEASURED: ${crlError}\n\n`);
  out.write(targetTable(checks) + '\n');
  if (profile) out.write('\n' + profileTables(profile) + `\n(full profile: bench/results/mayfly-certs.cpuprofile)\n`);
  if (crlProfile) out.write('\n' + crlProfileTables(crlProfile) + `\n(full profile: bench/results/mayfly-crl.cpuprofile)\n`);

  const invalid = scenarios.filter((s) => !s.best.valid);
  if (invalid.length) out.write(`\nINVALID: ${invalid.map((s) => s.name).join(', ')} had non-2xx answers, bad bodies, errors or timeouts\n`);

  writeJson(join(RESULTS, 'certs.json'), { env, scenarios, samples, baselines, crl, crlError, targets: checks, ...(profile ? { profile: { load: profile.load, summary: profile.summary } } : {}),
    ...(crlProfile ? { crlProfile: { rebuildMs: crlProfile.rebuildMs, summary: crlProfile.summary } } : {}),
  });
  log('results written to bench/results/certs.json');
  return invalid.length || checks.some((c) => c.verdict === 'INVALID') ? 1 : 0;
}

await runBench('bench:certs', main);
