/**
 * Closing a task that holds many active tokens: the HTTP round trip of POST /v1/tasks/{id}/close on an
 * idle broker (next to the round trip of GET /healthz, the HTTP floor), the server-side time of the
 * close script (SLOWLOG, when the bench owns Redis), and a client-timed ZCOUNT over the task's
 * credential zset (the O(log N) step the close relies on). A fresh task per run; one untimed close of
 * an empty task first, so script loading and JIT warm-up are not counted.
 */
import type { Redis } from 'ioredis';
import { fire } from './load.js';
import type { MayflyClient } from './mayfly-client.js';
import { sleep } from './net.js';
import { Slowlog } from './slowlog.js';
import { median } from './stats.js';
import type { StoreKeys } from './store-keys.js';
import { TimedClient } from './http-timing.js';

export interface CloseRun {
  taskId: string;
  minted: number;
  mintRps: number;
  zcard: number;
  httpMs: number;
  /** GET /healthz round trip just before (median of 5): what any request costs. */
  healthzMs: number;
  revoked: number;
  /** Server-side µs of the close script (EVALSHA), from SLOWLOG; null when not measurable. */
  scriptMicros: number | null;
  /** Server-side µs of every Redis command the close request caused, summed. */
  allCommandsMicros: number | null;
  zcountMs: number;
  zcountMicros: number | null;
}

export interface CloseReport {
  tokens: number;
  runs: CloseRun[];
  medianHttpMs: number;
  medianScriptMicros: number | null;
  medianZcountMs: number;
  allRevokedMatch: boolean;
}

const BENCH_COMMANDS = new Set(['config', 'slowlog', 'zcount']);

export interface CloseOptions {
  tokens: number;
  runs: number;
  connections: number;
  keys: StoreKeys;
  /** SLOWLOG is reconfigured only on a Redis the bench owns. */
  canSlowlog: boolean;
  /** Awaited right before each timed close (e.g. wait for the machine to go quiet). */
  beforeTiming?: () => Promise<unknown>;
}

export async function measureClose(client: MayflyClient, redis: Redis, o: CloseOptions): Promise<CloseReport> {
  const { tokens, runs } = o;
  const out: CloseRun[] = [];
  const http = new TimedClient(client.baseUrl);
  try {
    const warm = await client.openTask();
    await http.json(client.closeRequest(warm), 200);
    for (let i = 0; i < runs; i++) out.push(await closeOnce(client, http, redis, o));
  } finally {
    http.close();
  }
  const scripts = out.map((r) => r.scriptMicros).filter((x): x is number => x !== null);
  return {
    tokens,
    runs: out,
    medianHttpMs: median(out.map((r) => r.httpMs)),
    medianScriptMicros: scripts.length ? median(scripts) : null,
    medianZcountMs: median(out.map((r) => r.zcountMs)),
    allRevokedMatch: out.every((r) => r.revoked === tokens),
  };
}

async function closeOnce(client: MayflyClient, http: TimedClient, redis: Redis, o: CloseOptions): Promise<CloseRun> {
  const { tokens, canSlowlog } = o;
  const credsKey = o.keys.creds;
  const taskId = await client.openTask();
  const mint = await fire(client.baseUrl, client.exchangeRequest(taskId), tokens, o.connections);
  const zcard = await redis.zcard(credsKey(taskId));
  await sleep(300); // let the broker's fire-and-forget audit writes drain: time the close on an idle server
  await o.beforeTiming?.();

  const hz: number[] = [];
  for (let k = 0; k < 5; k++) hz.push((await http.send({ method: 'GET', path: '/healthz' })).ms);

  const slow = canSlowlog ? new Slowlog(redis) : undefined;
  await slow?.start();
  const { value: closed, ms: httpMs } = await http.json<{ revoked: number }>(client.closeRequest(taskId), 200);
  const zt: number[] = [];
  for (let k = 0; k < 5; k++) {
    const s = performance.now();
    const n = await redis.zcount(credsKey(taskId), `(${Date.now()}`, '+inf');
    zt.push(performance.now() - s);
    if (n !== tokens) throw new Error(`ZCOUNT gave ${n}, expected ${tokens}`);
  }
  const entries = (await slow?.stop()) ?? [];
  // everything in the window except the bench's own commands was caused by the close request
  const ours = entries.filter((e) => !BENCH_COMMANDS.has(e.args[0]?.toLowerCase() ?? ''));
  const script = entries.find((e) => /^eval(sha)?$/i.test(e.args[0] ?? '') && e.args.includes(credsKey(taskId)));
  const zc = entries.filter((e) => e.args[0]?.toLowerCase() === 'zcount').map((e) => e.micros);
  return {
    taskId,
    minted: mint.ok2xx,
    mintRps: mint.rps,
    zcard,
    httpMs,
    healthzMs: median(hz),
    revoked: closed.revoked,
    scriptMicros: script ? script.micros : null,
    allCommandsMicros: canSlowlog ? ours.reduce((a, e) => a + e.micros, 0) : null,
    zcountMs: median(zt),
    zcountMicros: zc.length ? median(zc) : null,
  };
}
