/**
 * The resource-server verifier: offline signature and RFC 9068 checks against the broker's JWKS, then
 * the in-memory revocation mirror kept current by the revocation feed, decided by the broker's own
 * `verdict()`. The hot path is jose's `jwtVerify` plus a few map lookups; all feed work runs in the
 * background. When the mirror cannot be trusted (never synced, or out of touch for longer than
 * `maxStalenessMs`) it fails closed with `stale`, or asks the broker (introspection) when allowed.
 */
import { endpoint, type BrokerCredentials, type FetchLike } from '../http.js';
import { checkDpop, DPOP_ALGORITHMS, type DpopRequest } from './dpop.js';
import { DpopNonces } from '../../attest/dpop-nonce.js';
import type { Feed, FeedMode, FeedStatus } from './feed.js';
import { PollFeed } from './feed-poll.js';
import { StreamFeed } from './feed-stream.js';
import { createIntrospector } from './introspection.js';
import { brokerKeys } from './keys.js';
import { RevocationMirror, type MirrorCounts } from './mirror.js';
import { checkCertificateBinding, checkClientCertificate, type CertificateCheckOptions, type CertificateInput, type CertificateResult } from './mtls.js';
import { ReplayCache } from './replay-cache.js';
import { UsageReporter, type UsageOptions } from './usage.js';
import { fail, revoked, type VerifyResult } from './result.js';
import { checkToken, DEFAULT_ALGORITHMS, type TokenCheckConfig } from './token-check.js';

export interface VerifierOptions extends BrokerCredentials {
  /** The broker's issuer URL (the `iss` of its tokens). */
  issuer: string;
  /** Where to reach the broker, when not at the issuer URL (a proxy, a sidecar). */
  brokerUrl?: string;
  /** Default: `<brokerUrl>/.well-known/jwks.json`. */
  jwksUri?: string;
  /** `stream` (SSE), `poll` (GET /v1/revocations), or `none` (signature only; revocation only at `exp`, or by introspection). */
  feed: FeedMode;
  /** Poll interval (poll feed). Default 5 s. */
  pollIntervalMs?: number;
  /** How long the mirror may be out of touch before verification fails closed. Default 30 s. */
  maxStalenessMs?: number;
  /** Stream feed: a connection silent this long (real time) is replaced. Default `maxStalenessMs`; keep above the broker heartbeat (15 s). */
  idleTimeoutMs?: number;
  /** When the mirror is stale (or `feed: 'none'`), ask the broker's introspection endpoint instead of refusing. */
  introspectionFallback?: boolean;
  fetch?: FetchLike;
  /** Time source for token and proof checks and staleness (tests pass a manual clock). */
  clock?: { now(): number };
  /** Allowed token algorithms. */
  algorithms?: string[];
  /** Tolerance for `iat`/`nbf` in the future, seconds. Default 30 (as the broker). */
  clockToleranceS?: number;
  /** Mirror entries older than this are dropped (they only concern expired credentials). Default 24 h. */
  retentionMs?: number;
  /** jose remote JWKS: minimum time between refetches for an unknown kid (default 30 s) and cache age (default 10 min). */
  jwksCooldownMs?: number;
  jwksCacheMaxAgeMs?: number;
  dpop?: {
    maxAgeS?: number;
    skewS?: number;
    replayCacheSize?: number;
    algorithms?: string[];
    /**
     * RFC 9449 §9: require proofs to carry a nonce this resource server issued. A proof without one (or
     * with a stale one) is refused `use_dpop_nonce` with a fresh nonce to retry with (verifyRequest and
     * the hono middleware answer 401 with it in `DPoP-Nonce`); accepted requests get the current one.
     * Nonces are stateless: replicas configured with the same `secret` (at least 32 bytes) accept each
     * other's; each is good for `lifetimeMs` (default 5 min) to twice that.
     */
    nonce?: { secret: string | Uint8Array; lifetimeMs?: number };
  };
  /**
   * Report each decision about a token whose signature verified (allowed, or refused with its code) to
   * the broker's audit (POST /v1/audit/usage, with the client credentials), batched off the request path.
   */
  reportUsage?: boolean | UsageOptions;
}

