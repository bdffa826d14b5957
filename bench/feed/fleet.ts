/**
 * The verifier children: started through bench/lib/child.ts (tsx loader, bounded output, stop by pid,
 * registered with the cleanup), addressed over IPC, and their clocks calibrated against this process.
 */
import { startChild, type Child } from '../lib/child.js';
import type { Cleanup } from '../lib/cleanup.js';
import { median } from '../lib/stats.js';
import { isFromChild, wallNow, type ChildConfig, type FromChild, type Refusal, type ToChild } from './protocol.js';

export interface ClockSample {
  index: number;
  /** Child clock minus this process's clock (ms), from the ping with the shortest round trip. */
  offsetMs: number;
  /** That shortest round trip (ms); the offset is known to within half of it. */
  rttMs: number;
  /** Median round trip over all pings (ms). */
  medianRttMs: number;
}

type Waiter = { match: (m: FromChild) => boolean; resolve: (m: FromChild) => void };

export class VerifierFleet {
  /** Per child: child clock − our clock (ms); subtracted from every child timestamp. */
  offsets: number[];
  private waiters: Waiter[][];
  private refusalSinks = new Map<number, (r: Refusal) => void>();
  private fatal: string | undefined;

  private constructor(readonly children: Child[]) {
    this.offsets = children.map(() => 0);
    this.waiters = children.map(() => []);
    children.forEach((c, i) =>
      c.onMessage((m) => {
        if (!isFromChild(m)) return;
        if (m.type === 'fatal') this.fatal = `verifier ${i}: ${m.message}`;
        if (m.type === 'refused') this.refusalSinks.get(m.trial)?.(m);
        const ws = this.waiters[i]!;
        const k = ws.findIndex((w) => w.match(m));
        if (k >= 0) ws.splice(k, 1)[0]!.resolve(m);
      }),
    );
  }

  static async start(root: string, n: number, base: Omit<ChildConfig, 'index'>, cleanup: Cleanup, log: (m: string) => void): Promise<VerifierFleet> {
    // a few at a time: each start is a tsx load plus a JWKS fetch and a stream snapshot
    const children: Child[] = [];
    const failures: string[] = [];
    for (let i = 0; i < n; i += 4) {
      const batch = await Promise.allSettled(
        Array.from({ length: Math.min(4, n - i) }, (_, k) =>
          startChild({ name: `verifier ${i + k}`, args: ['bench/feed/verifier-child.ts', JSON.stringify({ ...base, index: i + k } satisfies ChildConfig)], ipc: true, readyTimeoutMs: 30_000 }, root),
        ),
      );
      for (const r of batch) {
        if (r.status === 'fulfilled') {
          children.push(r.value);
          cleanup.defer(r.value.name, () => r.value.stop());
        } else failures.push((r.reason as Error).message);
      }
    }
    if (failures.length) throw new Error(`${failures.length} verifier(s) did not start:\n${failures.join('\n')}`);
    log(`${n} verifier processes synced to the revocation stream (pids ${children.map((c) => c.pid).join(' ')})`);
    return new VerifierFleet(children);
  }

  get size(): number {
    return this.children.length;
  }

  private send(i: number, m: ToChild): void {
    if (!this.children[i]!.send(m)) throw new Error(`verifier ${i} is gone:\n${this.children[i]!.output()}`);
  }

