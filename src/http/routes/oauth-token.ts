/**
 * POST /oauth/token: RFC 8693 token exchange. Form parameters: grant_type, subject_token,
 * subject_token_type, task_id (Mayfly extension), scope, tools (extension, space-separated), audience
 * and resource (repeatable), requested_token_type. Response per RFC 8693 §2.2.1, Cache-Control: no-store.
 * With a `DPoP` proof header (RFC 9449): a token bound to the proof's key, `token_type: DPoP`.
 * Over mTLS (listen.tls) with a client certificate: a token bound to it (RFC 8705 §3, `cnf.x5t#S256`),
 * and the certificate itself may be the attestation (subject_token_type CERTIFICATE_TOKEN_TYPE,
 * subject_token its thumbprint; attest/client-certificate.ts).
 * `may_act` (repeatable, SPIFFE IDs or `/*` prefixes): only those agents may receive the token by
 * delegation (RFC 8693 §4.4 claim); a delegated token keeps its parent's, or narrows it.
 * Delegation (RFC 8693 §1.1): subject_token_type access_token with the parent token, and actor_token
 * (+ actor_token_type) with the actor's attestation; task_id optional (the parent's). issue/delegate.ts.
 */
import type { Context, Hono } from 'hono';
import type { Broker } from '../../broker.js';
import { MayflyError } from '../../errors.js';
import { exchangeToken, type ExchangeRequest } from '../../issue/exchange.js';
import { delegateToken } from '../../issue/delegate.js';
import { isAudience, isScopeToken, splitList } from '../../ids/tokens.js';
import { isAgentPattern, trustDomainOf } from '../../ids/spiffe.js';
import { param, readForm } from '../body.js';
import { checkDpopProof } from '../../attest/dpop-proof.js';
import { isJoinToken, JOIN_TOKEN_TYPE, joinTokenHash } from '../../attest/join-token.js';
import { TASK_ID } from '../../tasks/tasks.js';
import { CERTIFICATE_TOKEN_TYPE, ownCertificate } from '../../attest/client-certificate.js';
import type { Confirmation } from '../../issue/access-token.js';
import { clientCertificate } from '../client-certificate.js';
import { sendError } from '../errors.js';

export const GRANT_TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const TT_JWT = 'urn:ietf:params:oauth:token-type:jwt';
export const TT_ID_TOKEN = 'urn:ietf:params:oauth:token-type:id_token';
export const TT_ACCESS_TOKEN = 'urn:ietf:params:oauth:token-type:access_token';

const invalid = (msg: string, reason = 'malformed_request') => new MayflyError('invalid_request', msg, { reason });

function list(form: Map<string, string[]>, name: string, valid: (s: string) => boolean, code: 'invalid_scope' | 'invalid_request' | 'invalid_target'): string[] | undefined {
  const raw = param(form, name, 4096);
  if (raw === undefined) return undefined;
  const items = splitList(raw);
  if (!items || !items.every(valid)) throw new MayflyError(code, `malformed ${name} (space-separated printable ASCII tokens)`, { reason: 'malformed_request' });
  return items;
}

/** An attestation's token type must fit the token: a JWT, a join token, or a certificate thumbprint. */
function checkProofType(type: string, token: string, name: 'subject_token' | 'actor_token'): void {
  const types = `${TT_JWT}, ${JOIN_TOKEN_TYPE} or ${CERTIFICATE_TOKEN_TYPE}`;
  if (type === JOIN_TOKEN_TYPE) {
    if (!isJoinToken(token)) throw invalid(`${name} is not a join token (${name}_type ${JOIN_TOKEN_TYPE})`, 'unsupported_token_type');
  } else if (type === CERTIFICATE_TOKEN_TYPE) {
    if (!X5T.test(token)) throw invalid(`${name} must be the x5t#S256 thumbprint of the client certificate (base64url SHA-256)`, 'unsupported_token_type');
  } else if (type !== TT_JWT && type !== TT_ID_TOKEN) throw invalid(`${name}_type must be ${types}`, 'unsupported_token_type');
  else if (isJoinToken(token)) throw invalid(`a join token goes with ${name}_type ${JOIN_TOKEN_TYPE}`, 'unsupported_token_type');
}

