/**
 * Usage reports: what this resource server decided about each token whose signature verified, sent to
 * the broker in batches (POST /v1/audit/usage) so the task's audit trail shows every tool call made
 * with its credentials, allowed or refused. Off the request path: `add` only queues; a timer flushes
 * (at most 100 events per call). A full queue or a failed send drops events and counts them: reports
 * never slow down or fail a verification.
 */
import { authorization, endpoint, type BrokerCredentials, type FetchLike } from '../http.js';
import type { MayflyClaims, VerifyResult } from './result.js';

export interface UsageEvent {
  jti: string;
  task_id: string;
  decision: 'allowed' | 'refused';
  code?: string;
  tool?: string;
  audience?: string;
  method?: string;
  path?: string;
  at: string;
}

export interface UsageOptions {
  /** How often the queue is sent. Default 1 s. */
  flushMs?: number;
  /** Events kept waiting at most; beyond, new ones are dropped (and counted). Default 10,000. */
  maxQueue?: number;
}

const BATCH = 100;

export class UsageReporter {
  private queue: UsageEvent[] = [];
  private timer: NodeJS.Timeout;
  private sending: Promise<void> | undefined;
  sent = 0;
  dropped = 0;

  constructor(
    private readonly brokerUrl: string,
    private readonly credentials: BrokerCredentials,
    private readonly f: FetchLike,
    private readonly now: () => number,
    private readonly o: UsageOptions = {},
  ) {
    if (!authorization(credentials)) throw new TypeError('reportUsage needs client credentials (clientId/clientSecret) or an operator token');
    this.timer = setInterval(() => void this.flush(), o.flushMs ?? 1000);
    this.timer.unref();
  }

  /** Queues the decision about a token whose claims verified. */
  add(c: MayflyClaims, r: VerifyResult, req: { tool?: string; audience?: string; method?: string; url?: string }): void {
    if (this.queue.length >= (this.o.maxQueue ?? 10_000)) {
      this.dropped++;
      return;
    }
    let path: string | undefined;
    try {
      path = req.url ? new URL(req.url).pathname.slice(0, 512) : undefined;
    } catch {
      path = undefined;
    }
    this.queue.push({
      jti: c.jti,
      task_id: c.task_id,
      decision: r.ok ? 'allowed' : 'refused',
      ...(r.ok ? {} : { code: r.code }),
      ...(req.tool ? { tool: req.tool } : {}),
      ...(req.audience ? { audience: req.audience } : {}),
      ...(req.method ? { method: req.method.toUpperCase() } : {}),
      ...(path ? { path } : {}),
      at: new Date(this.now()).toISOString(),
    });
  }

  /** Sends what is queued (one call at a time); resolves when done. Never throws. */
  flush(): Promise<void> {
    this.sending ??= this.drain().finally(() => (this.sending = undefined));
    return this.sending;
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, BATCH);
      try {
        const res = await this.f(endpoint(this.brokerUrl, '/v1/audit/usage'), {
          method: 'POST',
          headers: { authorization: authorization(this.credentials)!, 'content-type': 'application/json' },
          body: JSON.stringify({ events: batch }),
        });
        await res.arrayBuffer();
        if (res.ok) this.sent += batch.length;
        else this.dropped += batch.length;
      } catch {
        this.dropped += batch.length;
      }
    }
  }

  close(): Promise<void> {
    clearInterval(this.timer);
    return this.flush();
  }
}
