/**
 * GET /v1/ca/crl with many revoked serials. One fresh task gets N certificates over HTTP (autocannon,
 * the CSR pool cycled; half through each broker process below, after one small task issued, closed
 * and fetched through the replica so its code paths are warm), then it is closed (the close answer
 * must say `revoked: N`), then, on kept-alive connections (bench/lib/http-timing.ts) to otherwise idle
 * brokers:
 *   - at once, the first fetch after the close from a second broker process on the same store and CA
 *     (a replica that made none of the revocations). It learns of the close from the feed and would
 *     take the new CRL in the background 25 ms later (src/ca/crl-service.ts watch); a fetch this early
 *     finds the closing process still building it and does the whole build itself (the task's N
 *     serials expanded, DER written, signed) inside the request, or takes the closing process's shared
 *     build if it is already stored. With SLOWLOG, its Redis side;
 *   - the first fetch from the process that closed the task, on the connection that closed it: it
 *     started its rebuild when it closed the task, so this fetch joins or finds it;
 *   - K more fetches: served from the closing process's cache (checked: byte-identical), median, p90;
 *   - R fetches from the replica, each at once after revoking (through the other process, which
 *     rebuilds and shares) one serial that the CRL already lists (the CRL still lists exactly N
 *     serials): a rebuild in the request, or the shared build.
 * The target is judged on the median of the replica's fetches (its first after the close and the R
 * after a revocation: certs/report.ts), each of them shown.
 * `openssl crl -inform DER -noout -text` must count N "Serial Number" lines in the first CRLs of both
 * and the last one, and `openssl crl -CAfile <bundle>` must verify their signatures. Fetches before the
 * close (the CRL without this task) warm both, so no timed fetch is JIT start-up.
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { collectGarbage } from '../lib/gc.js';
import { TimedClient } from '../lib/http-timing.js';
import { fire } from '../lib/load.js';
import type { MayflyClient } from '../lib/mayfly-client.js';
import { sleep } from '../lib/net.js';
import { Slowlog } from '../lib/slowlog.js';
import { median } from '../lib/stats.js';
import type { StoreKeys } from '../lib/store-keys.js';
import type { BenchCsr } from './csr.js';
import { certificateRequest } from './mayfly-certs.js';

export interface CrlOptions {
  certs: number;
  connections: number;
  cachedFetches: number;
  rebuilds: number;
  agentJwt: string;
  orchJwt: string;
  operatorToken: string;
  csrs: readonly BenchCsr[];
  keys: StoreKeys;
  /** SLOWLOG only on a Redis the bench owns. */
  canSlowlog: boolean;
  dir: string;
  /**
   * Another broker process on the same store and CA that makes none of the revocations: on its first
   * fetch after each one it builds the CRL itself, unless the build that the revoking process started
   * in the background is already stored (src/ca/crl-service.ts refresh, obtain).
   */
  replicaBase: string;
  beforeTiming?: () => Promise<unknown>;
}

export interface CrlReport {
  certs: number;
  issue: { rps: number; p50: number; p99: number };
  taskIssued: number;
  closeRevoked: number;
  closeHttpMs: number;
  healthzMs: number;
  beforeClose: { ms: number; bytes: number; serials: number };
  /** From the process that closed the task, on the connection that closed it: it joins the rebuild the close started. */
  first: { ms: number; bytes: number; serials: number; redisMicros: number | null; redisCommands: number | null; verify: string };
  /** From the replica, on its first fetch after the close: its own build (or the shared one, if already stored). */
  replicaFirst: { ms: number; serials: number; verify: string };
  /** The read a rebuild makes for the closed task, timed from the bench over ioredis (ZRANGEBYSCORE ... WITHSCORES): round trip + reply decoding, median of 5. */
  zrangeMs: number;
  zrangeMicros: number | null;
  cached: { n: number; medianMs: number; p90Ms: number; maxMs: number; identical: boolean };
  /** From the replica, after each serial revocation made through the other process. */
  rebuilds: { ms: number[]; medianMs: number; serials: number; verify: string };
}

const BENCH_COMMANDS = new Set(['config', 'slowlog']);

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] ?? NaN;
}

