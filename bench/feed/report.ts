/** The feed benchmark's summaries, tables (bench/lib/report.ts's layout) and target checks. */
import { table } from '../lib/report.js';
import { percentile } from '../lib/stats.js';
import type { TargetCheck } from '../lib/targets.js';
import type { DeliverySample } from './delivery.js';
import type { ClockSample } from './fleet.js';
import type { LoadGate } from './load-gate.js';
import type { Trial } from './propagation.js';
import { JOSE_BARE, JOSE_OPTS, VERIFIER, type ThroughputReport } from './throughput.js';

export interface Dist {
  n: number;
  p50: number;
  p99: number;
  max: number;
}

export function dist(xs: number[]): Dist {
  return { n: xs.length, p50: percentile(xs, 50), p99: percentile(xs, 99), max: xs.length ? Math.max(...xs) : NaN };
}

export interface PropagationSummary {
  trials: number;
  verifiers: number;
  /** The target's measure: last verifier refusing − close answered. */
  propagation: Dist;
  fromSend: Dist;
  first: Dist;
  close: Dist;
  xadd: Dist;
  /** Pooled over verifiers: chunk arrival − XADD (stream id ms; ms resolution). */
  delivery: Dist;
  /** Per trial: last chunk arrival − first chunk arrival. */
  spread: Dist;
  /** Pooled: refusal − chunk arrival. */
  afterChunk: Dist;
  verifyCall: Dist;
  detectedBy: Record<string, number>;
  codes: Record<string, number>;
  trialsStillAcceptingAt1s: number;
  verifiersNeverRefused: number;
  trialsAllBeforeClose: number;
  trialsRevokedNotOne: number;
  chunksSeen: number;
  /** Refusals first seen by the backstop or the probe in a verify() that started after the event chunk had arrived: the chunk-triggered check missed them (should be 0). */
  hookMisses: number;
}

const count = (xs: string[]) => xs.reduce<Record<string, number>>((m, x) => ((m[x] = (m[x] ?? 0) + 1), m), {});

export function summarisePropagation(trials: Trial[], verifiers: number): PropagationSummary {
  const obs = trials.flatMap((t) => t.observations.map((o) => ({ ...o, t })));
  const chunked = obs.filter((o) => o.chunkMs !== null);
  return {
    trials: trials.length,
    verifiers,
    propagation: dist(trials.map((t) => t.propagationMs)),
    fromSend: dist(trials.map((t) => t.fromSendMs)),
    first: dist(trials.map((t) => t.firstMs)),
    close: dist(trials.map((t) => t.closeMs)),
    xadd: dist(trials.filter((t) => t.xaddMs !== null).map((t) => t.xaddMs!)),
    // chunk time and stream id on one axis: both relative to t_send (t0 − sent = closeMs)
    delivery: dist(chunked.filter((o) => o.t.xaddMs !== null).map((o) => o.chunkMs! + o.t.closeMs - o.t.xaddMs!)),
    spread: dist(
      trials
        .map((t) => t.observations.map((o) => o.chunkMs).filter((x): x is number => x !== null))
        .filter((xs) => xs.length === verifiers)
        .map((xs) => Math.max(...xs) - Math.min(...xs)),
    ),
    afterChunk: dist(chunked.map((o) => o.atMs - o.chunkMs!)),
    verifyCall: dist(obs.map((o) => o.verifyMs)),
    detectedBy: count(obs.map((o) => o.by)),
    codes: count(obs.map((o) => (o.reason ? `${o.code}/${o.reason}` : o.code))),
    trialsStillAcceptingAt1s: trials.filter((t) => t.stillAcceptingAt1s > 0).length,
    verifiersNeverRefused: trials.reduce((a, t) => a + t.neverRefused, 0),
    trialsAllBeforeClose: trials.filter((t) => t.propagationMs < 0).length,
    trialsRevokedNotOne: trials.filter((t) => t.revoked !== 1).length,
    chunksSeen: chunked.length,
    hookMisses: obs.filter((o) => o.by !== 'chunk' && (o.chunkMs === null || o.atMs - o.verifyMs > o.chunkMs)).length,
  };
}

