/**
 * Runs every load scenario once per round, interleaved (A B C D, A B C D, ...), so slow drifts and
 * bursts of outside load hit all scenarios alike; each scenario is then represented by its best round.
 * Before each scenario it waits (bounded) for other processes on the machine to go quiet. Any round
 * with a non-2xx answer, error or timeout makes the scenario invalid.
 */
import { CpuMonitor, waitForQuiet } from './cpu-monitor.js';
import { NOISY_PCT, runScenario, type LoadOptions, type LoadResult } from './load.js';
import type { HttpRequestSpec } from './mayfly-client.js';

export interface ScenarioDef {
  name: string;
  baseUrl: string;
  serverPid: number;
  /** Called before each round: the request to replay, and a check to run after the round (throws if the round measured the wrong thing). */
  prepare: () => Promise<{ request: HttpRequestSpec; check?: () => Promise<void> }>;
}

export interface ScenarioSummary {
  name: string;
  /** The fastest undisturbed round (else the fastest); `valid` is false if any round was invalid. */
  best: LoadResult;
  rounds: LoadResult[];
}

/**
 * `preWarmS`: before the first round, each scenario runs once that long, unmeasured, so no server's
 * first round also pays for its start-up (JIT, heap growth, caches filling); the same for every server.
 */
export async function runRounds(
  defs: ScenarioDef[],
  rounds: number,
  load: LoadOptions,
  redisPid: number | undefined,
  log: (m: string) => void,
  opts: { preWarmS?: number } = {},
): Promise<ScenarioSummary[]> {
  const all = new Map<string, LoadResult[]>(defs.map((d) => [d.name, []]));
  if (opts.preWarmS)
    for (const d of defs) {
      log(`pre-warm (unmeasured, ${opts.preWarmS}s): ${d.name}`);
      const { request } = await d.prepare();
      await runScenario(`${d.name} (pre-warm)`, d.baseUrl, request, { ...load, warmupS: 0, durationS: opts.preWarmS });
    }
  for (let round = 1; round <= rounds; round++) {
    for (const d of defs) {
      log(`round ${round}/${rounds}: ${d.name} (${load.warmupS}s warm-up + ${load.durationS}s, ${load.connections} connections)`);
      const pids = { loadgen: process.pid, server: d.serverPid, ...(redisPid ? { redis: redisPid } : {}) };
      const q = await waitForQuiet(pids, NOISY_PCT);
      if (!q.quiet) log(`  machine still busy after ${(q.waitedMs / 1000).toFixed(0)}s (others use ${q.lastOther?.toFixed(0)}% of a core); measuring anyway`);
      else if (q.waitedMs > 1500) log(`  waited ${(q.waitedMs / 1000).toFixed(0)}s for other processes to go quiet`);
      const monitor = new CpuMonitor(pids);
      const { request, check } = await d.prepare();
      const r = await runScenario(d.name, d.baseUrl, request, load, monitor);
      await check?.();
      log(`  ${Math.round(r.rps)} req/s${r.noisy ? ` (disturbed: others ${r.cpu?.other.toFixed(0)}% + steal ${r.cpu?.steal.toFixed(0)}% of a core)` : ''}`);
      if (!r.valid) log(`  INVALID: ${r.non2xx} non-2xx, ${r.errors} errors, ${r.timeouts} timeouts`);
      all.get(d.name)!.push(r);
    }
  }
  return defs.map((d) => {
    const rs = all.get(d.name)!;
    // prefer undisturbed rounds; among those (or all, if none) the fastest
    const calm = rs.filter((r) => !r.noisy);
    const best = (calm.length ? calm : rs).reduce((a, b) => (b.rps > a.rps ? b : a));
    return { name: d.name, best: { ...best, valid: rs.every((r) => r.valid) }, rounds: rs };
  });
}
