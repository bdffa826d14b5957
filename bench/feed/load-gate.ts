/**
 * Before a measured phase: wait (bounded) for the machine's 1-minute load average to fall below a
 * threshold, so a phase does not start on top of someone else's benchmark; report what it was.
 */
import { loadavg } from 'node:os';
import { sleep } from '../lib/net.js';

export interface LoadGate {
  phase: string;
  /** 1-min load average when the phase was about to start, before any waiting. */
  before: number;
  /** ... and when it did start. */
  atStart: number;
  waitedMs: number;
  /** The load fell below the threshold (else the phase ran anyway after maxWaitMs). */
  calm: boolean;
  threshold: number;
  /** 1-min load average when the phase ended (filled in by the caller). */
  atEnd?: number;
}

export async function waitForLoad(phase: string, threshold: number, maxWaitMs: number, log: (m: string) => void): Promise<LoadGate> {
  const before = loadavg()[0]!;
  const t0 = performance.now();
  let now = before;
  let announced = false;
  while (now >= threshold && performance.now() - t0 < maxWaitMs) {
    if (!announced) log(`  1-min load average ${now.toFixed(2)} >= ${threshold}: waiting (up to ${Math.round(maxWaitMs / 1000)} s) before "${phase}"`);
    announced = true;
    await sleep(2000);
    now = loadavg()[0]!;
  }
  const waitedMs = performance.now() - t0;
  const calm = now < threshold;
  if (!calm) log(`  load average still ${now.toFixed(2)} after ${Math.round(waitedMs / 1000)} s: measuring "${phase}" anyway (flagged in the report)`);
  else log(`  "${phase}" starts at 1-min load average ${now.toFixed(2)}${announced ? ` (waited ${Math.round(waitedMs / 1000)} s)` : ''}`);
  return { phase, before, atStart: now, waitedMs, calm, threshold };
}
