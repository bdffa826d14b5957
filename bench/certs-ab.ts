/**
 * A/B of broker variants on the new-keys certificate load: `npm run bench:certs-ab -- --variants JSON`
 * starts one broker (workers: 2, its own key prefix on the same Redis) per variant, each with the Node
 * flags the JSON names ({"name": ["--flag", ...]}), and drives them in interleaved rounds
 * (A B, A B, ...) with the certificate bench's pool of distinct P-256 CSRs. It prints every round's
 * req/s, and the server's and Redis's CPU per request, because on this shared machine one round's
 * throughput swings more than most single changes move it (see README, Benchmarks).
 *
 * With --baseline-rev REV, one more broker runs REV's src/ (checked out in a temporary git worktree,
 * compiled the same way) with no flags, so a code change is measured against the code before it in the
 * same interleaved rounds.
 *
 *   options: --variants JSON (default: none vs --max-semi-space-size=32; with --baseline-rev: {"current": []})
 *                                   a variant may also be {"flags": [...], "workers": N} (workers: 2 otherwise)
 *            --baseline-rev REV  --rounds N  --duration S  --pool N (default 20,000 distinct CSRs)
 */
import { execFileSync } from 'node:child_process';
import { symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { compileBroker } from './lib/build-broker.js';
import { intOption, prepareBench, runBench, started } from './lib/setup.js';
import { MayflyClient } from './lib/mayfly-client.js';
import { runRounds, type ScenarioDef } from './lib/rounds.js';
import type { LoadResult } from './lib/load.js';
import { startMayfly } from './lib/servers.js';
import { makeCsrPool } from './certs/csr.js';
import { certificateRequest } from './certs/mayfly-certs.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const log = (m: string) => process.stderr.write(`[bench:certs-ab] ${m}\n`);
const { values: args } = parseArgs({
  options: { variants: { type: 'string' }, 'baseline-rev': { type: 'string' }, rounds: { type: 'string' }, duration: { type: 'string' }, pool: { type: 'string' } },
});
const BASE_REV = args['baseline-rev'];
/** A variant: its Node flags, or {flags, workers} (workers: 2 unless said). */
type Variant = string[] | { flags?: string[]; workers?: number };
const variants = JSON.parse(args.variants ?? (BASE_REV ? '{"current":[]}' : '{"default":[],"semi-space-32":["--max-semi-space-size=32"]}')) as Record<string, Variant>;
const flagsOk = (f: unknown) => Array.isArray(f) && f.every((x) => typeof x === 'string');
if (
  typeof variants !== 'object' ||
  variants === null ||
  !Object.values(variants).every((v) => flagsOk(v) || (typeof v === 'object' && v !== null && (v.flags === undefined || flagsOk(v.flags)) && (v.workers === undefined || (Number.isInteger(v.workers) && v.workers > 0 && v.workers <= 16))))
)
  throw new Error('--variants: a JSON object of name -> array of Node flags, or -> {flags, workers}');
const ROUNDS = intOption(args.rounds, 4, 20);
const DURATION = intOption(args.duration, 4, 60);
// as bench/certs.ts: each worker sees about half the pool (connections are split between them), and
// half must exceed the worker's 4,096-entry CSR cache, or most requests are cache hits (renewals)
const POOL = intOption(args.pool, 20_000, 200_000);

/** CPU per request of one process, µs (its share of a core over the round, per answered request). */
const usPerReq = (r: LoadResult, who: string) => Math.round(((r.cpu?.byPid[who] ?? 0) * 1e4) / r.rps);

await runBench('bench:certs-ab', async (cleanup) => {
  const { dir, entry, redis, keys, jwksPath, orchJwt, agentJwt } = await prepareBench(cleanup, { root: ROOT, tmpPrefix: 'mayfly-bench-ab-', tsx: false, log });
  log(`generating ${POOL} P-256 CSRs`);
  const pool = makeCsrPool(POOL);
  const runs: Array<{ name: string; entry: string; nodeFlags: string[]; workers: number }> = Object.entries(variants).map(([name, v]) =>
    Array.isArray(v) ? { name, entry, nodeFlags: v, workers: 2 } : { name, entry, nodeFlags: v.flags ?? [], workers: v.workers ?? 2 },
  );
  if (BASE_REV) {
    const tree = join(tmpdir(), `mayfly-ab-base-${process.pid}`);
    execFileSync('git', ['worktree', 'add', '--detach', tree, BASE_REV], { cwd: ROOT, stdio: 'ignore' });
    cleanup.defer('baseline worktree', () => void execFileSync('git', ['worktree', 'remove', '--force', tree], { cwd: ROOT, stdio: 'ignore' }));
    symlinkSync(join(ROOT, 'node_modules'), join(tree, 'node_modules'));
    log(`compiling ${BASE_REV}'s src/ as the baseline`);
    const base = compileBroker(ROOT, cleanup, tree, `.broker-base-${process.pid}`);
    runs.unshift({ name: `baseline@${BASE_REV}`, entry: base.entry, nodeFlags: [], workers: 2 });
    variants[`baseline@${BASE_REV}`] = [];
  }
  const defs: ScenarioDef[] = [];
  for (const { name, entry, nodeFlags, workers } of runs) {
    const m = await started(startMayfly({ root: ROOT, entry, dir, redisUrl: redis.url, prefix: `${keys.prefix}${defs.length}:`, jwksPath, certificates: true, workers, nodeFlags }), cleanup, log);
    const client = new MayflyClient(m.baseUrl, orchJwt, agentJwt);
    defs.push({ name, baseUrl: m.baseUrl, serverPid: m.child.pid, prepare: async () => ({ request: certificateRequest(agentJwt, await client.openTask(), pool) }) });
  }
  const out = await runRounds(defs, ROUNDS, { connections: 64, pipelining: 1, warmupS: 1, durationS: DURATION }, redis.pid, log, { preWarmS: 3 });
  for (const s of out) {
    const rps = s.rounds.map((r) => Math.round(r.rps));
    const mean = Math.round(rps.reduce((a, b) => a + b, 0) / rps.length);
    log(`${s.name} ${JSON.stringify(variants[s.name])}: req/s ${rps.join(' ')} (mean ${mean}, best ${Math.round(s.best.rps)}, its latency p50/p90/p97.5/p99/p99.9/max ${[s.best.p50, s.best.p90, s.best.p97_5, s.best.p99, s.best.p99_9, s.best.maxMs].join('/')} ms) | p99 ms ${s.rounds.map((r) => r.p99).join(' ')} | server µs/req ${s.rounds.map((r) => usPerReq(r, 'server')).join(' ')} | redis µs/req ${s.rounds.map((r) => usPerReq(r, 'redis')).join(' ')} | load generator µs/req ${s.rounds.map((r) => usPerReq(r, 'loadgen')).join(' ')}`);
  }
  return out.every((s) => s.best.valid) ? 0 : 1;
});
