/**
 * What every bench entry point sets up the same way: a temp dir, the broker compiled as in production
 * (or run from src/ with --tsx), a Redis (REDIS_URL or one of our own) with an admin connection and a
 * key prefix of our own, and an attestor whose JWKS the broker trusts, with an orchestrator's and an
 * agent's attestation JWTs.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { createAttestor } from './attestation.js';
import { compileBroker } from './build-broker.js';
import { Cleanup } from './cleanup.js';
import type { LoadOptions } from './load.js';
import type { Target } from './servers.js';
import { acquireRedis } from './redis.js';
import { deleteAll, storeKeys } from './store-keys.js';

export function git(root: string, ...a: string[]): string | null {
  try {
    return execFileSync('git', a, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return null;
  }
}

export async function prepareBench(cleanup: Cleanup, opts: { root: string; tmpPrefix: string; tsx: boolean; log: (m: string) => void }) {
  const { log } = opts;
  const dir = mkdtempSync(join(tmpdir(), opts.tmpPrefix));
  cleanup.defer('temp dir', () => rmSync(dir, { recursive: true, force: true }));
  const loadBefore = loadavg()[0]!;

  let entry = 'src/cli/main.ts';
  if (!opts.tsx) {
    log('compiling src/ (tsconfig.build.json) so the broker runs as in production');
    const build = compileBroker(opts.root, cleanup);
    if (build.typeErrors) log('warning: src/ has type errors; benchmarking the emitted JS anyway');
    entry = build.entry;
  }

  const redis = await acquireRedis(cleanup);
  log(`redis ${redis.version} at ${redis.url}${redis.owned ? ' (started by the bench)' : ' (REDIS_URL)'}`);
  const admin = new Redis(redis.url, { maxRetriesPerRequest: 1 });
  cleanup.defer('redis admin connection', () => void admin.disconnect());
  // on a shared REDIS_URL: a key prefix of our own, removed at the end
  const keys = storeKeys(redis.owned ? 'bench:' : `bench:${randomBytes(4).toString('hex')}:`);
  if (!redis.owned) cleanup.defer('bench keys on REDIS_URL', async () => void (await deleteAll(admin, keys.prefix)));

  const jwksPath = join(dir, 'attest-jwks.json');
  const attestor = await createAttestor(jwksPath);
  const orchJwt = await attestor.mint('orch');
  const agentJwt = await attestor.mint('agent');
  return { dir, loadBefore, entry, redis, admin, keys, jwksPath, attestor, orchJwt, agentJwt };
}

/** A positive integer option (1..max), or the default. */
export function intOption(v: string | undefined, dflt: number, max: number): number {
  const n = v === undefined ? dflt : Number(v);
  if (!Number.isInteger(n) || n <= 0 || n > max) throw new Error(`bad numeric option: ${v} (an integer 1..${max})`);
  return n;
}

/** autocannon settings from --connections / --duration (shorter with --quick). */
export function loadOptions(args: { connections?: string | undefined; duration?: string | undefined; quick?: boolean | undefined }): LoadOptions {
  return {
    connections: intOption(args.connections, 64, 1024),
    durationS: intOption(args.duration, args.quick ? 3 : 10, 120),
    warmupS: args.quick ? 1 : 3,
    pipelining: 1,
  };
}

/** What every results file records about the run it came from. */
export function benchEnv(root: string, redisVersion: string) {
  return {
    date: new Date().toISOString(),
    commit: git(root, 'rev-parse', '--short', 'HEAD'),
    dirty: (git(root, 'status', '--porcelain', '--', 'src') ?? '') !== '',
    node: process.version,
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    redis: redisVersion,
  };
}

/** Runs a bench's main with signal-safe cleanup and exits with its code (1 on a throw). */
export async function runBench(tag: string, main: (cleanup: Cleanup) => Promise<number>): Promise<never> {
  const cleanup = new Cleanup();
  cleanup.onSignals();
  let code = 1;
  try {
    code = await main(cleanup);
  } catch (e) {
    process.stderr.write(`[${tag}] failed: ${(e as Error).stack ?? String(e)}\n`);
  } finally {
    await cleanup.run();
  }
  process.exit(code);
}

/** Waits for a server child, stops it at cleanup, and says where it runs. */
export async function started<T extends Target>(p: Promise<T>, cleanup: Cleanup, log: (m: string) => void): Promise<T> {
  const t = await p;
  cleanup.defer(t.child.name, () => t.child.stop());
  log(`${t.child.name} up at ${t.baseUrl} (pid ${t.child.pid})`);
  return t;
}