const X5T = /^[A-Za-z0-9_-]{43}$/;

/** What a refusal before the exchange itself must still account for (the exchange audits its own). */
interface Presented {
  /** The exchange (or delegation) was reached: it audits its refusals and redeems join tokens itself. */
  exchanging: boolean;
  taskId?: string;
  joinTokens: string[];
}

/**
 * Every refusal is an audit event with its reason, and a join token is spent by its first presentation
 * whatever the outcome: a request refused before the exchange (a malformed parameter, a DPoP proof, a
 * certificate that does not match) records its denial and spends the join token here. With DPoP nonces
 * required, every answer carries the next one (RFC 9449 §8.2), refusals too.
 */
export function tokenRoute(app: Hono, b: Broker): void {
  app.post('/oauth/token', async (c) => {
    const seen: Presented = { exchanging: false, joinTokens: [] };
    try {
      return await tokenExchange(b, c, seen);
    } catch (e) {
      if (!(e instanceof MayflyError)) throw e;
      if (!seen.exchanging) {
        b.audit.record('token.denied', { ...(seen.taskId && TASK_ID.test(seen.taskId) ? { task_id: seen.taskId } : {}), reason: e.reason });
        const now = b.clock.now();
        await Promise.all(seen.joinTokens.map((t) => b.store.takeJoinToken(joinTokenHash(t), now).catch(() => null)));
      }
      const res = sendError(c, e);
      if (b.dpopNonces) res.headers.set('DPoP-Nonce', b.dpopNonces.current(b.clock.now()));
      return res;
    }
  });
}

