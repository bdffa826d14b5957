/**
 * Who is calling the API: a resource-server client (HTTP Basic, RFC 6749 §2.3.1), an operator (a
 * static bearer token from config) or a workload (a bearer attestation JWT). Secrets are compared in
 * constant time over SHA-256 digests, against every candidate, with no early exit.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Context } from 'hono';
import type { Broker } from '../broker.js';
import { MayflyError } from '../errors.js';
import type { Opener } from '../policy/task-context.js';
import { attestOrRefuse } from '../issue/exchange.js';
import type { PresentedCertificate } from '../attest/client-certificate.js';
import { clientCertificate } from './client-certificate.js';

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();
/** Digests of configured secrets, computed once (they come from config, a bounded set). */
const known = new Map<string, Buffer>();
const knownDigest = (s: string) => {
  let d = known.get(s);
  if (!d) known.set(s, (d = digest(s)));
  return d;
};

export function secretEquals(given: string, expected: string): boolean {
  return timingSafeEqual(digest(given), knownDigest(expected));
}

/** The token of an `Authorization: Bearer <token>` header (RFC 6750 §2.1); undefined for any other header. */
export function bearerToken(h: string): string | undefined {
  return /^Bearer[ ]+([\x21-\x7E]+)[ ]*$/i.exec(h)?.[1];
}

function bearer(c: Context): string | undefined {
  const h = c.req.header('authorization');
  if (!h) return undefined;
  const t = bearerToken(h);
  if (!t) throw new MayflyError('invalid_token', 'malformed Authorization header (expected Bearer)', { reason: 'malformed_auth' });
  return t;
}

export function operatorFor(b: Broker, token: string): string | undefined {
  let found: string | undefined;
  for (const op of b.config.operators) if (secretEquals(token, op.token) && found === undefined) found = op.name;
  return found;
}

/** Basic credentials of a configured client; undefined when absent, an error when wrong. */
export function clientFromBasic(b: Broker, c: Context): string | undefined {
  const h = c.req.header('authorization');
  if (!h || !/^Basic /i.test(h)) return undefined;
  const fail = () => new MayflyError('invalid_client', 'client authentication failed', { reason: 'client_auth_failed' });
  // RFC 7617: exactly one token68 of strict base64
  const m = /^Basic ([A-Za-z0-9+/]+={0,2})$/i.exec(h.trim());
  if (!m || m[1]!.length % 4 !== 0) throw fail();
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
  const i = decoded.indexOf(':');
  if (i < 0) throw fail();
  let id: string;
  let secret: string;
  try {
    id = decodeURIComponent(decoded.slice(0, i).replace(/\+/g, ' '));
    secret = decodeURIComponent(decoded.slice(i + 1).replace(/\+/g, ' '));
  } catch {
    throw fail();
  }
  const client = b.config.clients.find((cl) => cl.clientId === id);
  // compare even for an unknown id so timing does not reveal which ids exist
  const ok = secretEquals(secret, client?.clientSecret ?? '\u0000no-such-client');
  if (!client || !ok) throw fail();
  return client.clientId;
}

/** For introspection and revocation: a configured client (Basic) or an operator (Bearer). */
export function requireClientOrOperator(b: Broker, c: Context): string {
  let client: string | undefined;
  try {
    client = clientFromBasic(b, c);
  } catch (e) {
    b.audit.record('auth.denied', { path: c.req.path, reason: 'client_auth_failed' });
    throw e;
  }
  if (client) return `client:${client}`;
  let tok: string | undefined;
  try {
    tok = /^Bearer /i.test(c.req.header('authorization') ?? '') ? bearer(c) : undefined;
  } catch {
    tok = undefined; // a malformed Bearer is one more failed client authentication
  }
  const op = tok ? operatorFor(b, tok) : undefined;
  if (op) return `operator:${op}`;
  b.audit.record('auth.denied', { path: c.req.path, reason: tok ? 'bad_operator_token' : 'no_client_credentials' });
  throw new MayflyError('invalid_client', 'client authentication required (HTTP Basic with a configured client)', { reason: 'client_auth_failed' });
}

/**
 * An operator. RFC 6750 §3.1: a token that is no credential of this broker at all (a wrong operator
 * token, garbage) is `invalid_token` (401); a caller it knows (a workload's attestation, one of its
 * access tokens) that is no operator is refused (403).
 */
export async function requireOperator(b: Broker, c: Context): Promise<string> {
  const tok = bearer(c);
  const op = tok ? operatorFor(b, tok) : undefined;
  if (!tok) throw new MayflyError('invalid_token', 'operator bearer token required', { reason: 'no_credentials' });
  if (op) return op;
  const known = b.accessTokens.verify(tok, b.clock.now()).ok || (await b.attestation.attest(tok).then(() => true, () => false));
  b.audit.record('auth.denied', { path: c.req.path, reason: known ? 'not_operator' : 'bad_operator_token' });
  if (known) throw new MayflyError('access_denied', 'operator token required', { reason: 'not_operator' });
  throw new MayflyError('invalid_token', 'not an operator token of this broker', { reason: 'bad_operator_token' });
}

/** An operator, or a workload attested as an orchestrator. */
export async function requireOrchestrator(b: Broker, c: Context): Promise<Opener> {
  const tok = bearer(c);
  const cert = tok === undefined ? clientCertificate(b, c) : undefined;
  if (cert) return { kind: 'workload', ...(await orchestratorBy(b, c, cert)) };
  if (!tok) throw new MayflyError('invalid_token', 'bearer token required (an orchestrator attestation JWT or an operator token)', { reason: 'no_credentials' });
  const op = operatorFor(b, tok);
  if (op) return { kind: 'operator', name: op };
  return { kind: 'workload', ...(await orchestratorBy(b, c, tok)) };
}

/**
 * An attestation refused at an API endpoint (not the token endpoint's subject_token): RFC 6750 §3.1
 * `invalid_token` (401) for a proof that does not hold, `access_denied` (403) for a workload without
 * the role the call needs. Other errors pass unchanged.
 */
export function asCallerError(e: unknown, proof: string | PresentedCertificate, role: 'agent' | 'orchestrator'): unknown {
  if (!(e instanceof MayflyError) || !e.reason?.startsWith('attestation_')) return e;
  if (e.reason === 'attestation_wrong_role') return new MayflyError('access_denied', `caller is not registered as an ${role}`, { reason: e.reason });
  if (e.code !== 'invalid_request') return e;
  return new MayflyError('invalid_token', e.message.replace('subject_token', typeof proof === 'string' ? 'bearer token' : 'client certificate'), { reason: e.reason });
}

/** A workload attested (bearer JWT or join token, or client certificate) as an orchestrator. */
async function orchestratorBy(b: Broker, c: Context, proof: string | PresentedCertificate) {
  let identity;
  try {
    identity = await attestOrRefuse(b, proof, 'orchestrator', { path: c.req.path });
  } catch (e) {
    // one of this broker's access tokens: a caller it knows, without the role (an agent's token)
    if (typeof proof === 'string' && b.accessTokens.verify(proof, b.clock.now()).ok)
      throw new MayflyError('access_denied', 'an access token is no orchestrator attestation (or operator token)', { reason: 'not_orchestrator' });
    throw asCallerError(e, proof, 'orchestrator');
  }
  const identityState = await b.store.identityState(identity.spiffeId);
  return { identity, identityState };
}
