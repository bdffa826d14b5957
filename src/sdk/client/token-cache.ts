/**
 * Tokens per (task, scope, audience, tools): reused until the renewal point, renewed once (concurrent
 * callers share one request), never handed out at or past expiry, and never again for a task the broker
 * (or this client) has seen end.
 */
import { BrokerError } from '../http.js';
import { TaskClosedError, taskEndReason, type TaskEndReason } from './errors.js';
import { list, type AccessToken, type TokenRequest } from './exchange.js';

interface Entry {
  taskId: string;
  current?: AccessToken;
  inflight?: Promise<AccessToken>;
}

export function cacheKey(r: TokenRequest): string {
  const norm = (v: string | readonly string[] | undefined) => {
    const l = list(v);
    return l === undefined ? null : [...new Set(l)].sort();
  };
  return JSON.stringify([r.task, norm(r.scope), norm(r.audience), norm(r.tools), norm(r.mayAct)]);
}

export class TokenCache {
  private entries = new Map<string, Entry>();
  private ended = new Map<string, TaskEndReason>();

  constructor(
    private now: () => number,
    private fetchToken: (r: TokenRequest) => Promise<AccessToken>,
    /** A renewal that fails for a transient reason falls back to the current token while it has this long left. */
    private minValidityMs = 1000,
  ) {}

  async get(r: TokenRequest): Promise<AccessToken> {
    this.refuseEnded(r.task);
    const key = cacheKey(r);
    let e = this.entries.get(key);
    if (!e) this.entries.set(key, (e = { taskId: r.task }));
    const cur = e.current;
    if (cur && this.now() < cur.renewAt && this.now() < cur.expiresAt) return cur;
    try {
      const t = await this.renew(e, r);
      this.refuseEnded(r.task);
      if (this.now() >= t.expiresAt) throw new Error('the broker issued a token that expired on arrival');
      return t;
    } catch (err) {
      const reason = taskEndReason(err);
      if (reason) {
        this.taskEnded(r.task, reason);
        throw new TaskClosedError(r.task, reason);
      }
      if (err instanceof TaskClosedError) throw err;
      const retryable = !(err instanceof BrokerError) || err.retryable;
      if (cur && retryable && this.now() < cur.expiresAt - this.minValidityMs) return cur;
      throw err;
    }
  }

  /** The task is over: forget its tokens and refuse it from now on. */
  taskEnded(taskId: string, reason: TaskEndReason = 'closed'): void {
    this.ended.set(taskId, reason);
    for (const [k, e] of this.entries) if (e.taskId === taskId) this.entries.delete(k);
  }

  forget(taskId?: string): void {
    for (const [k, e] of this.entries) if (taskId === undefined || e.taskId === taskId) this.entries.delete(k);
  }

  private refuseEnded(taskId: string): void {
    const reason = this.ended.get(taskId);
    if (reason) throw new TaskClosedError(taskId, reason);
  }

  private renew(e: Entry, r: TokenRequest): Promise<AccessToken> {
    if (e.inflight) return e.inflight;
    const p = this.fetchToken(r).then((t) => {
      if (!this.ended.has(e.taskId)) e.current = t;
      return t;
    });
    e.inflight = p;
    p.then(
      () => (e.inflight === p ? (e.inflight = undefined) : undefined),
      () => (e.inflight === p ? (e.inflight = undefined) : undefined),
    );
    return p;
  }
}
