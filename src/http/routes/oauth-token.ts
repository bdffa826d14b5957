/**
 * POST /oauth/token: RFC 8693 token exchange. Form parameters: grant_type, subject_token,
 * subject_token_type, task_id (Mayfly extension), scope, tools (extension, space-separated), audience
 * and resource (repeatable), requested_token_type. Response per RFC 8693 §2.2.1, Cache-Control: no-store.
 * With a `DPoP` proof header (RFC 9449): a token bound to the proof's key, `token_type: DPoP`.
 * Delegation (RFC 8693 §1.1): subject_token_type access_token with the parent token, and actor_token
 * (+ actor_token_type) with the actor's attestation; task_id optional (the parent's). issue/delegate.ts.
 */
import type { Hono } from 'hono';
import type { Broker } from '../../broker.js';
import { MayflyError } from '../../errors.js';
import { exchangeToken } from '../../issue/exchange.js';
import { delegateToken } from '../../issue/delegate.js';
import { isAudience, isScopeToken, splitList } from '../../ids/tokens.js';
import { param, readForm } from '../body.js';
import { checkDpopProof } from '../../attest/dpop-proof.js';
import { isJoinToken, JOIN_TOKEN_TYPE } from '../../attest/join-token.js';
import { TASK_ID } from '../../tasks/tasks.js';

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

export function tokenRoute(app: Hono, b: Broker): void {
  app.post('/oauth/token', async (c) => {
    const form = await readForm(c, ['audience', 'resource']);
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
    if (delegation) {
      // RFC 8693 §2.1: delegation needs the actor's own proof; an access token alone is refused
      if (!actorToken) throw invalid('delegation: an access token as subject_token needs actor_token (the actor\'s attestation)', 'actor_token_missing');
      if (!att) throw invalid('missing actor_token_type');
      if (att === JOIN_TOKEN_TYPE ? !isJoinToken(actorToken) : (att !== TT_JWT && att !== TT_ID_TOKEN) || isJoinToken(actorToken))
        throw invalid(`actor_token_type must be ${TT_JWT} (or ${JOIN_TOKEN_TYPE} with a join token)`, 'unsupported_token_type');
    } else if (stt === JOIN_TOKEN_TYPE) {
      if (!isJoinToken(subjectToken)) throw invalid(`subject_token is not a join token (subject_token_type ${JOIN_TOKEN_TYPE})`, 'unsupported_token_type');
    } else if (stt !== TT_JWT && stt !== TT_ID_TOKEN) throw invalid(`subject_token_type must be ${TT_JWT} (or ${JOIN_TOKEN_TYPE})`, 'unsupported_token_type');
    else if (isJoinToken(subjectToken)) throw invalid(`a join token goes with subject_token_type ${JOIN_TOKEN_TYPE}`, 'unsupported_token_type');
    if (!delegation && (form.has('actor_token') || form.has('actor_token_type')))
      throw invalid(`actor_token goes with subject_token_type ${TT_ACCESS_TOKEN} (delegation)`, 'unsupported_token_type');
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

    let jkt: string | undefined;
    try {
      jkt = await checkDpopProof(b, c.req.header('dpop'), b.clock.now());
    } catch (e) {
      if (e instanceof MayflyError) b.audit.record('token.denied', { ...(taskId ? { task_id: taskId } : {}), reason: e.reason });
      throw e;
    }

    const grants = { ...(scopes ? { scopes } : {}), ...(tools ? { tools } : {}), ...(audiences ? { audiences } : {}), ...(jkt ? { jkt } : {}) };
    const r = delegation
      ? await delegateToken(b, { subjectToken, actorToken: actorToken!, ...(taskId ? { taskId } : {}), ...grants })
      : await exchangeToken(b, { subjectToken, taskId: taskId!, ...grants });
    return c.json(
      {
        access_token: r.accessToken,
        issued_token_type: rtt,
        token_type: jkt ? 'DPoP' : 'Bearer', // RFC 9449 §5
        expires_in: r.expiresIn,
        scope: r.claims.scope,
      },
      200,
      { 'Cache-Control': 'no-store', Pragma: 'no-cache' },
    );
  });
}
