/**
 * Local verification throughput, in this process, one call at a time: the SDK verifier
 * (`verify(token, {audience})`: jose jwtVerify against the broker's JWKS through the SDK's key memo,
 * claim shapes, then the revocation mirror with the broker's own verdict()) against raw
 * `jose.jwtVerify` with the same public key and the same token, in interleaved rounds (the order
 * rotates every round) so drift and bursts of outside load hit both alike. Two jose references:
 * key only (the bare floor), and with the options the verifier itself passes (issuer, audience,
 * typ, algorithms), so the gap can be split into "jose claim checks" and "the SDK's own work".
 *
 * Many short rounds rather than a few long ones: the machine's noise (steal, other tenants) moves
 * ops/s by ±10-20% between seconds, and only paired, finely interleaved slices cancel it. CPU use of
 * other processes is recorded per round; a round they disturbed is flagged.
 *
 * Every call's result is checked (a refused or failed verification is counted, and any makes the
 * comparison invalid): a fast "no" must never pass for throughput.
 */
import { decodeProtectedHeader, importJWK, jwtVerify, type JWK } from 'jose';
import type { CpuMonitor, CpuWindow } from '../lib/cpu-monitor.js';
import { measure, type OpsResult } from '../lib/crypto-baselines.js';
import { NOISY_PCT } from '../lib/load.js';
import { median } from '../lib/stats.js';
import type { Verifier } from '../../src/sdk/index.js';

export const VERIFIER = 'sdk verifier.verify(token, {audience})';
export const JOSE_BARE = 'jose jwtVerify(token, key)';
export const JOSE_OPTS = 'jose jwtVerify(token, key, {issuer, audience, typ, algorithms})';

export interface ThroughputRound {
  round: number;
  order: string[];
  results: Record<string, OpsResult>;
  /** 1-min load average when the round started. */
  loadavg: number;
  /** CPU use during the round (bench/lib/cpu-monitor); null off Linux. */
  cpu: CpuWindow | null;
  /** Other processes + steal used more than NOISY_PCT of a core during the round. */
  disturbed: boolean;
}

export interface ThroughputReport {
  msEach: number;
  rounds: ThroughputRound[];
  /** Per scenario: best and median ops/s over rounds. */
  best: Record<string, number>;
  median: Record<string, number>;
  /** verifier / jose, per round (paired), then the median of those. */
  ratioBare: number[];
  ratioOpts: number[];
  medianRatioBare: number;
  medianRatioOpts: number;
  /** Over all rounds: (verifier ops / verifier ms) / (jose ops / jose ms). */
  pooledRatioBare: number;
  pooledRatioOpts: number;
  failures: Record<string, number>;
}

export interface ThroughputInput {
  verifier: Verifier;
  token: string;
  audience: string;
  issuer: string;
  jwksUrl: string;
  rounds: number;
  msEach: number;
  /** Watches the bench's own processes during each round. */
  monitor: CpuMonitor;
  loadavg: () => number;
  log: (m: string) => void;
}

export async function measureThroughput(i: ThroughputInput): Promise<ThroughputReport> {
  const jwks = (await (await fetch(i.jwksUrl)).json()) as { keys: JWK[] };
  const { kid, alg } = decodeProtectedHeader(i.token);
  const jwk = jwks.keys.find((k) => k.kid === kid);
  if (!jwk || !alg) throw new Error(`token kid ${kid} not in ${i.jwksUrl}`);
  const key = await importJWK(jwk, alg);
  const joseOpts = { issuer: i.issuer, audience: i.audience, typ: 'at+jwt', algorithms: [alg] };
  const vOpts = { audience: i.audience };

  const failures: Record<string, number> = { [VERIFIER]: 0, [JOSE_BARE]: 0, [JOSE_OPTS]: 0 };
  const cases: Record<string, () => Promise<void>> = {
    [VERIFIER]: async () => {
      if (!(await i.verifier.verify(i.token, vOpts)).ok) failures[VERIFIER]!++;
    },
    [JOSE_BARE]: async () => {
      if ((await jwtVerify(i.token, key)).payload.task_id === undefined) failures[JOSE_BARE]!++;
    },
    [JOSE_OPTS]: async () => {
      if ((await jwtVerify(i.token, key, joseOpts)).payload.task_id === undefined) failures[JOSE_OPTS]!++;
    },
  };
  // sanity: all three accept the token before anything is timed
  for (const [name, fn] of Object.entries(cases)) {
    await fn();
    if (failures[name]) throw new Error(`${name} does not accept the token: ${JSON.stringify(await i.verifier.verify(i.token, vOpts))}`);
  }

  const names = Object.keys(cases);
  const rounds: ThroughputRound[] = [];
  for (let r = 0; r < i.rounds; r++) {
    const order = names.map((_, k) => names[(k + r) % names.length]!);
    if (r % 2 === 1) order.reverse();
    const snap = i.monitor.start();
    const results: Record<string, OpsResult> = {};
    const loadavg = i.loadavg();
    for (const name of order) results[name] = await measure(name, i.msEach, cases[name]!);
    const cpu = i.monitor.stop(snap);
    const round: ThroughputRound = { round: r + 1, order, results, loadavg, cpu, disturbed: cpu !== null && cpu.other + cpu.steal > NOISY_PCT };
    if ((r + 1) % 5 === 0 || r + 1 === i.rounds) i.log(`  round ${r + 1}/${i.rounds}: ${names.map((n) => `${n.split('(')[0]!.trim()} ${Math.round(round.results[n]!.opsPerSec)}`).join(', ')} ops/s`);
    rounds.push(round);
  }

  const ops = (name: string) => rounds.map((r) => r.results[name]!.opsPerSec);
  const best = Object.fromEntries(names.map((n) => [n, Math.max(...ops(n))]));
  const med = Object.fromEntries(names.map((n) => [n, median(ops(n))]));
  const ratioBare = rounds.map((r) => r.results[VERIFIER]!.opsPerSec / r.results[JOSE_BARE]!.opsPerSec);
  const ratioOpts = rounds.map((r) => r.results[VERIFIER]!.opsPerSec / r.results[JOSE_OPTS]!.opsPerSec);
  const rate = (name: string) => rounds.reduce((a, r) => a + r.results[name]!.ops, 0) / rounds.reduce((a, r) => a + r.results[name]!.ms, 0);
  return {
    msEach: i.msEach,
    rounds,
    best,
    median: med,
    ratioBare,
    ratioOpts,
    medianRatioBare: median(ratioBare),
    medianRatioOpts: median(ratioOpts),
    pooledRatioBare: rate(VERIFIER) / rate(JOSE_BARE),
    pooledRatioOpts: rate(VERIFIER) / rate(JOSE_OPTS),
    failures,
  };
}
