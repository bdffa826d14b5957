/**
 * RFC 8693 token exchange for a task: attestation -> policy -> check-and-record -> sign -> audit.
 * Every refusal is audited with its reason and answered with the RFC error code the rule chose.
 */
import type { Broker } from '../broker.js';
import { MayflyError } from '../errors.js';
import { AttestationError } from '../attest/attestor.js';
import { isJoinToken, redeemJoinToken } from '../attest/join-token.js';
import type { Identity } from '../attest/attestation.js';
import { attestCertificate, type OwnCertificate, type PresentedCertificate } from '../attest/client-certificate.js';
import { decideExchange } from '../policy/exchange.js';
import { verdict } from '../revoke/active.js';
import { certificateStatus } from '../ca/status.js';
import { issuanceContext } from './issuance-context.js';
import { claimsFor, signAccessToken, type AccessTokenClaims, type Confirmation } from './access-token.js';
import type { ExchangeDraft } from '../policy/exchange-context.js';
import type { AuditFields } from '../audit/audit.js';

export interface ExchangeRequest {
  /** The attestation: a JWT or join token, or the client certificate of this mTLS connection. */
  subjectToken: string | PresentedCertificate;
  taskId: string;
  scopes?: string[];
  tools?: string[];
  audiences?: string[];
  /** Bind the token to a DPoP key (RFC 9449) or to the client certificate (RFC 8705). */
  cnf?: Confirmation;
  /** RFC 8693 §4.4: only these actors (SPIFFE IDs or `/*` prefixes) may receive it by delegation. */
  mayAct?: string[];
  /**
   * This broker's certificate the token is bound to (cnf x5t#S256) when another proof attested it (a
   * JWT over mTLS): it must be the token's agent's, of the token's task, and good (boundCertificateRefusal),
   * and revoking it revokes the token too.
   */
  boundCertificate?: OwnCertificate;
}

export interface ExchangeResult {
  accessToken: string;
  claims: AccessTokenClaims;
  expiresIn: number;
}

export async function attestOrRefuse(
  b: Broker,
  proof: string | PresentedCertificate,
  role: 'agent' | 'orchestrator',
  context: Record<string, string | undefined>,
  /** The request parameter the proof came in, for the error message. */
  param: 'subject_token' | 'actor_token' = 'subject_token',
): Promise<Identity> {
  try {
    if (typeof proof !== 'string') return await attestCertificate(b, proof, role);
    return isJoinToken(proof) ? await redeemJoinToken(b, proof, role) : await b.attestation.identify(proof, role);
  } catch (e) {
    if (!(e instanceof AttestationError)) throw e;
    // which grant was refused (a certificate's context says kind: certificate), and which certificate tried
    const certificate = role === 'agent' && context.kind === 'certificate';
    const fields = certificate ? { ...context, kind: undefined } : context;
    b.audit.record(role !== 'agent' ? 'task.denied' : certificate ? 'certificate.denied' : 'token.denied', {
      reason: e.reason,
      ...fields,
      ...(typeof proof !== 'string' ? { certificate: proof.thumbprint } : {}),
    });
    if (e.reason === 'attestor_unavailable') throw new MayflyError('temporarily_unavailable', e.message, { reason: e.reason });
    throw new MayflyError('invalid_request', `${param} rejected: ${e.message}`, { reason: e.reason });
  }
}

export async function exchangeToken(b: Broker, req: ExchangeRequest): Promise<ExchangeResult> {
  const identity = await attestOrRefuse(b, req.subjectToken, 'agent', { task_id: req.taskId });
  const deny = (code: ConstructorParameters<typeof MayflyError>[0], reason: string, description: string): never => {
    b.audit.record('token.denied', { agent: identity.spiffeId, task_id: req.taskId, reason });
    throw new MayflyError(code, description, { reason });
  };

  const ctx = await issuanceContext(b, identity, req.taskId, {
    ...(req.scopes ? { scopes: req.scopes } : {}),
    ...(req.tools ? { tools: req.tools } : {}),
    ...(req.audiences ? { audiences: req.audiences } : {}),
  });
  const { task, identityState, now, principalCutoff } = ctx;
  const decision = decideExchange(ctx);
  if ('refusal' in decision) return deny(decision.refusal.code, decision.refusal.reason, decision.refusal.description);
  const draft = decision.draft;
  const unbound = req.boundCertificate && (await boundCertificateRefusal(b, req.boundCertificate, task!.id, identity.spiffeId));
  if (unbound) return deny('invalid_request', ...unbound);

  const claims = draftClaims(b, { agent: identity.spiffeId, taskId: task!.id, ...(task!.onBehalfOf ? { onBehalfOf: task!.onBehalfOf } : {}), draft, now, ...(req.cnf ? { cnf: req.cnf } : {}), ...(req.mayAct ? { mayAct: req.mayAct } : {}) });
  // The same definition of "active" that introspection uses: never hand out a credential that would
  // already be inactive (e.g. minted in the very second an identity was unlocked after a lock).
  const v = verdict(claims, { task: task!, jtiRevoked: false, identity: identityState, principalRevokedBefore: principalCutoff }, now);
  if (!v.active) return deny('temporarily_unavailable', v.reason, 'identity was revoked within the last second; retry shortly');
  return recordAndSign(
    b,
    claims,
    now,
    deny,
    {
      ...(claims.act ? { on_behalf_of: claims.sub } : {}),
      aud: draft.audiences,
      ...bindingAudit(req.cnf),
    },
    identity.certificateSerial ?? req.boundCertificate?.serial,
  );
}