export interface VerifyOptions {
  /** The audience (resource) this server answers for; the token's `aud` must contain one of them. */
  audience: string | string[];
  /** Every one of these must be in the token's `scope`. */
  scopes?: readonly string[];
  /** The tool being called must be in the token's `tools`. */
  tool?: string;
  /** The request, for DPoP-bound tokens (and to refuse the DPoP scheme with an unbound token). */
  dpop?: DpopRequest;
  /**
   * The client certificate of the request's TLS connection (mTLS), for certificate-bound tokens
   * (RFC 8705 §3: `cnf.x5t#S256` must be its SHA-256 thumbprint). A bound token without it is refused.
   */
  clientCertificate?: CertificateInput;
  /** The request, for usage reports (method and path). */
  request?: { method: string; url: string };
}

export interface VerifierStatus {
  feed: FeedStatus | { mode: 'none' };
  /** Whether the mirror can be trusted right now. */
  fresh: boolean;
  mirror: MirrorCounts;
  jwks: { fresh: boolean; coolingDown: boolean };
}

export interface Verifier {
  verify(token: string, opts: VerifyOptions): Promise<VerifyResult>;
  /** Starts the feed; resolves at the first complete sync (rejects after `timeoutMs`, default `maxStalenessMs`, while it keeps trying). */
  start(opts?: { timeoutMs?: number }): Promise<void>;
  close(): void;
  status(): VerifierStatus;
  /** Sends the queued usage reports now (reportUsage); resolves when they are sent or dropped. */
  flushUsage(): Promise<void>;
  /** mTLS: a client certificate against a trust bundle and the revoked serials of the mirror. */
  checkCertificate(cert: CertificateInput, opts: Omit<CertificateCheckOptions, 'revocation' | 'now'>): CertificateResult;
}

const systemClock = { now: () => Date.now() };
const FEED_MODES = ['stream', 'poll', 'none'] as const satisfies readonly FeedMode[];

