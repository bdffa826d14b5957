/**
 * Load generation with autocannon's programmatic API: a discarded warm-up, then the measured run.
 * A run is valid only with zero non-2xx answers, zero socket errors and zero timeouts.
 *
 * The bench processes run with `--no-allocation-site-pretenuring` (package.json). With V8's default,
 * autocannon's per-request objects (its queue entry, http-parser-js's state) get allocated straight in
 * the old generation once their allocation sites look long-lived, and then hold each response's body
 * string alive through the scavenges: every scavenge promoted ~4-5 MB and took 7-10 ms, every ~220 ms,
 * and each such pause was added to the latency of all 64 requests in flight, whichever server answered.
 * Measured against a trivial server (64 connections, 10 s): scavenges 4-7 → 0.6 ms, 45-53k → 68k
 * req/s, p99 6-7 → 2 ms; in the certificate bench, the load generator's CPU per request 33 → 25 µs.
 */
import autocannon from 'autocannon';
import type { CpuMonitor, CpuWindow } from './cpu-monitor.js';
import type { HttpRequestSpec } from './mayfly-client.js';

export interface LoadOptions {
  connections: number;
  durationS: number;
  warmupS: number;
  pipelining: number;
}

export interface LoadResult {
  name: string;
  rps: number;
  /** Latency percentiles in ms (autocannon records whole milliseconds). */
  p50: number;
  p90: number;
  p97_5: number;
  p99: number;
  p99_9: number;
  maxMs: number;
  avgLatencyMs: number;
  total: number;
  ok2xx: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  /** Answers the request's `verifyBody` rejected (present only when it has one). */
  mismatches?: number;
  durationS: number;
  connections: number;
  valid: boolean;
  /** CPU use during the measured window (null off Linux or without a monitor). */
  cpu: CpuWindow | null;
  /** Outside processes + steal used more than NOISY_PCT of a core during the window. */
  noisy: boolean;
}

/** Above this much outside CPU (percent of one core) a window counts as disturbed. */
export const NOISY_PCT = 25;

function shoot(url: string, req: HttpRequestSpec, opts: { connections: number; pipelining: number; duration?: number; amount?: number }) {
  const { bodies, verifyBody } = req;
  let clientIndex = 0;
  return autocannon({
    url: url + req.path,
    method: req.method,
    headers: req.headers,
    body: req.body,
    // each connection cycles through its own share of the bodies (connection i: bodies i, i + connections, …),
    // built into request bytes once when the connection is set up: a `setupRequest` per request rebuilt
    // every request and cost the load generator ~30 µs of CPU more per request, on the cores the servers use
    ...(bodies?.length ? { setupClient: (client: autocannon.Client) => client.setRequests(shareOf(bodies, clientIndex++, opts.connections)) } : {}),
    ...(verifyBody ? { verifyBody: (b: string | Buffer | undefined) => verifyBody(typeof b === 'string' ? b : String(b ?? '')) } : {}),
    connections: opts.connections,
    pipelining: opts.pipelining,
    timeout: 10,
    ...(opts.amount !== undefined ? { amount: opts.amount } : { duration: opts.duration ?? 1 }),
  });
}

/** Connection `i`'s share of `bodies`: every `connections`-th one from `i` on, wrapping so that none is empty. */
function shareOf(bodies: readonly string[], i: number, connections: number): autocannon.Request[] {
  const n = Math.max(1, Math.ceil(bodies.length / connections));
  const share: autocannon.Request[] = [];
  for (let k = 0; k < n; k++) share.push({ body: bodies[(i + k * connections) % bodies.length]! });
  return share;
}

function summarise(name: string, r: autocannon.Result, connections: number, verified = false): LoadResult {
  const mismatches = verified ? r.mismatches : 0;
  const bad = r.non2xx + r.errors + r.timeouts + mismatches;
  return {
    name,
    rps: r.requests.average,
    p50: r.latency.p50,
    p90: r.latency.p90,
    p97_5: r.latency.p97_5,
    p99: r.latency.p99,
    p99_9: r.latency.p99_9,
    maxMs: r.latency.max,
    avgLatencyMs: r.latency.average,
    total: r.requests.total,
    ok2xx: r['2xx'],
    non2xx: r.non2xx,
    errors: r.errors,
    timeouts: r.timeouts,
    ...(verified ? { mismatches } : {}),
    durationS: r.duration,
    connections,
    valid: bad === 0 && r.requests.total > 0,
    cpu: null,
    noisy: false,
  };
}

export async function runScenario(name: string, baseUrl: string, req: HttpRequestSpec, o: LoadOptions, monitor?: CpuMonitor): Promise<LoadResult> {
  if (o.warmupS > 0) {
    const w = await shoot(baseUrl, req, { connections: o.connections, pipelining: o.pipelining, duration: o.warmupS });
    const bad = w.non2xx + w.errors + w.timeouts + (req.verifyBody ? w.mismatches : 0);
    if (bad > 0) process.stderr.write(`[bench] ${name}: warm-up saw ${w.non2xx} non-2xx, ${w.errors} errors, ${w.timeouts} timeouts${req.verifyBody ? `, ${w.mismatches} bad bodies` : ''}\n`);
  }
  const snap = monitor?.start() ?? null;
  const r = await shoot(baseUrl, req, { connections: o.connections, pipelining: o.pipelining, duration: o.durationS });
  const cpu = monitor?.stop(snap) ?? null;
  return { ...summarise(name, r, o.connections, !!req.verifyBody), cpu, noisy: cpu !== null && cpu.other + cpu.steal > NOISY_PCT };
}

/** Exactly `amount` requests at the given concurrency (e.g. to mint N tokens); throws unless all are 2xx. */
export async function fire(baseUrl: string, req: HttpRequestSpec, amount: number, connections: number): Promise<LoadResult> {
  const t0 = performance.now();
  const raw = await shoot(baseUrl, req, { connections, pipelining: 1, amount });
  // per-second samples are meaningless for a run of a few seconds: rate over the wall time instead
  const r = { ...summarise('fire', raw, connections, !!req.verifyBody), rps: (raw['2xx'] * 1000) / (performance.now() - t0) };
  if (!r.valid || r.ok2xx !== amount)
    throw new Error(`${req.path}: ${amount} requests gave ${r.ok2xx} 2xx answers, ${r.non2xx} non-2xx, ${r.errors} errors, ${r.timeouts} timeouts${r.mismatches ? `, ${r.mismatches} bad bodies` : ''}`);
  return r;
}