  private expect<T extends FromChild>(i: number, match: (m: FromChild) => m is T, timeoutMs: number, what: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const w: Waiter = {
        match,
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m as T);
        },
      };
      const timer = setTimeout(() => {
        const ws = this.waiters[i]!;
        ws.splice(ws.indexOf(w), 1);
        reject(new Error(`verifier ${i}: no ${what} within ${timeoutMs} ms${this.fatal ? ` (${this.fatal})` : ''}\n${this.children[i]!.output()}`));
      }, timeoutMs);
      this.waiters[i]!.push(w);
    });
  }

  /**
   * NTP-style: stamp, ping, the child stamps, pong, stamp. With the shortest round trip of `pings`, the
   * child's clock minus ours is childAt − (sent + received) / 2, within ± rtt / 2.
   */
  async calibrate(pings = 25): Promise<ClockSample[]> {
    const out: ClockSample[] = [];
    let id = 0;
    for (let i = 0; i < this.size; i++) {
      const samples: { offset: number; rtt: number }[] = [];
      for (let k = 0; k < pings; k++) {
        const myId = ++id;
        const pong = this.expect(i, (m): m is Extract<FromChild, { type: 'pong' }> => m.type === 'pong' && m.id === myId, 5000, 'pong');
        const sent = wallNow();
        this.send(i, { type: 'ping', id: myId });
        const p = await pong;
        const received = wallNow();
        samples.push({ offset: p.at - (sent + received) / 2, rtt: received - sent });
      }
      const best = samples.reduce((a, b) => (b.rtt < a.rtt ? b : a));
      out.push({ index: i, offsetMs: best.offset, rttMs: best.rtt, medianRttMs: median(samples.map((s) => s.rtt)) });
    }
    return out;
  }

  useOffsets(samples: ClockSample[]): void {
    for (const s of samples) this.offsets[s.index] = s.offsetMs;
  }

  /** Every verifier checks the token once (must be accepted), then watches it. Throws if any refuses. */
  async arm(trial: number, token: string, taskId: string): Promise<void> {
    const answers = await Promise.all(
      this.children.map((_, i) => {
        const p = this.expect(i, (m): m is Extract<FromChild, { type: 'armed' }> => m.type === 'armed' && m.trial === trial, 10_000, 'armed');
        this.send(i, { type: 'arm', trial, token, taskId });
        return p;
      }),
    );
    const bad = answers.filter((a) => !a.ok);
    if (bad.length) throw new Error(`trial ${trial}: a fresh token was refused before the close by verifier(s) ${bad.map((a) => `${a.index} (${a.code})`).join(', ')}`);
  }

  /** Routes the trial's refusals (child clock converted to ours) to `fn` until the returned function is called. */
  onRefusal(trial: number, fn: (r: Refusal) => void): () => void {
    this.refusalSinks.set(trial, (r) => {
      const off = this.offsets[r.index] ?? 0;
      fn({ ...r, at: r.at - off, checkStartedAt: r.checkStartedAt - off, chunkAt: r.chunkAt === null ? null : r.chunkAt - off });
    });
    return () => void this.refusalSinks.delete(trial);
  }

  /** Asks the given verifiers to verify right now; resolves with who still accepts the token. */
  async probe(trial: number, which: number[]): Promise<{ index: number; ok: boolean; code: string | null }[]> {
    return Promise.all(
      which.map((i) => {
        const p = this.expect(i, (m): m is Extract<FromChild, { type: 'probe' }> => m.type === 'probe' && m.trial === trial, 10_000, 'probe answer');
        this.send(i, { type: 'probe', trial });
        return p.then((a) => ({ index: i, ok: a.ok, code: a.code }));
      }),
    );
  }

  /**
   * Every verifier starts watching its feed for `marker` (resolves once all acknowledged); the returned
   * `seen` resolves with each one's arrival time (our clock) of the first chunk containing it.
   */
  async watch(id: number, marker: string, timeoutMs: number): Promise<{ seen: Promise<number[]> }> {
    const seen = Promise.all(
      this.children.map((_, i) =>
        this.expect(i, (m): m is Extract<FromChild, { type: 'seen' }> => m.type === 'seen' && m.id === id, timeoutMs, `feed chunk with ${marker}`).then(
          (s) => s.at - (this.offsets[i] ?? 0),
        ),
      ),
    );
    seen.catch(() => undefined); // observed by the caller; never an unhandled rejection meanwhile
    await Promise.all(
      this.children.map((_, i) => {
        const p = this.expect(i, (m): m is Extract<FromChild, { type: 'watching' }> => m.type === 'watching' && m.id === id, 5000, 'watch acknowledgement');
        this.send(i, { type: 'watch', id, marker });
        return p;
      }),
    );
    return { seen };
  }

  disarm(trial: number): void {
    for (let i = 0; i < this.size; i++) this.send(i, { type: 'disarm', trial });
  }

  async statuses(): Promise<unknown[]> {
    return Promise.all(
      this.children.map((_, i) => {
        const p = this.expect(i, (m): m is Extract<FromChild, { type: 'status' }> => m.type === 'status', 5000, 'status');
        this.send(i, { type: 'status' });
        return p.then((s) => s.status);
      }),
    );
  }

  async stop(): Promise<void> {
    await Promise.all(this.children.map((c) => c.stop()));
  }
}
