/**
 * `mayfly inspect TOKEN`: decode a token, verify it against the running broker's JWKS and revocation
 * feed (the SDK verifier: the same checks a resource server makes), ask introspection, and say in words
 * why it is or is not active.
 */
import { BrokerError, jsonOrThrow, request } from '../../sdk/http.js';
import { createVerifier } from '../../sdk/verifier/verifier.js';
import type { VerifyFailure, VerifyResult } from '../../sdk/verifier/result.js';
import type { TaskView } from '../../sdk/client/tasks.js';
import { COMMON_HELP, EXIT, fromBrokerError, parse, printJson, relative, table, tokenArg, UsageError, type Common, type Io } from './common.js';
import { decodeJwt, type Decoded } from './decode.js';
import { call } from './http.js';
import type { Introspection } from './introspect.js';

const HELP = `usage: mayfly inspect [TOKEN | -] [--audience A] [options]

Explains a token: decodes it, verifies its signature, type, issuer and times against the broker at --url
(its JWKS), checks the revocation feed and introspection when you give client or operator credentials,
looks up its task and identity with an operator token, and says why it is or is not active.

options:
  --audience A   also check that the token is meant for this audience

output: a report ending in a verdict, ACTIVE, INACTIVE or UNKNOWN (valid, but revocation could not be
checked: no credentials, or neither the feed nor introspection answered); exit 0 when active, 1 when
not or unknown (--json: the same as an object)

${COMMON_HELP}`;

const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
const when = (s: unknown) => (typeof s === 'number' ? `${new Date(s * 1000).toISOString()} (${relative(s * 1000)})` : undefined);

/** Why a verification failed, in words. */
export function explain(f: VerifyFailure, d: Decoded, extra: { task?: TaskView | undefined; issuer?: string; audience?: string | undefined }): string {
  const p = d.payload;
  const task = str(p.task_id);
  switch (f.code) {
    case 'malformed':
      return `it is not a Mayfly access token (${f.message})`;
    case 'invalid_signature':
      return "its signature does not verify with the broker's key: it was altered, or signed by someone else";
    case 'unknown_kid':
      return `it is signed with a key (kid ${str(d.header.kid) ?? 'none'}) the broker does not publish: not ours, or a key rotated out of the key directory`;
    case 'expired':
      return `it expired ${relative(Number(p.exp) * 1000)}`;
    case 'not_yet_valid':
      return 'it is dated in the future (clock skew, or forged)';
    case 'wrong_issuer':
      return `it was issued by ${str(p.iss) ?? 'nobody'}, not by this broker (${extra.issuer})`;
    case 'wrong_audience':
      return `it is not meant for ${extra.audience} (its audience: ${[p.aud].flat().join(' ')})`;
    case 'wrong_type':
      return `it is not an access token (typ ${str(d.header.typ) ?? 'missing'}, want at+jwt): perhaps an attestation or ID token`;
    case 'stale':
      return `its revocation state could not be read (${f.message})`;
    case 'dpop_invalid':
      return `it is bound to a DPoP key and needs a proof (${f.message})`;
    case 'use_dpop_nonce':
      return `the resource server wants its DPoP proofs to carry its nonce (${f.message})`;
    case 'certificate_mismatch':
      return `it is bound to a client certificate (RFC 8705) and is good only over mTLS with that certificate (${f.message})`;
    case 'insufficient_scope':
    case 'tool_not_allowed':
      return f.message;
    case 'revoked': {
      const t = extra.task;
      switch (f.reason) {
        case 'task_closed':
          return `its task ${task} was closed${t?.close_reason ? ` (${t.close_reason.replace(/_/g, ' ')}${t.closed_at ? `, ${relative(Date.parse(t.closed_at))}` : ''})` : ''}`;
        case 'task_expired':
          return `its task ${task} is past its deadline`;
        case 'task_principal_revoked':
          return `everything acting for ${str(p.sub)} was revoked, which closed its task ${task}`;
        case 'task_unknown':
          return `its task ${task} is unknown to the broker`;
        case 'jti_revoked':
          return 'this token was revoked on its own (RFC 7009)';
        case 'identity_locked':
          return `the agent identity ${str(p.client_id)} is locked`;
        case 'identity_revoked':
          return `the agent identity ${str(p.client_id)} was locked when this token was issued; tokens from before the lock stay inactive after an unlock`;
        case 'introspection_inactive':
          return t && t.state === 'closed' ? `its task ${task} is closed (${t.close_reason ?? 'closed'})` : 'the broker reports it inactive';
      }
    }
  }
}

async function metadata(c: Common): Promise<{ issuer: string }> {
  try {
    const m = await jsonOrThrow<{ issuer?: unknown }>(await request(c.fetch, `${c.url}/.well-known/oauth-authorization-server`, { headers: { accept: 'application/json' } }));
    if (typeof m?.issuer !== 'string') throw new BrokerError(502, 'bad_metadata', 'the broker metadata has no issuer');
    return { issuer: m.issuer };
  } catch (e) {
    if (e instanceof BrokerError) throw fromBrokerError(e, c.url);
    throw e;
  }
}

/** An answer that may be missing (a task purged, an endpoint refusing this caller), but not credentials the broker refused (exit 2). */
const optional = <T>(p: Promise<T>) =>
  p.catch((e: unknown) => {
    if (e instanceof UsageError) throw e;
    return undefined;
  });

