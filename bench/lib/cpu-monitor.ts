/**
 * Who used the CPU during a measurement window (Linux /proc): the whole machine, the bench's own
 * processes (this one, the server under test, redis-server), everything else, and steal time (the
 * hypervisor running someone else on our vCPUs). Large "other" or "steal" means interference: such a
 * window is not comparable with a quiet one.
 */
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { sleep } from './net.js';

export interface CpuWindow {
  /** Percent of one core, summed over all cores (2 cores fully busy = 200). */
  machine: number;
  bench: number;
  other: number;
  /** Time our vCPUs were ready but not running (virtualised hosts), percent of one core. */
  steal: number;
  /** Per process, percent of one core. */
  byPid: Record<string, number>;
}

interface Snapshot {
  at: number;
  busyTicks: number;
  stealTicks: number;
  pidTicks: Map<number, number>;
}

/** Aggregate ticks from /proc/stat: "cpu  user nice system idle iowait irq softirq steal guest guest_nice". */
function machineTicks(): { busy: number; steal: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  const at = (i: number) => f[i] ?? 0;
  return { busy: at(0) + at(1) + at(2) + at(5) + at(6), steal: at(7) };
}

function ownTicks(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // fields from #3 (state) on
    return Number(f[11]) + Number(f[12]); // utime + stime (fields #14, #15)
  } catch {
    return 0;
  }
}

function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/**
 * CPU ticks of `pid` and its live descendants (a broker with `workers` > 1 is a primary and its
 * workers), except for this process: its children are the servers, Redis and verifiers it measures.
 */
function pidTicks(pid: number, depth = 0): number {
  let t = ownTicks(pid);
  if (pid !== process.pid && depth < 4) for (const c of childrenOf(pid)) t += pidTicks(c, depth + 1);
  return t;
}

const TICKS_PER_S = 100; // USER_HZ on Linux

export class CpuMonitor {
  private readonly enabled: boolean;
  constructor(private pids: Record<string, number>) {
    let ok = process.platform === 'linux';
    try {
      if (ok) machineTicks();
    } catch {
      ok = false;
    }
    this.enabled = ok;
  }

  start(): Snapshot | null {
    if (!this.enabled) return null;
    const m = machineTicks();
    return { at: performance.now(), busyTicks: m.busy, stealTicks: m.steal, pidTicks: new Map(Object.values(this.pids).map((p) => [p, pidTicks(p)])) };
  }

  stop(s: Snapshot | null): CpuWindow | null {
    if (!s) return null;
    const seconds = (performance.now() - s.at) / 1000;
    const pct = (ticks: number) => (100 * ticks) / TICKS_PER_S / seconds;
    const byPid: Record<string, number> = {};
    let bench = 0;
    for (const [name, pid] of Object.entries(this.pids)) {
      const p = pct(pidTicks(pid) - (s.pidTicks.get(pid) ?? 0));
      byPid[name] = p;
      bench += p;
    }
    const m = machineTicks();
    const machine = Math.min(pct(m.busy - s.busyTicks), 100 * cpus().length);
    return { machine, bench, other: Math.max(0, machine - bench), steal: pct(m.steal - s.stealTicks), byPid };
  }
}

/**
 * Waits (up to `maxWaitMs`) for a 1-second window in which processes outside the bench use less than
 * `maxOtherPct` of a core, so a scenario does not start in the middle of someone else's burst.
 * Returns how long it waited and whether the machine was quiet in the end.
 */
export async function waitForQuiet(benchPids: Record<string, number>, maxOtherPct = 25, maxWaitMs = 30_000): Promise<{ waitedMs: number; quiet: boolean; lastOther: number | null }> {
  const mon = new CpuMonitor(benchPids);
  const t0 = performance.now();
  let last: CpuWindow | null = null;
  for (;;) {
    const s = mon.start();
    if (!s) return { waitedMs: 0, quiet: true, lastOther: null };
    await sleep(1000);
    last = mon.stop(s);
    const waitedMs = performance.now() - t0;
    if (last && last.other + last.steal < maxOtherPct) return { waitedMs, quiet: true, lastOther: last.other + last.steal };
    if (waitedMs >= maxWaitMs) return { waitedMs, quiet: false, lastOther: last ? last.other + last.steal : null };
  }
}