const ms = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : x > 0 ? 'never' : '-');
const n0 = (x: number) => Math.round(x).toLocaleString('en-US');

export function propagationTable(s: PropagationSummary): string {
  const row = (name: string, d: Dist): (string | number)[] => [name, d.n, ms(d.p50), ms(d.p99), ms(d.max)];
  return table(
    [`revocation propagation (${s.trials} trials x ${s.verifiers} verifier processes, ms)`, 'n', 'p50', 'p99', 'max'],
    [
      row('last verifier refuses - close answered (t0)  [target]', s.propagation),
      row('last verifier refuses - close sent', s.fromSend),
      row('first verifier refuses - close answered', s.first),
      row('close HTTP round trip (answered - sent)', s.close),
      row('feed XADD (stream id ms, Redis clock) - close sent', s.xadd),
      row('event chunk reaches a verifier - XADD', s.delivery),
      row('spread of chunk arrival across verifiers', s.spread),
      row('refusal - chunk arrival (in the verifier)', s.afterChunk),
      row('verify() call that saw the refusal', s.verifyCall),
    ],
    [false, true, true, true, true],
  );
}

export interface DeliverySummary {
  samples: number;
  xadd: Dist;
  redisSubscriber: Dist;
  /** Pooled over verifiers. */
  chunk: Dist;
  /** Per event: the last verifier's chunk. */
  lastChunk: Dist;
}

export function summariseDelivery(xs: DeliverySample[]): DeliverySummary {
  return {
    samples: xs.length,
    xadd: dist(xs.map((x) => x.xaddMs)),
    redisSubscriber: dist(xs.map((x) => x.redisSubscriberMs)),
    chunk: dist(xs.flatMap((x) => x.chunkMs)),
    lastChunk: dist(xs.map((x) => Math.max(...x.chunkMs))),
  };
}

export function deliveryTable(d: DeliverySummary, verifiers: number): string {
  const row = (name: string, x: Dist): (string | number)[] => [name, x.n, ms(x.p50), ms(x.p99), ms(x.max)];
  return table(
    [`diagnostic: feed only (bench XADDs to the stream; no close, verifiers idle), ms after XADD sent`, 'n', 'p50', 'p99', 'max'],
    [
      row('XADD round trip', d.xadd),
      row('plain Redis subscriber (XREAD BLOCK) woken', d.redisSubscriber),
      row(`SSE chunk reaches a verifier (${verifiers} processes, pooled)`, d.chunk),
      row('SSE chunk reaches the last verifier', d.lastChunk),
    ],
    [false, true, true, true, true],
  );
}

export function countsTable(s: PropagationSummary, clock: { before: ClockSample[]; after: ClockSample[] }): string {
  const kv = (o: Record<string, number>) =>
    Object.entries(o)
      .map(([k, v]) => `${k}: ${v}`)
      .join(', ');
  const maxAbs = (xs: ClockSample[]) => Math.max(...xs.map((c) => Math.abs(c.offsetMs)));
  const drift = Math.max(...clock.after.map((a) => Math.abs(a.offsetMs - (clock.before.find((b) => b.index === a.index)?.offsetMs ?? a.offsetMs))));
  const rtt = Math.max(...[...clock.before, ...clock.after].map((c) => c.rttMs));
  return table(
    ['propagation checks', 'value'],
    [
      ['refusals seen by (chunk = right after the feed chunk, poll = backstop timer, probe = 1 s probe)', kv(s.detectedBy)],
      ['refusal codes', kv(s.codes)],
      ['refusals the chunk-triggered check missed (poll/probe check started after the chunk)', s.hookMisses],
      ['verifier refusals with the event chunk identified', `${s.chunksSeen} of ${s.trials * s.verifiers}`],
      ['trials with a verifier still accepting 1 s after the close', s.trialsStillAcceptingAt1s],
      ['verifier-trials that never refused (within the whole wait)', s.verifiersNeverRefused],
      ['trials where every verifier refused before the close answered', s.trialsAllBeforeClose],
      ['closes that did not report revoked: 1', s.trialsRevokedNotOne],
      [
        'child clock offsets vs bench (IPC ping-pong, min-RTT sample)',
        `max |offset| ${maxAbs(clock.before).toFixed(3)} ms before, ${maxAbs(clock.after).toFixed(3)} ms after; drift <= ${drift.toFixed(3)} ms; uncertainty <= ${(rtt / 2).toFixed(3)} ms (half the worst min-RTT)`,
      ],
    ],
  );
}