/**
 * Why a token of `agent` may not be bound to this broker's certificate `bound` (exchange.ts
 * boundCertificate) in `taskId`: a certificate of another task (it dies with its own) or of another
 * identity (its lock would not reach this token), or one whose status is not good
 * (revoked by its serial, a lock, its principal or its task; expired; unknown): [reason, description],
 * or undefined when it may.
 */
export async function boundCertificateRefusal(b: Broker, bound: OwnCertificate, taskId: string, agent: string): Promise<[string, string] | undefined> {
  if (bound.taskId !== taskId)
    return ['certificate_other_task', "the client certificate is this broker's certificate for another task: a token can be bound only to a certificate of its own task"];
  // a lock of that other identity would revoke the certificate and leave this token bound to it
  if (bound.spiffeId !== agent) return ['certificate_other_identity', `the client certificate is ${bound.spiffeId}'s: a token is bound only to its own agent's certificate`];
  const s = await certificateStatus(b, bound.serial);
  if (s.status !== 'good')
    return [`certificate_${s.status}`, `the client certificate presented ${s.status === 'revoked' ? 'was revoked' : s.status === 'expired' ? 'has expired' : 'is unknown to this broker'}: no token is bound to it`];
  return undefined;
}

/** Audit fields of a binding: the DPoP key or the certificate thumbprint. */
export const bindingAudit = (cnf: Confirmation | undefined): AuditFields =>
  cnf === undefined ? {} : 'jkt' in cnf ? { dpop_jkt: cnf.jkt } : { cert_x5t: cnf['x5t#S256'] };

/** The claims of a credential the policy drafted (a fresh jti; bound to a DPoP key when asked). */
export function draftClaims(
  b: Broker,
  g: { agent: string; taskId: string; onBehalfOf?: string; draft: ExchangeDraft; now: number; cnf?: Confirmation; mayAct?: string[] },
): AccessTokenClaims {
  return claimsFor(b.config.issuer, {
    agent: g.agent,
    taskId: g.taskId,
    ...(g.onBehalfOf ? { onBehalfOf: g.onBehalfOf } : {}),
    scopes: g.draft.scopes,
    tools: g.draft.tools,
    audiences: g.draft.audiences,
    jti: b.ids(16),
    issuedAt: g.now,
    expiresAt: g.now + g.draft.ttlMs,
    ...(g.cnf ? { cnf: g.cnf } : {}),
    ...(g.mayAct ? { mayAct: g.mayAct } : {}),
  });
}

const REFUSED_RECORD: Record<string, string> = {
  task_unknown: 'unknown task_id',
  certificate_revoked: 'the client certificate presented was revoked',
};

/**
 * Check-and-record in the task (refused once it is closed), sign, audit the grant. `attestedBy`: the
 * serial of the task's own certificate whose presentation attested the token (or that it is bound to),
 * which revoking that certificate revokes too (refused when it already was).
 */
export async function recordAndSign(
  b: Broker,
  claims: AccessTokenClaims,
  now: number,
  deny: (code: ConstructorParameters<typeof MayflyError>[0], reason: string, description: string) => never,
  audit: AuditFields,
  attestedBy?: string,
): Promise<ExchangeResult> {
  const outcome = await b.store.recordIssuance(
    { taskId: claims.task_id, jti: claims.jti, agent: claims.client_id, exp: claims.exp * 1000, iat: claims.iat * 1000, ...(attestedBy !== undefined ? { attestedBy } : {}) },
    now,
  );
  if (outcome !== 'ok') return deny('invalid_request', outcome, REFUSED_RECORD[outcome] ?? 'task is closed');
  const accessToken = signAccessToken(b.keyring, claims);
  try {
    await b.audit.grant('token.granted', { jti: claims.jti, task_id: claims.task_id, agent: claims.client_id, scope: claims.scope, tools: claims.tools, exp: claims.exp, ...audit });
  } catch (e) {
    // withheld: recorded but never handed out, so never active either
    await b.store.revokeJti(claims.task_id, claims.jti, claims.exp * 1000, now, claims.client_id, claims.iat * 1000).catch(() => undefined);
    throw e;
  }
  return { accessToken, claims, expiresIn: claims.exp - Math.floor(now / 1000) };
}