export async function run(args: string[], io: Io): Promise<number> {
  const p = parse(args, { audience: { type: 'string' } }, HELP, io, { positionals: [0, 1] });
  if (!p) return EXIT.ok;
  const c = p.common;
  const token = tokenArg(p.positionals[0], io);
  let d: Decoded;
  try {
    d = decodeJwt(token);
  } catch (e) {
    if (c.json) printJson(io, { active: false, code: 'malformed', explanation: (e as Error).message });
    else io.out(table([['verdict', `INACTIVE: ${(e as Error).message}`]]));
    return EXIT.refused;
  }
  const { issuer } = await metadata(c);
  const { clientId, clientSecret, operatorToken } = c.credentials;
  const canAsk = (clientId !== undefined && clientSecret !== undefined) || !!operatorToken;
  const audience = str(p.values.audience) ?? ([d.payload.aud].flat().filter((a): a is string => typeof a === 'string') as string[]);

  // the feed, when we may read it; a broker without one (or a refusal) leaves us with introspection
  let feedChecked = false;
  let v = createVerifier({ issuer, brokerUrl: c.url, feed: 'none', ...c.credentials });
  if (canAsk) {
    const withFeed = createVerifier({ issuer, brokerUrl: c.url, feed: 'poll', pollIntervalMs: 60_000, maxStalenessMs: 120_000, ...c.credentials });
    try {
      await withFeed.start({ timeoutMs: 5000 });
      v = withFeed;
      feedChecked = true;
    } catch {
      withFeed.close();
    }
  }
  const taskId = str(d.payload.task_id);
  const clientIdClaim = str(d.payload.client_id);
  let result: VerifyResult;
  let intro: Introspection | undefined;
  let task: TaskView | undefined;
  let identity: { locked?: boolean; revoked_before?: string | null } | undefined;
  try {
    [result, intro, task, identity] = await Promise.all([
      v.verify(token, { audience: audience.length ? audience : ['(none)'] }),
      canAsk ? optional(call<Introspection>(c, '/oauth/introspect', { clientAuth: true, form: { token } })) : undefined,
      operatorToken && taskId ? optional(call<TaskView>(c, `/v1/tasks/${encodeURIComponent(taskId)}`, { bearer: operatorToken })) : undefined,
      operatorToken && clientIdClaim?.startsWith('spiffe://') ? optional(call<{ locked: boolean }>(c, `/v1/identities/${encodeURIComponent(clientIdClaim)}`, { bearer: operatorToken })) : undefined,
    ]);
  } finally {
    v.close();
  }

  let active: boolean;
  let why: string;
  let verdict: 'ACTIVE' | 'INACTIVE' | 'UNKNOWN';
  if (!result.ok) [active, verdict, why] = [false, 'INACTIVE', explain(result, d, { task, issuer, audience: str(p.values.audience) })];
  else if (intro && !intro.active) [active, verdict, why] = [false, 'INACTIVE', explain({ ok: false, code: 'revoked', reason: 'introspection_inactive', message: '' }, d, { task })];
  else if (feedChecked || intro?.active) [active, verdict, why] = [true, 'ACTIVE', 'signed by the broker, unexpired, and not revoked'];
  // never ACTIVE on the signature alone: a closed task's token has a valid one too
  else if (!canAsk) [active, verdict, why] = [false, 'UNKNOWN', 'signature, type, issuer and times are valid; revocation NOT checked (give --client-id/--client-secret or --operator-token)'];
  else [active, verdict, why] = [false, 'UNKNOWN', 'signature and times are valid, but neither the revocation feed nor introspection answered (check the credentials)'];

  const signature = result.ok ? 'valid' : result.code === 'stale' ? 'unknown' : ['malformed', 'invalid_signature', 'unknown_kid', 'wrong_type', 'wrong_issuer'].includes(result.code) ? 'NOT valid' : 'valid';
  if (c.json) {
    printJson(io, {
      active,
      verdict: verdict.toLowerCase(),
      ...(result.ok ? {} : { code: result.code, ...(result.code === 'revoked' ? { reason: result.reason } : {}) }),
      explanation: why,
      header: d.header,
      claims: d.payload,
      checks: {
        signature,
        feed: feedChecked ? 'checked' : 'not checked',
        introspection: intro ? (intro.active ? 'active' : 'inactive') : 'not asked',
        ...(task ? { task: { state: task.state, close_reason: task.close_reason ?? null } } : {}),
        ...(identity ? { identity: { locked: identity.locked ?? false, revoked_before: identity.revoked_before ?? null } } : {}),
      },
    });
  } else {
    const act = d.payload.act as { sub?: string } | undefined;
    io.out(
      table([
        ['token', `${str(d.payload.jti) ?? '(no jti)'}${taskId ? ` for task ${taskId}` : ''}`],
        ['issuer', str(d.payload.iss)],
        ['agent', clientIdClaim],
        ['on behalf of', act?.sub ? str(d.payload.sub) : undefined],
        ['audience', [d.payload.aud].flat().filter(Boolean).join(' ')],
        ['scope', str(d.payload.scope)],
        ['tools', Array.isArray(d.payload.tools) ? d.payload.tools.join(' ') : undefined],
        ['issued', when(d.payload.iat)],
        ['expires', when(d.payload.exp)],
        ['signature', `${signature} (${str(d.header.alg) ?? '?'}, kid ${str(d.header.kid) ?? '?'}, typ ${str(d.header.typ) ?? '?'})`],
        ['feed', feedChecked ? 'checked against the revocation feed' : canAsk ? 'unavailable' : 'not checked (no client or operator credentials)'],
        ['introspection', intro ? (intro.active ? 'active' : 'inactive') : 'not asked'],
        ['task state', task ? `${task.state}${task.close_reason ? ` (${task.close_reason.replace(/_/g, ' ')})` : ''}` : undefined],
        ['identity', identity ? (identity.locked ? 'locked' : identity.revoked_before ? `unlocked, tokens from before ${identity.revoked_before} stay revoked` : 'not locked') : undefined],
        ['verdict', `${verdict}: ${why}`],
      ]),
    );
  }
  return active ? EXIT.ok : EXIT.refused;
}