export function throughputTable(t: ThroughputReport): string {
  const names = [VERIFIER, JOSE_OPTS, JOSE_BARE];
  return table(
    [`in-process verification (1 core, ${t.rounds.length} interleaved rounds x ${t.msEach} ms)`, 'best ops/s', 'median ops/s', 'µs/op (median)', 'rounds min..max', 'disturbed rounds', 'failed calls'],
    names.map((n) => [
      n,
      n0(t.best[n]!),
      n0(t.median[n]!),
      (1e6 / t.median[n]!).toFixed(1),
      `${n0(Math.min(...t.rounds.map((r) => r.results[n]!.opsPerSec)))}..${n0(Math.max(...t.rounds.map((r) => r.results[n]!.opsPerSec)))}`,
      t.rounds.filter((r) => r.disturbed).length,
      t.failures[n] ?? 0,
    ]),
    [false, true, true, true, true, true, true],
  );
}

export function loadTable(gates: LoadGate[]): string {
  return table(
    ['phase', '1-min load before', 'at start', 'waited s', 'at end', `below ${gates[0]?.threshold ?? '?'} at start`],
    gates.map((g) => [g.phase, g.before.toFixed(2), g.atStart.toFixed(2), (g.waitedMs / 1000).toFixed(0), g.atEnd === undefined ? '-' : g.atEnd.toFixed(2), g.calm ? 'yes' : 'NO']),
    [false, true, true, true, true, false],
  );
}

export function feedTargets(s: PropagationSummary, t: ThroughputReport): TargetCheck[] {
  const unexpected = Object.entries(s.codes).filter(([k]) => k !== 'revoked/task_closed').reduce((a, [, v]) => a + v, 0);
  const propValid = s.trials >= 1 && unexpected === 0 && s.trialsRevokedNotOne === 0;
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  const tpFailed = Object.values(t.failures).some((x) => x > 0);
  return [
    {
      target: `revocation propagation p99 < 50 ms (last of ${s.verifiers} verifier processes, from the close answer)`,
      measured: `p50 ${ms(s.propagation.p50)} / p99 ${ms(s.propagation.p99)} / max ${ms(s.propagation.max)} ms over ${s.trials} trials${unexpected ? `; ${unexpected} refusals for another reason` : ''}`,
      value: s.propagation.p99,
      verdict: !propValid ? 'INVALID' : s.propagation.p99 < 50 ? 'PASS' : 'MISS',
    },
    {
      target: 'trials with any verifier still accepting 1 s after the close = 0',
      measured: `${s.trialsStillAcceptingAt1s} of ${s.trials}`,
      value: s.trialsStillAcceptingAt1s,
      verdict: !propValid ? 'INVALID' : s.trialsStillAcceptingAt1s === 0 && s.verifiersNeverRefused === 0 ? 'PASS' : 'MISS',
    },
    {
      target: 'verifier.verify >= 90% of raw jose.jwtVerify ops/s (same key and token)',
      measured:
        `${pct(t.medianRatioBare)} of jose key-only (median of ${t.ratioBare.length} paired rounds, range ${pct(Math.min(...t.ratioBare))}..${pct(Math.max(...t.ratioBare))}; pooled ${pct(t.pooledRatioBare)}); ` +
        `${pct(t.medianRatioOpts)} of jose with the verifier's own options (pooled ${pct(t.pooledRatioOpts)})`,
      value: t.medianRatioBare,
      verdict: tpFailed ? 'INVALID' : t.medianRatioBare >= 0.9 ? 'PASS' : 'MISS',
    },
  ];
}
