/** RFC 8693 token exchange at POST /oauth/token: an attestation for a task-bound access token. */
import { unverifiedClaims } from './claims.js';
import { endpoint, jsonOrThrow, request, type FetchLike } from '../http.js';
import { isCertificateThumbprint } from './mtls.js';

export const GRANT_TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const TT_JWT = 'urn:ietf:params:oauth:token-type:jwt';
export const TT_JOIN_TOKEN = 'urn:mayfly:params:oauth:token-type:join-token';

export const TT_CLIENT_CERTIFICATE = 'urn:mayfly:params:oauth:token-type:tls-client-certificate';

/** The subject_token_type of an attestation: a one-time join token (`mfjt_…`), a client certificate's thumbprint, else a JWT. */
export const subjectTokenType = (t: string) => (t.startsWith('mfjt_') ? TT_JOIN_TOKEN : isCertificateThumbprint(t) ? TT_CLIENT_CERTIFICATE : TT_JWT);

/** Makes a DPoP proof for the token endpoint, with the server's nonce when it gave one. */
export type DpopProofMaker = (tokenEndpoint: string, nonce?: string) => Promise<string>;

/** The last DPoP-Nonce each token endpoint gave (RFC 9449 §8.2): sent with the next proof. */
const nonces = new Map<string, string>();

/** What a token request may narrow: omit one for everything the task and the registration allow. */
export interface Grants {
  scope?: string | readonly string[];
  audience?: string | readonly string[];
  tools?: string | readonly string[];
  /**
   * RFC 8693 §4.4: only these agents (SPIFFE IDs or `/*` prefixes) may receive the token by delegation
   * (for a delegated token: within the handed-over token's may_act).
   */
  mayAct?: string | readonly string[];
}

export interface TokenRequest extends Grants {
  task: string;
}

export interface AccessToken {
  /** The RFC 9068 JWT. */
  token: string;
  /** `DPoP` when bound to the client's DPoP key (send it with `authHeaders`), else `Bearer`. */
  tokenType: 'Bearer' | 'DPoP';
  taskId: string;
  scope: string[];
  /** Client-clock times (ms): issued (request sent), renewal due, expiry. */
  issuedAt: number;
  renewAt: number;
  expiresAt: number;
}

export const list = (v: string | readonly string[] | undefined): string[] | undefined =>
  v === undefined ? undefined : typeof v === 'string' ? v.split(' ').filter(Boolean) : [...v];

/** The optional narrowing parameters of a token request. */
function addGrants(form: URLSearchParams, req: Grants): void {
  const scope = list(req.scope);
  const tools = list(req.tools);
  if (scope) form.set('scope', scope.join(' '));
  if (tools) form.set('tools', tools.join(' '));
  for (const a of list(req.audience) ?? []) form.append('audience', a);
  for (const m of list(req.mayAct) ?? []) form.append('may_act', m);
}

export async function exchange(
  brokerUrl: string,
  f: FetchLike,
  subjectToken: string,
  req: TokenRequest,
  sentAt: number,
  renewAt: number,
  /** Makes the DPoP proof for this token request (RFC 9449 §5), when the client has a DPoP key. */
  proof?: DpopProofMaker,
): Promise<AccessToken> {
  const form = new URLSearchParams({ grant_type: GRANT_TOKEN_EXCHANGE, subject_token: subjectToken, subject_token_type: subjectTokenType(subjectToken), task_id: req.task });
  addGrants(form, req);
  return post(brokerUrl, f, form, req.task, sentAt, renewAt, proof);
}

async function post(
  brokerUrl: string,
  f: FetchLike,
  form: URLSearchParams,
  taskId: string,
  sentAt: number,
  renewAt: number,
  proof?: DpopProofMaker,
): Promise<AccessToken> {
  const url = endpoint(brokerUrl, '/oauth/token');
  const send = async (nonce: string | undefined) =>
    request(f, url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', ...(proof ? { dpop: await proof(url, nonce) } : {}) },
      body: form.toString(),
    });
  let res = await send(proof ? nonces.get(url) : undefined);
  // RFC 9449 §8: a broker that requires nonces answers use_dpop_nonce with one; retry once with it
  const offered = res.headers.get('dpop-nonce');
  if (proof && res.status === 400 && offered && (await res.clone().text()).includes('"use_dpop_nonce"')) {
    nonces.set(url, offered);
    res = await send(offered);
  }
  const next = res.headers.get('dpop-nonce');
  if (next) nonces.set(url, next);
  const body = await jsonOrThrow<{ access_token?: unknown; expires_in?: unknown; scope?: unknown; token_type?: unknown }>(res);
  if (typeof body?.access_token !== 'string' || typeof body.expires_in !== 'number' || body.expires_in <= 0) throw new Error('token endpoint answer lacks access_token/expires_in');
  if (proof && body.token_type !== 'DPoP') throw new Error('asked for a DPoP-bound token, got a Bearer one: does the broker support DPoP?');
  // expires_in counts whole seconds from an iat the broker rounded down: the token's own exp, when it
  // can be read, may be up to a second earlier than sentAt + expires_in
  const expiresAt = Math.min(sentAt + body.expires_in * 1000, expOf(body.access_token) ?? Infinity);
  const lifetime = Math.max(0, expiresAt - sentAt);
  return {
    token: body.access_token,
    tokenType: proof ? 'DPoP' : 'Bearer',
    taskId,
    scope: typeof body.scope === 'string' && body.scope ? body.scope.split(' ') : [],
    issuedAt: sentAt,
    renewAt: sentAt + Math.floor(lifetime * renewAt),
    expiresAt,
  };
}

/** The `exp` of a compact JWT in ms, or undefined when it cannot be read (the token stays opaque otherwise). */
function expOf(token: string): number | undefined {
  const exp = unverifiedClaims(token)?.exp;
  return typeof exp === 'number' && Number.isFinite(exp) ? exp * 1000 : undefined;
}

export const TT_ACCESS_TOKEN = 'urn:ietf:params:oauth:token-type:access_token';

export interface DelegationRequest extends Grants {
  /** The token handed over by the agent that holds it (RFC 8693 subject_token). */
  subjectToken: string;
}

/** Delegation (RFC 8693 §1.1): the actor's own attestation as actor_token, the parent as subject_token. */
export async function delegateExchange(
  brokerUrl: string,
  f: FetchLike,
  actorToken: string,
  req: DelegationRequest,
  sentAt: number,
  renewAt: number,
  proof?: DpopProofMaker,
): Promise<AccessToken> {
  const form = new URLSearchParams({
    grant_type: GRANT_TOKEN_EXCHANGE,
    subject_token: req.subjectToken,
    subject_token_type: TT_ACCESS_TOKEN,
    actor_token: actorToken,
    actor_token_type: subjectTokenType(actorToken),
  });
  addGrants(form, req);
  const taskId = taskOf(req.subjectToken);
  return post(brokerUrl, f, form, taskId, sentAt, renewAt, proof);
}

/** The task_id claim of a token (not verified: the broker checks the token). */
function taskOf(token: string): string {
  const taskId = unverifiedClaims(token)?.task_id;
  if (typeof taskId === 'string') return taskId;
  throw new Error('subjectToken is not a Mayfly access token (no task_id claim)');
}