async function tokenExchange(b: Broker, c: Context, seen: Presented): Promise<Response> {
  const form = await readForm(c, ['audience', 'resource', 'may_act']);
  for (const name of ['subject_token', 'actor_token']) {
    const t = form.get(name)?.[0];
    if (t !== undefined && isJoinToken(t)) seen.joinTokens.push(t);
  }
  seen.taskId = form.get('task_id')?.[0];
  const grantType = param(form, 'grant_type');
  if (!grantType) throw invalid('missing grant_type');
  if (grantType !== GRANT_TOKEN_EXCHANGE)
    throw new MayflyError('unsupported_grant_type', `only ${GRANT_TOKEN_EXCHANGE} is supported`, { reason: 'unsupported_grant_type' });
  const subjectToken = param(form, 'subject_token');
  if (!subjectToken) throw invalid('missing subject_token');
  const stt = param(form, 'subject_token_type');
  if (!stt) throw invalid('missing subject_token_type');
  const delegation = stt === TT_ACCESS_TOKEN;
  const actorToken = param(form, 'actor_token');
  const att = param(form, 'actor_token_type');
  const cert = clientCertificate(b, c);
  if (delegation) {
    // RFC 8693 §2.1: delegation needs the actor's own proof; an access token alone is refused
    if (!actorToken) throw invalid('delegation: an access token as subject_token needs actor_token (the actor\'s attestation)', 'actor_token_missing');
    if (!att) throw invalid('missing actor_token_type');
    checkProofType(att, actorToken, 'actor_token');
  } else checkProofType(stt, subjectToken, 'subject_token');
  if (!delegation && (form.has('actor_token') || form.has('actor_token_type')))
    throw invalid(`actor_token goes with subject_token_type ${TT_ACCESS_TOKEN} (delegation)`, 'unsupported_token_type');
  const byCertificate = (delegation ? att : stt) === CERTIFICATE_TOKEN_TYPE;
  if (byCertificate) {
    const named = delegation ? actorToken! : subjectToken;
    if (!cert) throw invalid('no client certificate on this connection: attesting with a certificate needs mTLS (listen.tls)', 'certificate_missing');
    if (named !== cert.thumbprint)
      throw invalid(`${delegation ? 'actor_token' : 'subject_token'} is not the x5t#S256 thumbprint of the client certificate presented`, 'certificate_mismatch');
  }
  const rtt = param(form, 'requested_token_type') ?? TT_ACCESS_TOKEN;
  if (rtt !== TT_ACCESS_TOKEN && rtt !== TT_JWT) throw invalid(`requested_token_type must be ${TT_ACCESS_TOKEN}`, 'unsupported_token_type');
  const taskId = param(form, 'task_id');
  if (!taskId && !delegation) throw invalid('missing task_id');
  if (taskId !== undefined && !TASK_ID.test(taskId)) throw invalid('unknown task_id', 'task_unknown');

  const scopes = list(form, 'scope', isScopeToken, 'invalid_scope');
  const tools = list(form, 'tools', isScopeToken, 'invalid_scope');
  const targets = [...(form.get('audience') ?? []), ...(form.get('resource') ?? [])].filter((s) => s !== '');
  if (targets.length > 32 || !targets.every(isAudience)) throw new MayflyError('invalid_target', 'malformed audience/resource', { reason: 'malformed_request' });
  const audiences = targets.length ? [...new Set(targets)] : undefined;
  // RFC 8693 §4.4 (as a request parameter: Mayfly extension): who may receive this token by delegation
  const mayActRaw = (form.get('may_act') ?? []).filter((x) => x !== '');
  if (mayActRaw.length > 16 || !mayActRaw.every(isAgentPattern))
    throw invalid('may_act must be SPIFFE IDs (or prefixes ending in /*), at most 16', 'malformed_request');
  // an actor of another trust domain is none this broker could ever attest
  if (!mayActRaw.every((p) => trustDomainOf(p) === b.config.trustDomain))
    throw invalid(`may_act names actors of this broker's trust domain (${b.config.trustDomain}) only`, 'malformed_request');
  const mayAct = mayActRaw.length ? [...new Set(mayActRaw)] : undefined;

  const now = b.clock.now();
  // RFC 9449 §8.2: a fresh nonce in every token endpoint answer, when nonces are required
  const nonce: Record<string, string> = b.dpopNonces ? { 'DPoP-Nonce': b.dpopNonces.current(now) } : {};
  const jkt = await checkDpopProof(b, c.req.header('dpop'), now);

  // RFC 9449: bound to the DPoP key when a proof came; else RFC 8705 §3: to the client certificate
  const cnf: Confirmation | undefined = jkt ? { jkt } : cert ? { 'x5t#S256': cert.thumbprint } : undefined;
  const grants: Omit<ExchangeRequest, 'subjectToken' | 'taskId'> = { ...(scopes ? { scopes } : {}), ...(tools ? { tools } : {}), ...(audiences ? { audiences } : {}), ...(cnf ? { cnf } : {}), ...(mayAct ? { mayAct } : {}) };
  const proof = (token: string) => (byCertificate ? cert! : token);
  // bound to one of this broker's certificates, attested otherwise (a JWT over mTLS): the exchange
  // checks it is of the token's task, and the token is revoked with it (exchange.ts boundCertificate)
  const own = cert && !jkt && !byCertificate ? ownCertificate(b, cert, now) : null;
  if (own) grants.boundCertificate = own;
  seen.exchanging = true;
  const r = delegation
    ? await delegateToken(b, { subjectToken, actorToken: proof(actorToken!), ...(taskId ? { taskId } : {}), ...grants })
    : await exchangeToken(b, {
        subjectToken: proof(subjectToken),
        taskId: taskId!,
        ...grants,
      });
  return c.json(
    {
      access_token: r.accessToken,
      issued_token_type: rtt,
      token_type: jkt ? 'DPoP' : 'Bearer', // RFC 9449 §5
      expires_in: r.expiresIn,
      scope: r.claims.scope,
    },
    200,
    { 'Cache-Control': 'no-store', Pragma: 'no-cache', ...nonce },
  );
}
