/**
 * The agent's and orchestrator's client: task-bound access tokens (cached, renewed, collapsed) and task
 * management (open, show, close, withTask).
 */
import type { FetchLike } from '../http.js';
import type { AttestationSource } from './attestation.js';
import { delegateExchange, exchange, type AccessToken, type DelegationRequest, type TokenRequest } from './exchange.js';
import { taskApi, type TaskClosed, type TaskSpec, type TaskView } from './tasks.js';
import { TokenCache } from './token-cache.js';
import { withTask, type WithTaskOptions } from './with-task.js';
import { requestCertificate, type CertificateRequest, type IssuedCertificate } from './certificate.js';
import { dpopProof, type DpopKey } from './dpop.js';

export interface ClientOptions {
  brokerUrl: string;
  /** The agent's (or orchestrator's) proof of identity. */
  attestation: AttestationSource;
  /** Fraction of a token's lifetime after which it is renewed (0 < renewAt <= 1). Default 0.8. */
  renewAt?: number;
  /** Task calls with an operator token instead of the attestation. */
  operatorToken?: string;
  /** Bind every token to this key (DPoP, RFC 9449): see `createDpopKey` and `authHeaders`. */
  dpop?: DpopKey;
  fetch?: FetchLike;
  clock?: { now(): number };
}

export interface MayflyClient {
  /** A token for the task: cached per (task, scope, audience, tools), renewed at `renewAt`, never expired. */
  token(req: TokenRequest): Promise<AccessToken>;
  openTask(spec: TaskSpec): Promise<TaskView>;
  getTask(id: string): Promise<TaskView>;
  /** Closes the task; from then on this client refuses to hand out tokens for it. */
  closeTask(id: string): Promise<TaskClosed>;
  withTask<T>(spec: TaskSpec, fn: (task: TaskView, signal: AbortSignal) => Promise<T>, opts?: WithTaskOptions): Promise<T>;
  /** An X.509-SVID for the task: a fresh P-256 key and its certificate (POST /v1/certificates). */
  certificate(req: CertificateRequest): Promise<IssuedCertificate>;
  /**
   * Delegation (RFC 8693 §1.1): a token for this client's agent from one another agent of the task
   * handed over (`subjectToken`), at most what that token allows; it ends when the handed-over token
   * is revoked or its agent locked. Not cached.
   */
  delegated(req: DelegationRequest): Promise<AccessToken>;
  /** Drops cached tokens (of one task, or all). */
  forget(taskId?: string): void;
  /**
   * The headers that present `token` for one request: `Authorization: Bearer …`, or for a DPoP-bound
   * token `Authorization: DPoP …` plus a fresh `DPoP` proof for this method and URL.
   */
  authHeaders(token: AccessToken, request: { method: string; url: string; nonce?: string }): Promise<Record<string, string>>;
  /**
   * `fetch` with `token` presented (authHeaders). For a DPoP-bound token, the resource server's latest
   * nonce (RFC 9449 §9, its `DPoP-Nonce` header) is kept per origin and put in the next proofs, and a
   * 401 `use_dpop_nonce` is retried once with the nonce it carries. A retried body must be replayable
   * (a string, bytes, URLSearchParams), not a stream.
   */
  fetch(token: AccessToken, url: string, init?: RequestInit): Promise<Response>;
}

/** Resource servers' DPoP nonces remembered per origin (RFC 9449 §9): a few, the oldest forgotten first. */
const MAX_SERVER_NONCES = 256;

export function createClient(o: ClientOptions): MayflyClient {
  const renewAt = o.renewAt ?? 0.8;
  if (!(renewAt > 0 && renewAt <= 1)) throw new RangeError('renewAt must be in (0, 1]');
  const f: FetchLike = o.fetch ?? ((...a) => fetch(...a));
  const now = () => (o.clock ? o.clock.now() : Date.now());
  const serverNonces = new Map<string, string>();
  const rememberNonce = (origin: string, nonce: string) => {
    serverNonces.delete(origin);
    if (serverNonces.size >= MAX_SERVER_NONCES) serverNonces.delete(serverNonces.keys().next().value!);
    serverNonces.set(origin, nonce);
  };
  const authHeaders = async (t: AccessToken, req: { method: string; url: string; nonce?: string }): Promise<Record<string, string>> => {
    if (t.tokenType === 'Bearer') return { authorization: `Bearer ${t.token}` };
    if (!o.dpop) throw new Error('a DPoP-bound token needs the DPoP key it is bound to');
    return { authorization: `DPoP ${t.token}`, dpop: await dpopProof(o.dpop, req.method, req.url, t.token, now(), req.nonce) };
  };
  const cache = new TokenCache(now, async (r) => {
    const subject = await o.attestation.token();
    return exchange(o.brokerUrl, f, subject, r, now(), renewAt, proofFor());
  });
  const proofFor = () => {
    const dpop = o.dpop;
    return dpop ? (url: string, nonce?: string) => dpopProof(dpop, 'POST', url, undefined, now(), nonce) : undefined;
  };
  const tasks = taskApi(o.brokerUrl, async () => o.operatorToken ?? (await o.attestation.token()), f);
  const closeTask = async (id: string) => {
    cache.taskEnded(id);
    return tasks.close(id);
  };
  return {
    token: (r) => cache.get(r),
    openTask: (spec) => tasks.open(spec),
    getTask: (id) => tasks.get(id),
    closeTask,
    withTask: (spec, fn, opts) => withTask(tasks, (id) => cache.taskEnded(id), spec, fn, opts),
    certificate: (req) => requestCertificate(o.brokerUrl, f, o.attestation, req),
    delegated: async (req) => delegateExchange(o.brokerUrl, f, await o.attestation.token(), req, now(), renewAt, proofFor()),
    forget: (id) => cache.forget(id),
    authHeaders,
    fetch: async (t, url, init = {}) => {
      const method = init.method ?? 'GET';
      const origin = new URL(url).origin;
      const send = async (nonce: string | undefined) => {
        const headers = new Headers(init.headers);
        for (const [k, v] of Object.entries(await authHeaders(t, { method, url, ...(nonce ? { nonce } : {}) }))) headers.set(k, v);
        const res = await f(url, { ...init, method, headers });
        const next = res.headers.get('dpop-nonce');
        if (next && t.tokenType === 'DPoP') rememberNonce(origin, next);
        return res;
      };
      const res = await send(serverNonces.get(origin));
      const challenge = res.headers.get('www-authenticate') ?? '';
      if (t.tokenType !== 'DPoP' || res.status !== 401 || !/error="use_dpop_nonce"/.test(challenge) || !res.headers.get('dpop-nonce')) return res;
      await res.body?.cancel();
      return send(serverNonces.get(origin));
    },
  };
}