export function createVerifier(o: VerifierOptions): Verifier {
  const brokerUrl = o.brokerUrl ?? o.issuer;
  const f: FetchLike = o.fetch ?? ((...a) => fetch(...a));
  const clock = o.clock ?? systemClock;
  const fixedClock = o.clock !== undefined;
  const maxStalenessMs = o.maxStalenessMs ?? 30_000;
  // a misspelt or missing mode must not quietly mean `none` (no revocation check but at exp)
  if (!(FEED_MODES as readonly unknown[]).includes(o.feed)) throw new TypeError(`feed must be one of ${FEED_MODES.map((m) => `'${m}'`).join(', ')} (got ${JSON.stringify(o.feed)})`);
  if (o.feed === 'poll' && (o.pollIntervalMs ?? 5000) >= maxStalenessMs) throw new RangeError('pollIntervalMs must be below maxStalenessMs, or the mirror goes stale between polls');
  const credentials: BrokerCredentials = { clientId: o.clientId, clientSecret: o.clientSecret, operatorToken: o.operatorToken };
  const jwks = brokerKeys(o.jwksUri ?? endpoint(brokerUrl, '/.well-known/jwks.json'), f, { cooldownMs: o.jwksCooldownMs ?? 30_000, cacheMaxAgeMs: o.jwksCacheMaxAgeMs ?? 600_000 });
  const cfg: TokenCheckConfig = { issuer: o.issuer, algorithms: o.algorithms ?? DEFAULT_ALGORITHMS, clockToleranceS: o.clockToleranceS ?? 30 };
  const dpopCfg = {
    algorithms: o.dpop?.algorithms ?? DPOP_ALGORITHMS,
    maxAgeS: o.dpop?.maxAgeS ?? 60,
    skewS: o.dpop?.skewS ?? 5,
    replay: new ReplayCache(o.dpop?.replayCacheSize),
    ...(o.dpop?.nonce ? { nonces: DpopNonces.fromSecret(o.dpop.nonce.secret, o.dpop.nonce.lifetimeMs ?? 300_000) } : {}),
  };
  const mirror = new RevocationMirror();
  const feedOpts = { brokerUrl, credentials, fetch: f, clock, mirror, retentionMs: o.retentionMs ?? 86_400_000, requestTimeoutMs: Math.max(1000, Math.min(maxStalenessMs, 10_000)) };
  const feed: Feed | undefined =
    o.feed === 'stream' ? new StreamFeed(feedOpts, o.idleTimeoutMs ?? maxStalenessMs) : o.feed === 'poll' ? new PollFeed(feedOpts, o.pollIntervalMs ?? 5000) : undefined;
  const introspector = o.introspectionFallback ? createIntrospector(brokerUrl, credentials, f) : undefined;

  const fresh = (now: number) => feed !== undefined && feed.isFresh(now, maxStalenessMs);

  async function online(token: string): Promise<VerifyResult | null> {
    if (!introspector) return null;
    try {
      return (await introspector.active(token)) ? null : revoked('introspection_inactive', 'the broker reports the credential inactive');
    } catch (e) {
      return fail('stale', `revocation state unknown and introspection failed: ${(e as Error).message}`);
    }
  }

  const usage = o.reportUsage ? new UsageReporter(brokerUrl, credentials, f, () => clock.now(), o.reportUsage === true ? {} : o.reportUsage) : undefined;

  async function verify(token: string, v: VerifyOptions): Promise<VerifyResult> {
    const now = clock.now();
    const r = await checkToken(token, jwks.resolve, cfg, v.audience, now, fixedClock);
    if (!r.ok) return r; // not signed by the broker, or not for us: nothing trustworthy to report
    let out = await decide(token, r, v, now);
    if (out.ok && dpopCfg.nonces && v.dpop) out = { ...out, dpopNonce: dpopCfg.nonces.current(now) };
    if (usage) {
      const req = v.request ?? (v.dpop ? { method: v.dpop.method, url: v.dpop.url } : {});
      usage.add(r.claims, out, { ...(v.tool ? { tool: v.tool } : {}), audience: [v.audience].flat()[0]!, ...req });
    }
    return out;
  }

  /** After the signature and claims: binding, revocation, scopes and tool. */
  async function decide(token: string, r: VerifyResult & { ok: true }, v: VerifyOptions, now: number): Promise<VerifyResult> {
    const c = r.claims;
    if (c.cnf?.['x5t#S256'] !== undefined) {
      const b = checkCertificateBinding(c.cnf['x5t#S256'], v.clientCertificate);
      if (b) return b;
      if (v.dpop?.scheme === 'DPoP') return fail('dpop_invalid', 'token is bound to a client certificate, not a DPoP key');
    } else if (c.cnf !== undefined || v.dpop !== undefined) {
      const d = await checkDpop(token, c.cnf?.jkt, v.dpop, now, dpopCfg);
      if (d) return d;
    }
    if (feed === undefined) {
      const answer = await online(token);
      if (answer) return answer;
    } else if (fresh(now)) {
      const vd = mirror.verdict(c, now);
      if (!vd.active) return vd.reason === 'expired' ? fail('expired', 'token has expired') : revoked(vd.reason === 'invalid' ? 'task_unknown' : vd.reason);
    } else {
      const answer = introspector
        ? await online(token)
        : fail('stale', feed.status().synced ? `revocation feed out of touch for more than ${maxStalenessMs} ms` : 'revocation feed has not synced yet');
      if (answer) return answer;
    }
    if (v.scopes !== undefined && v.scopes.length > 0) {
      const have = c.scope.split(' ');
      for (const s of v.scopes) if (!have.includes(s)) return fail('insufficient_scope', `token lacks scope ${s}`);
    }
    if (v.tool !== undefined && !c.tools.includes(v.tool)) return fail('tool_not_allowed', `token does not allow tool ${v.tool}`);
    return r;
  }

  return {
    verify,
    async start(s = {}) {
      if (!feed) return;
      feed.start();
      const timeoutMs = s.timeoutMs ?? maxStalenessMs;
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`revocation feed did not sync within ${timeoutMs} ms${feed.status().lastError ? `: ${feed.status().lastError}` : ''}`)), timeoutMs);
      });
      try {
        await Promise.race([feed.whenSynced(), timeout]);
      } finally {
        clearTimeout(timer);
      }
    },
    close() {
      feed?.close();
      void usage?.close();
    },
    flushUsage: () => usage?.flush() ?? Promise.resolve(),
    status() {
      return { feed: feed ? feed.status() : { mode: 'none' }, fresh: fresh(clock.now()), mirror: mirror.counts(), jwks: { fresh: jwks.fresh, coolingDown: jwks.coolingDown } };
    },
    checkCertificate(cert, opts) {
      if (feed && !fresh(clock.now())) return { ok: false, code: 'stale', message: 'revocation feed out of touch: cannot tell whether the certificate is revoked' };
      return checkClientCertificate(cert, { ...opts, now: clock.now(), ...(feed ? { revocation: mirror } : {}) });
    },
  };
}
