/**
 * Revocation propagation: per trial, open a task, exchange a token, have every verifier accept it,
 * close the task, and time (on the shared wall clock, see protocol.ts) when each verifier first refuses.
 *
 *   t_send   just before POST /v1/tasks/{id}/close is written (one kept-alive node:http connection)
 *   t0       when its 200 answer has been read (the clock the target counts from)
 *   t_i      when verifier i's verify() first resolved with a refusal
 *   propagation = max_i t_i − t0
 *
 * The broker writes the feed event *before* it flips the task's state (src/tasks/tasks.ts), so a
 * verifier may refuse before t0: a negative time is kept as measured (it is not clamped to zero).
 * At t0 + 1 s every verifier that has not refused yet is asked to verify once more; one that still
 * accepts makes the trial a "still accepting after 1 s" trial.
 */
import { TimedClient } from '../lib/http-timing.js';
import type { MayflyClient } from '../lib/mayfly-client.js';
import { sleep } from '../lib/net.js';
import type { VerifierFleet } from './fleet.js';
import { wallNow, type DetectedBy, type Refusal } from './protocol.js';

export interface Observation {
  index: number;
  /** ms after t0 (negative: before the close answered). */
  atMs: number;
  by: DetectedBy;
  code: string;
  reason: string | null;
  /** ms after t0 that the chunk carrying the event reached the verifier (null: not seen). */
  chunkMs: number | null;
  /** The verify() call that saw the refusal (ms). */
  verifyMs: number;
  checks: number;
}

export interface Trial {
  trial: number;
  taskId: string;
  /** Our wall clock at t_send (ms since the epoch). */
  sentAt: number;
  /** t0 − t_send: the close's HTTP round trip. */
  closeMs: number;
  revoked: number;
  /** The event's stream id (`<ms>-<seq>`; the ms part is Redis's clock at XADD, truncated to the ms). */
  eventId: string | null;
  /** Stream-id ms − t_send (ms resolution). */
  xaddMs: number | null;
  observations: Observation[];
  /** max over verifiers − t0; Infinity when one had not refused by the end of the wait. */
  propagationMs: number;
  /** max over verifiers − t_send. */
  fromSendMs: number;
  /** min over verifiers − t0. */
  firstMs: number;
  /** Verifiers that still accepted the token when probed at t0 + 1 s. */
  stillAcceptingAt1s: number;
  /** Verifiers that never refused within the whole wait. */
  neverRefused: number;
}

export interface PropagationOptions {
  trials: number;
  warmup: number;
  /** Wait this long after t0 before probing stragglers. */
  probeAfterMs: number;
  /** Then wait up to this much longer for their refusals. */
  lateWaitMs: number;
  /** A random pause of up to this many ms between trials (no phase-locking with timers). */
  jitterMs: number;
}

function waitFor(p: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<void>((r) => (timer = setTimeout(r, Math.max(0, ms))))]).finally(() => clearTimeout(timer));
}

export async function runPropagation(client: MayflyClient, fleet: VerifierFleet, o: PropagationOptions, log: (m: string) => void): Promise<Trial[]> {
  const http = new TimedClient(client.baseUrl);
  const out: Trial[] = [];
  try {
    for (let n = -o.warmup; n < o.trials; n++) {
      const t = await oneTrial(n, client, http, fleet, o);
      if (n >= 0) out.push(t);
      if (n >= 0 && (n + 1) % 50 === 0) log(`  ${n + 1}/${o.trials} trials`);
      await sleep(5 + Math.random() * o.jitterMs);
    }
  } finally {
    http.close();
  }
  return out;
}

async function oneTrial(trial: number, client: MayflyClient, http: TimedClient, fleet: VerifierFleet, o: PropagationOptions): Promise<Trial> {
  const taskId = await client.openTask();
  const token = await client.exchange(taskId);
  await fleet.arm(trial, token, taskId);

  const got = new Map<number, Refusal>();
  let allIn!: () => void;
  const all = new Promise<void>((r) => (allIn = r));
  const stop = fleet.onRefusal(trial, (r) => {
    if (!got.has(r.index)) got.set(r.index, r);
    if (got.size === fleet.size) allIn();
  });
  let stillAcceptingAt1s = 0;
  let sentAt: number;
  let t0: number;
  let revoked: number;
  try {
    sentAt = wallNow();
    const res = await http.json<{ state?: string; revoked?: number }>(client.closeRequest(taskId), 200);
    t0 = wallNow();
    if (res.value.state !== 'closed') throw new Error(`close of ${taskId} answered ${JSON.stringify(res.value)}`);
    revoked = res.value.revoked ?? -1;
    await waitFor(all, t0 + o.probeAfterMs - wallNow());
    if (got.size < fleet.size) {
      const missing = [...Array(fleet.size).keys()].filter((i) => !got.has(i));
      const probes = await fleet.probe(trial, missing);
      stillAcceptingAt1s = probes.filter((p) => p.ok).length;
      await waitFor(all, o.lateWaitMs);
    }
  } finally {
    stop();
    fleet.disarm(trial);
  }

  const observations: Observation[] = [...got.values()]
    .sort((a, b) => a.index - b.index)
    .map((r) => ({
      index: r.index,
      atMs: r.at - t0,
      by: r.by,
      code: r.code,
      reason: r.reason,
      chunkMs: r.chunkAt === null ? null : r.chunkAt - t0,
      verifyMs: r.at - r.checkStartedAt,
      checks: r.checks,
    }));
  const eventId = [...got.values()].find((r) => r.eventId !== null)?.eventId ?? null;
  const eventMs = eventId === null ? null : Number(eventId.split('-')[0]);
  const neverRefused = fleet.size - got.size;
  const ats = observations.map((x) => x.atMs);
  const last = neverRefused > 0 ? Infinity : Math.max(...ats);
  return {
    trial,
    taskId,
    sentAt,
    closeMs: t0 - sentAt,
    revoked,
    eventId,
    xaddMs: eventMs === null ? null : eventMs - sentAt,
    observations,
    propagationMs: last,
    fromSendMs: last + (t0 - sentAt),
    firstMs: ats.length ? Math.min(...ats) : Infinity,
    stillAcceptingAt1s,
    neverRefused,
  };
}
