/** Printing the results as plain-text tables, and writing them as JSON. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { CloseReport } from './close-latency.js';
import type { OpsResult } from './crypto-baselines.js';
import type { ScenarioSummary } from './rounds.js';
import type { ProfileRun } from './profile-exchange.js';
import type { TargetCheck } from './targets.js';
import type { MemoryReport } from './token-memory.js';

export function table(headers: string[], rows: (string | number)[][], rightAlign: boolean[] = []): string {
  const cells = [headers, ...rows.map((r) => r.map(String))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const fmt = (r: string[]) => r.map((c, i) => (rightAlign[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [fmt(cells[0]!), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.slice(1).map(fmt)].join('\n');
}

const n0 = (x: number) => Math.round(x).toLocaleString('en-US');

/**
 * Best round per scenario; non-2xx/errors/timeouts summed over all rounds; CPU columns in % of one core
 * during that round (steal: vCPU time taken by the hypervisor); server µs/req = server CPU time / requests.
 * A `*` marks a round disturbed by outside load.
 */
export function loadTable(rows: ScenarioSummary[], opts: { badBody?: boolean } = {}): string {
  const sum = (s: ScenarioSummary, k: 'non2xx' | 'errors' | 'timeouts' | 'mismatches') => s.rounds.reduce((a, r) => a + (r[k] ?? 0), 0);
  const cpu = (x: number | undefined) => (x === undefined ? '-' : x.toFixed(0));
  // `bad body`: 2xx answers the load generator's body check rejected (for scenarios that check bodies)
  const bad = opts.badBody === true;
  return table(
    ['scenario', 'req/s', 'all rounds req/s', 'p50 ms', 'p99 ms', 'non-2xx', ...(bad ? ['bad body'] : []), 'errors', 'timeouts', 'valid', 'cpu% server', 'redis', 'loadgen', 'other', 'steal', 'server µs/req'],
    rows.map((s) => {
      const b = s.best;
      return [
        s.name,
        n0(b.rps),
        s.rounds.map((r) => n0(r.rps) + (r.noisy ? '*' : '')).join(' / '),
        b.p50,
        b.p99,
        sum(s, 'non2xx'),
        ...(bad ? [sum(s, 'mismatches')] : []),
        sum(s, 'errors'),
        sum(s, 'timeouts'),
        b.valid ? 'yes' : 'NO',
        cpu(b.cpu?.byPid.server),
        cpu(b.cpu?.byPid.redis),
        cpu(b.cpu?.byPid.loadgen),
        cpu(b.cpu?.other),
        cpu(b.cpu?.steal),
        b.cpu ? (((b.cpu.byPid.server ?? 0) * 1e4) / b.rps).toFixed(0) : '-',
      ];
    }),
    [false, true, true, true, true, true, ...(bad ? [true] : []), true, true, false, true, true, true, true, true, true],
  );
}

export function opsTable(rows: OpsResult[]): string {
  return table(['in-process baseline (1 core)', 'ops/s', 'µs/op'], rows.map((r) => [r.name, n0(r.opsPerSec), (1e6 / r.opsPerSec).toFixed(1)]), [false, true, true]);
}

/** µs columns are server-side execution times from Redis SLOWLOG (n/a on a Redis the bench does not own). */
export function closeTable(c: CloseReport): string {
  const us = (x: number | null) => (x === null ? 'n/a' : String(x));
  return table(
    ['run', 'tokens minted', 'mint req/s', 'zcard', 'close HTTP ms', '/healthz ms', 'revoked', 'close script µs', 'all close cmds µs', 'ZCOUNT rtt ms', 'ZCOUNT µs'],
    c.runs.map((r, i) => [i + 1, n0(r.minted), n0(r.mintRps), n0(r.zcard), r.httpMs.toFixed(2), r.healthzMs.toFixed(2), r.revoked, us(r.scriptMicros), us(r.allCommandsMicros), r.zcountMs.toFixed(3), us(r.zcountMicros)]),
    [true, true, true, true, true, true, true, true, true, true, true],
  );
}

export function memoryTable(m: MemoryReport): string {
  const b = m.taskKeysBytes;
  return table(
    ['memory (N = ' + n0(m.tokens) + ' tokens in one task)', 'bytes', 'bytes/token'],
    [
      ['task:{T}:creds (zset, ' + m.zsetEncoding + ')', n0(b.creds), (b.creds / m.tokens).toFixed(1)],
      ['task:{T}:agents (hash)', n0(b.agents), (b.agents / m.tokens).toFixed(1)],
      ['task:{T}:exp (hash, expiry counts per agent)', n0(b.expiries), (b.expiries / m.tokens).toFixed(1)],
      ['task:{T} (hash)', n0(b.task), (b.task / m.tokens).toFixed(1)],
      ['= task keys (MEMORY USAGE ... SAMPLES 0)', n0(b.creds + b.agents + b.expiries + b.task), m.taskKeysPerToken.toFixed(1)],
      [`audit stream delta (${n0(m.auditEntriesAdded)} entries)`, n0(m.auditStreamDelta), m.auditStreamPerToken.toFixed(1)],
      ['INFO used_memory delta (all of the above + noise)', n0(m.usedMemoryDelta), m.usedMemoryPerToken.toFixed(1)],
    ],
    [false, true, true],
  );
}

export function targetTable(checks: TargetCheck[]): string {
  return table(['target', 'measured', 'verdict'], checks.map((c) => [c.target, c.measured, c.verdict]));
}

export function profileTables(p: ProfileRun): string {
  const s = p.summary;
  const pct = (x: number) => `${x.toFixed(1)}%`;
  return [
    `profiled run: ${n0(p.load.rps)} req/s (sampling overhead included), busy ${s.busyMs.toFixed(0)} ms of ${s.totalMs.toFixed(0)} ms sampled (idle ${pct((100 * s.idleMs) / s.totalMs)})`,
    '',
    table(['self time by module', 'ms', '% busy'], s.byGroup.slice(0, 15).map((r) => [r.name, r.ms.toFixed(0), pct(r.pct)]), [false, true, true]),
    '',
    table(['top functions (self time)', 'where', 'ms', '% busy'], s.topFunctions.slice(0, 25).map((r) => [r.name, r.where, r.ms.toFixed(0), pct(r.pct)]), [false, false, true, true]),
    '',
    table(['Mayfly functions (inclusive time)', 'where', 'ms', '% busy'], s.mayflyInclusive.slice(0, 20).map((r) => [r.name, r.where, r.ms.toFixed(0), pct(r.pct)]), [false, false, true, true]),
  ].join('\n');
}

export function writeJson(path: string, data: unknown): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, JSON.stringify(data, null, 2) + '\n');
}
