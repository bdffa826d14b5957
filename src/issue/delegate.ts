/**
 * Delegation (RFC 8693 §1.1, §4.1): an agent that holds an active task token hands part of it to
 * another agent of the same task. The actor sends the token as `subject_token` (type access_token)
 * and its own attestation as `actor_token`; it gets a token for the same subject (`sub`) with itself
 * as the current actor (`act: {sub: actor, act: <the previous actor, if any>}`), `client_id` = actor,
 * and at most the parent's scopes, tools, audiences and lifetime, within the task's ceilings and the
 * actor's registration (policy/exchange.ts, with the parent as one more ceiling).
 *
 * Lineage: the new token lists the tokens it derives from (`lineage`, nearest first), and is active
 * only while every one of them would be: revoking the parent, or locking its agent, ends the child
 * too (revoke/active.ts through store.facts and the SDK mirror). Same task, so closing it ends all.
 */
import type { Broker } from '../broker.js';
import { MayflyError } from '../errors.js';
import { decideExchange } from '../policy/exchange.js';
import { verdict } from '../revoke/active.js';
import { checkToken } from '../revoke/introspect.js';
import { attestOrRefuse, bindingAudit, boundCertificateRefusal, draftClaims, recordAndSign, type ExchangeRequest, type ExchangeResult } from './exchange.js';
import { issuanceContext } from './issuance-context.js';
import { mayActPatterns, type AccessTokenClaims } from './access-token.js';
import { patternWithin } from '../ids/spiffe.js';
import type { PresentedCertificate } from '../attest/client-certificate.js';

export interface DelegationRequest extends Omit<ExchangeRequest, 'subjectToken' | 'taskId'> {
  /** The parent: an active Mayfly access token. */
  subjectToken: string;
  /** The actor's attestation (JWT, join token, or its client certificate on this mTLS connection). */
  actorToken: string | PresentedCertificate;
  /** Must be the parent's task when given. */
  taskId?: string;
}

const list = (aud: string | string[]) => (Array.isArray(aud) ? aud : [aud]);

export async function delegateToken(b: Broker, req: DelegationRequest): Promise<ExchangeResult> {
  // the actor first: whether a token is active is not told to callers who prove nothing
  // a refusal is told in the task's audit story: the task named, else the one of a subject token this
  // broker signed (read for the audit only; the caller learns nothing of it before its proof is checked)
  const signed = req.taskId === undefined ? b.accessTokens.verify(req.subjectToken, b.clock.now()) : undefined;
  const taskForAudit = req.taskId ?? (signed?.ok ? signed.claims.task_id : undefined);
  const actor = await attestOrRefuse(b, req.actorToken, 'agent', { ...(taskForAudit ? { task_id: taskForAudit } : {}), kind: 'delegation' }, 'actor_token');
  const parent = await checkToken(b, req.subjectToken);
  const p = parent.claims;
  if (!p || !parent.verdict.active) {
    const reason = `subject_token_${parent.verdict.active ? 'invalid' : parent.verdict.reason}`;
    b.audit.record('token.denied', { agent: actor.spiffeId, reason, ...(taskForAudit ? { task_id: taskForAudit } : {}) });
    throw new MayflyError('invalid_request', 'subject_token is not an active access token of this broker', { reason });
  }
  const deny = (code: ConstructorParameters<typeof MayflyError>[0], reason: string, description: string): never => {
    b.audit.record('token.denied', { agent: actor.spiffeId, task_id: p.task_id, parent_jti: p.jti, reason });
    throw new MayflyError(code, description, { reason });
  };
  if (req.taskId !== undefined && req.taskId !== p.task_id) return deny('invalid_request', 'task_mismatch', "task_id differs from the subject token's task");
  const unbound = req.boundCertificate && (await boundCertificateRefusal(b, req.boundCertificate, p.task_id, actor.spiffeId));
  if (unbound) return deny('invalid_request', ...unbound);

  // RFC 8693 §4.4: the child names who may act with it next; never more than the parent allows
  const parentMayAct = mayActPatterns(p.may_act);
  if (req.mayAct && parentMayAct && !req.mayAct.every((m) => parentMayAct.some((q) => patternWithin(m, q))))
    return deny('invalid_request', 'may_act_widened', 'may_act may only narrow the subject token\'s may_act');
  const childMayAct = req.mayAct ?? parentMayAct;
  const ctx = await issuanceContext(b, actor, p.task_id, {
    ...(req.scopes ? { scopes: req.scopes } : {}),
    ...(req.tools ? { tools: req.tools } : {}),
    ...(req.audiences ? { audiences: req.audiences } : {}),
  });
  const decision = decideExchange({
    ...ctx,
    parent: {
      clientId: p.client_id,
      scopes: p.scope ? p.scope.split(' ') : [],
      tools: p.tools,
      audiences: list(p.aud),
      expMs: p.exp * 1000,
      bound: p.cnf !== undefined,
      depth: p.lineage?.length ?? 0,
      ...(parentMayAct ? { mayAct: parentMayAct } : {}),
    },
  });
  if ('refusal' in decision) return deny(decision.refusal.code, decision.refusal.reason, decision.refusal.description);
  const { draft } = decision;
  const { task, now } = ctx;

  const claims: AccessTokenClaims = {
    ...draftClaims(b, { agent: actor.spiffeId, taskId: p.task_id, draft, now, ...(req.cnf ? { cnf: req.cnf } : {}), ...(childMayAct ? { mayAct: childMayAct } : {}) }),
    sub: p.sub,
    act: { sub: actor.spiffeId, ...(p.act ? { act: p.act } : {}) },
    lineage: [{ jti: p.jti, client_id: p.client_id }, ...(p.lineage ?? [])],
  };
  // never hand out what introspection would call inactive (the same facts, with the lineage)
  const facts = await b.store.facts({
    taskId: p.task_id,
    identity: actor.spiffeId,
    ...(task!.onBehalfOf ? { principal: task!.onBehalfOf } : {}),
    lineage: { jtis: claims.lineage!.map((l) => l.jti), identities: claims.lineage!.map((l) => l.client_id) },
  });
  const v = verdict(claims, facts, now);
  if (!v.active) return deny('invalid_request', `lineage_${v.reason}`, 'the delegation chain is no longer active');
  return recordAndSign(
    b,
    claims,
    now,
    deny,
    {
      delegated_from: p.jti,
      on_behalf_of: p.sub,
      aud: draft.audiences,
      ...bindingAudit(req.cnf),
    },
    actor.certificateSerial ?? req.boundCertificate?.serial,
  );
}
