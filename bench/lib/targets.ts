/** The project's performance targets, each checked against the measured numbers: PASS, MISS or INVALID. */
import type { CloseReport } from './close-latency.js';
import type { LoadResult } from './load.js';
import type { MemoryReport } from './token-memory.js';

export type Verdict = 'PASS' | 'MISS' | 'INVALID';

export interface TargetCheck {
  target: string;
  measured: string;
  value: number;
  verdict: Verdict;
}

export interface Measured {
  bare: LoadResult;
  oidc: LoadResult;
  exchange: LoadResult;
  introspect: LoadResult;
  close: CloseReport;
  memory: MemoryReport;
}

function ratio(target: string, num: LoadResult, den: LoadResult, min: number): TargetCheck {
  const value = num.rps / den.rps;
  const valid = num.valid && den.valid;
  const noisy = num.noisy || den.noisy ? ', disturbed run' : '';
  return {
    target,
    measured: `${value.toFixed(2)}x (${num.rps.toFixed(0)} / ${den.rps.toFixed(0)} req/s${noisy})`,
    value,
    verdict: !valid ? 'INVALID' : value >= min ? 'PASS' : 'MISS',
  };
}

export function checkTargets(m: Measured): TargetCheck[] {
  const close = m.close.medianHttpMs;
  const perToken = m.memory.taskKeysPerToken;
  const perTokenAll = m.memory.usedMemoryPerToken;
  return [
    ratio('exchange >= 40% of bare hono route', m.exchange, m.bare, 0.4),
    ratio('exchange >= 1.2x oidc-provider client_credentials', m.exchange, m.oidc, 1.2),
    ratio('introspection >= 60% of bare hono route', m.introspect, m.bare, 0.6),
    {
      target: `close of a ${m.close.tokens}-token task < 5 ms (HTTP, median)`,
      measured: `${close.toFixed(2)} ms median of ${m.close.runs.length}; revoked=${m.close.runs.map((r) => r.revoked).join(',')}`,
      value: close,
      verdict: !m.close.allRevokedMatch ? 'INVALID' : close < 5 ? 'PASS' : 'MISS',
    },
    {
      target: '<= 256 bytes/token (task keys: MEMORY USAGE / N)',
      measured: `${perToken.toFixed(1)} B/token`,
      value: perToken,
      verdict: perToken <= 256 ? 'PASS' : 'MISS',
    },
    {
      target: '<= 256 bytes/token (used_memory delta / N, incl. audit stream)',
      measured: `${perTokenAll.toFixed(1)} B/token`,
      value: perTokenAll,
      verdict: perTokenAll <= 256 ? 'PASS' : 'MISS',
    },
  ];
}
