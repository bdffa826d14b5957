/**
 * HTTP requests, for any framework: read `Authorization: Bearer|DPoP <token>` (and the `DPoP` proof
 * header), verify, and turn a refusal into the status and RFC 6750 §3 / RFC 9449 §7.1
 * `WWW-Authenticate` challenge to answer with: 401 `invalid_token`, 403 `insufficient_scope`,
 * 400 `invalid_request`, 401 `invalid_dpop_proof`, 401 `use_dpop_nonce` with a `DPoP-Nonce` header
 * (RFC 9449 §9, when the verifier requires resource-server nonces); 503 when revocation state is
 * unknown (`stale`).
 */
import type { MayflyClaims, VerifyCode } from './result.js';
import type { Verifier, VerifyOptions } from './verifier.js';

export type HeaderSource = Headers | Record<string, string | string[] | undefined> | ((name: string) => string | undefined | null);

export interface RequestOptions extends Omit<VerifyOptions, 'dpop' | 'request'> {
  /** Method and absolute URL of the request (needed for DPoP-bound tokens). */
  method?: string;
  url?: string;
  realm?: string;
}

export type RequestCode = VerifyCode | 'missing_token' | 'invalid_request';

/** `headers`: to send with the answer (the current `DPoP-Nonce`, with resource-server nonces). */
export type RequestResult =
  | { ok: true; claims: MayflyClaims; headers: Record<string, string> }
  | { ok: false; status: 400 | 401 | 403 | 503; code: RequestCode; message: string; headers: Record<string, string>; body: { error: string; error_description: string } };

function header(h: HeaderSource, name: string): string | undefined {
  if (typeof h === 'function') return h(name) ?? undefined;
  if (h instanceof Headers) return h.get(name) ?? undefined;
  const v = h[name] ?? h[name.toLowerCase()] ?? Object.entries(h).find(([k]) => k.toLowerCase() === name.toLowerCase())?.[1];
  return Array.isArray(v) ? (v.length === 1 ? v[0] : '\u0000multiple') : v;
}

/** RFC 6750 §3: error_description is %x20-21 / %x23-5B / %x5D-7E. */
const quoted = (s: string) => s.replace(/[^\x20\x21\x23-\x5B\x5D-\x7E]/g, '');

/** RFC 9449 §7.1 and §9 error codes of the DPoP challenge. */
const DPOP_ERRORS: Partial<Record<RequestCode, string>> = { dpop_invalid: 'invalid_dpop_proof', use_dpop_nonce: 'use_dpop_nonce' };

const AUTH = /^(Bearer|DPoP)[ ]+([A-Za-z0-9\-._~+/]+=*)[ ]*$/i;

export async function verifyRequest(verifier: Verifier, headers: HeaderSource, opts: RequestOptions): Promise<RequestResult> {
  const realm = opts.realm ?? 'mayfly';
  const auth = header(headers, 'authorization');
  const scopeParam = opts.scopes?.length ? `, scope="${quoted(opts.scopes.join(' '))}"` : '';
  const refuse = (status: 400 | 401 | 403 | 503, code: RequestCode, message: string, scheme: 'Bearer' | 'DPoP' = 'Bearer', nonce?: string): RequestResult => {
    const error =
      status === 403 ? 'insufficient_scope' : status === 400 ? 'invalid_request' : status === 503 ? 'temporarily_unavailable' : (DPOP_ERRORS[code] ?? 'invalid_token');
    const h: Record<string, string> = { 'cache-control': 'no-store' };
    if (nonce !== undefined) h['dpop-nonce'] = nonce;
    if (status === 503) h['retry-after'] = '5';
    else if (code === 'missing_token') h['www-authenticate'] = `Bearer realm="${realm}"${scopeParam}`;
    else {
      const extra = scheme === 'DPoP' ? `, algs="ES256 ES384 EdDSA RS256 PS256"` : status === 403 ? scopeParam : '';
      h['www-authenticate'] = `${scheme} realm="${realm}", error="${error}", error_description="${quoted(message)}"${extra}`;
    }
    return { ok: false, status, code, message, headers: h, body: { error, error_description: message } };
  };

  if (!auth) return refuse(401, 'missing_token', 'no access token');
  const m = AUTH.exec(auth);
  if (!m) return refuse(400, 'invalid_request', 'malformed Authorization header (expected Bearer or DPoP and one token)');
  const scheme = m[1]!.toLowerCase() === 'dpop' ? 'DPoP' : 'Bearer';
  const proof = header(headers, 'dpop');
  if (proof === '\u0000multiple') return refuse(400, 'invalid_request', 'more than one DPoP header');
  const r = await verifier.verify(m[2]!, {
    audience: opts.audience,
    ...(opts.scopes ? { scopes: opts.scopes } : {}),
    ...(opts.tool !== undefined ? { tool: opts.tool } : {}),
    ...(opts.clientCertificate !== undefined ? { clientCertificate: opts.clientCertificate } : {}),
    ...(opts.method !== undefined && opts.url !== undefined ? { request: { method: opts.method, url: opts.url } } : {}),
    ...(scheme === 'DPoP' || proof !== undefined ? { dpop: { proof, method: opts.method ?? 'GET', url: opts.url ?? '', scheme } } : {}),
  });
  if (r.ok) return { ok: true, claims: r.claims, headers: r.dpopNonce !== undefined ? { 'dpop-nonce': r.dpopNonce } : {} };
  switch (r.code) {
    case 'use_dpop_nonce':
      // RFC 9449 §9: 401 with a DPoP challenge, error use_dpop_nonce, and the nonce to use
      return refuse(401, r.code, r.message, 'DPoP', r.dpopNonce);
    case 'insufficient_scope':
    case 'tool_not_allowed':
      return refuse(403, r.code, r.message, scheme);
    case 'stale':
      return refuse(503, r.code, r.message, scheme);
    case 'dpop_invalid':
      return refuse(401, r.code, r.message, 'DPoP');
    default:
      return refuse(401, r.code, r.message, scheme);
  }
}