/** `openssl crl`: the number of "Serial Number" lines, and the signature check against the CA bundle. */
function inspectCrl(der: Buffer, file: string, caFile: string): { serials: number; verify: string } {
  writeFileSync(file, der);
  const text = spawnSync('openssl', ['crl', '-inform', 'DER', '-in', file, '-noout', '-text'], { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (text.status !== 0) throw new Error(`openssl crl -text failed: ${text.stderr}`);
  const serials = text.stdout.split('\n').filter((l) => l.includes('Serial Number')).length;
  const v = spawnSync('openssl', ['crl', '-inform', 'DER', '-in', file, '-CAfile', caFile, '-noout'], { encoding: 'utf8' });
  const verify = `${v.stdout}${v.stderr}`.trim().split('\n').pop() ?? '';
  return { serials, verify: v.status === 0 && /verify OK/i.test(verify) ? 'verify OK' : `FAILED: ${verify}` };
}

export async function measureCrl(client: MayflyClient, redis: Redis, o: CrlOptions): Promise<CrlReport> {
  const base = client.baseUrl;
  const caFile = join(o.dir, 'mayfly-ca-bundle.pem');
  writeFileSync(caFile, await (await fetch(`${base}/v1/ca/bundle`)).text());

  // The replica serves part of the issuance and one small close before the timed one, as a replica in
  // a deployment has: its rebuild is then timed with its code paths warm, not on its first-ever CRL
  // of a closed task (a freshly started process takes 2-4x longer once; not what relying parties see).
  const warmTask = await client.openTask();
  await fire(o.replicaBase, certificateRequest(o.agentJwt, warmTask, o.csrs), Math.min(500, o.certs), o.connections);
  await client.send(client.closeRequest(warmTask), 200);
  for (let i = 0; i < 3; i++) await fetch(`${o.replicaBase}/v1/ca/crl`).then((r) => r.arrayBuffer());

  const taskId = await client.openTask();
  const half = Math.floor(o.certs / 2);
  const issue = await fire(base, certificateRequest(o.agentJwt, taskId, o.csrs), o.certs - half, o.connections);
  await fire(o.replicaBase, certificateRequest(o.agentJwt, taskId, o.csrs), half, o.connections);
  const view = (await (await fetch(`${base}/v1/tasks/${encodeURIComponent(taskId)}`, { headers: { authorization: `Bearer ${o.orchJwt}` } })).json()) as {
    credentials?: { issued?: number };
  };
  const taskIssued = view.credentials?.issued ?? -1;
  if (taskIssued !== o.certs) throw new Error(`task ${taskId} shows ${taskIssued} issued credentials, expected ${o.certs}`);
  const someSerials = await redis.zrange(`${o.keys.task(taskId)}:certs`, '0', String(o.rebuilds - 1));
  if (someSerials.length < o.rebuilds) throw new Error(`task ${taskId} has only ${someSerials.length} certificate serials in Redis`);

  const http = new TimedClient(base);
  const replica = new TimedClient(o.replicaBase);
  const crlFrom = async (c: TimedClient, what: string) => {
    const r = await c.sendBytes({ method: 'GET', path: '/v1/ca/crl' });
    if (r.status !== 200) throw new Error(`GET /v1/ca/crl (${what}): HTTP ${r.status}: ${r.body.toString().slice(0, 300)}`);
    return r;
  };
  const crl = (what: string) => crlFrom(http, what);
  try {
    // the CRL without this task, fetched a few times from both: code path warm, cache filled
    let before = await crl('before the close');
    for (let i = 0; i < 3; i++) before = await crl('before the close');
    for (let i = 0; i < 4; i++) await crlFrom(replica, 'replica, before the close');
    const beforeInfo = inspectCrl(before.body, join(o.dir, 'crl-before.der'), caFile);

    await sleep(300); // the broker's fire-and-forget audit writes drain: time on an idle server
    await o.beforeTiming?.();
    await collectGarbage();
    const hz: number[] = [];
    for (let k = 0; k < 5; k++) hz.push((await http.send({ method: 'GET', path: '/healthz' })).ms);
    const { value: closed, ms: closeHttpMs } = await http.json<{ revoked: number }>(client.closeRequest(taskId), 200);
    // at once, from the replica: it learns of the close from the feed and would take the new CRL in
    // the background 25 ms later; a fetch now builds it, unless the closing process's build is stored
    const slow = o.canSlowlog ? new Slowlog(redis) : undefined;
    await slow?.start();
    const replicaFirst = await crlFrom(replica, 'replica, first after the close');
    const entries = (await slow?.stop()) ?? [];
    const ours = entries.filter((e) => !BENCH_COMMANDS.has(e.args[0]?.toLowerCase() ?? ''));
    if (closed.revoked !== o.certs) throw new Error(`closing the task revoked ${closed.revoked}, expected ${o.certs}`);
    // then the closing process, which started its rebuild when it closed the task
    const first = await crl('first after the close');
    const firstInfo = inspectCrl(first.body, join(o.dir, 'crl-first.der'), caFile);
    if (firstInfo.serials !== o.certs + beforeInfo.serials) throw new Error(`the first CRL after the close lists ${firstInfo.serials} serials, expected ${o.certs + beforeInfo.serials}`);
    const replicaInfo = inspectCrl(replicaFirst.body, join(o.dir, 'crl-replica-first.der'), caFile);
    if (replicaInfo.serials !== firstInfo.serials) throw new Error(`the replica's first CRL after the close lists ${replicaInfo.serials} serials, expected ${firstInfo.serials}`);

    const cachedMs: number[] = [];
    let identical = true;
    await collectGarbage();
    for (let i = 0; i < o.cachedFetches; i++) {
      const r = await crl('cached');
      cachedMs.push(r.ms);
      identical &&= r.body.equals(first.body);
    }

    const rebuildMs: number[] = [];
    let last = first.body;
    for (const serial of someSerials) {
      await sleep(100);
      await o.beforeTiming?.();
      await collectGarbage();
      const rv = await client.send({ method: 'POST', path: `/v1/certificates/${serial}/revoke`, headers: { authorization: `Bearer ${o.operatorToken}` }, body: '' }, 200);
      // at once, before the replica's feed-triggered rebuild (25 ms after the event): rebuilt in the request
      const r = await crlFrom(replica, 'replica, rebuild after a serial revocation');
      if ((rv as { status?: string }).status !== 'revoked') throw new Error(`revoking ${serial}: ${JSON.stringify(rv)}`);
      if (r.body.equals(last)) throw new Error('the CRL was not rebuilt after a serial revocation (same bytes)');
      rebuildMs.push(r.ms);
      last = r.body;
    }
    const lastInfo = inspectCrl(last, join(o.dir, 'crl-last.der'), caFile);

    // what the rebuild's biggest Redis read costs a Node client (the broker uses ioredis too)
    const certsKey = `${o.keys.task(taskId)}:certs`;
    const zr: number[] = [];
    const zslow = o.canSlowlog ? new Slowlog(redis) : undefined;
    await zslow?.start();
    for (let k = 0; k < 5; k++) {
      const t0 = performance.now();
      const flat = await redis.zrangebyscore(certsKey, `(${Date.now()}`, '+inf', 'WITHSCORES');
      zr.push(performance.now() - t0);
      if (flat.length !== 2 * o.certs) throw new Error(`ZRANGEBYSCORE gave ${flat.length / 2} members, expected ${o.certs}`);
    }
    const zentries = ((await zslow?.stop()) ?? []).filter((e) => e.args[0]?.toLowerCase() === 'zrangebyscore');

    return {
      certs: o.certs,
      issue: { rps: issue.rps, p50: issue.p50, p99: issue.p99 },
      taskIssued,
      closeRevoked: closed.revoked,
      closeHttpMs,
      healthzMs: median(hz),
      beforeClose: { ms: before.ms, bytes: before.body.length, serials: beforeInfo.serials },
      first: {
        ms: first.ms,
        bytes: first.body.length,
        serials: firstInfo.serials,
        redisMicros: slow ? ours.reduce((a, e) => a + e.micros, 0) : null,
        redisCommands: slow ? ours.length : null,
        verify: firstInfo.verify,
      },
      replicaFirst: {
        ms: replicaFirst.ms,
        serials: replicaInfo.serials,
        verify: replicaInfo.verify,
      },
      zrangeMs: median(zr),
      zrangeMicros: zentries.length ? median(zentries.map((e) => e.micros)) : null,
      cached: { n: cachedMs.length, medianMs: median(cachedMs), p90Ms: pct(cachedMs, 90), maxMs: Math.max(...cachedMs), identical },
      rebuilds: { ms: rebuildMs, medianMs: median(rebuildMs), serials: lastInfo.serials, verify: lastInfo.verify },
    };
  } finally {
    http.close();
    replica.close();
  }
}
