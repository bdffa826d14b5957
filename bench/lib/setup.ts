/**
 * What every bench entry point sets up the same way: a temp dir, the broker compiled as in production
 * (or run from src/ with --tsx), a Redis (REDIS_URL or one of our own) with an admin connection and a
 * key prefix of our own, and an attestor whose JWKS the broker trusts, with an orchestrator's and an
 * agent's attestation JWTs.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { createAttestor } from './attestation.js';
import { compileBroker } from './build-broker.js';
import type { Cleanup } from './cleanup.js';
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
