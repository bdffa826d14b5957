/**
 * The CA's public face: GET /v1/ca/bundle (PEM trust anchors; `?format=jwks`, an Accept asking for JSON
 * only, or /v1/ca/spiffe-bundle for the SPIFFE trust bundle as a JWK Set with `use: x509-svid`),
 * GET /v1/ca/crl (RFC 5280 DER, application/pkix-crl; ETag and Last-Modified, 304 to a conditional
 * request for the CRL the client holds), POST /v1/ca/ocsp and GET /v1/ca/ocsp/{base64} (RFC 6960 §A.1).
 */
import { X509Certificate } from 'node:crypto';
import type { Context, Hono, MiddlewareHandler } from 'hono';
import type { Broker } from '../../broker.js';
import { certificateStatus } from '../../ca/status.js';
import { buildOcspResponse, certIdMatchesCa, ocspError, OCSP_MAX_REQUEST, parseOcspRequest, X509Error, type OcspSingleResponse } from '../../x509/index.js';
import { MayflyError } from '../../errors.js';
import { rejectRepeated } from '../query.js';
import { limitBody } from '../body-limit.js';

function anchorsPem(b: Broker): string {
  return b.ca.rootPem ?? b.ca.cert.pem;
}

/**
 * The SPIFFE trust bundle (SPIFFE Trust Domain and Bundle §4): one `x509-svid` key per trust anchor,
 * its certificate in `x5c`. `spiffe_sequence` must grow whenever the bundle changes: it is the anchor's
 * notBefore in seconds, so a new CA (a rotation, or dev mode's CA made at each start) has a greater one.
 */
function spiffeBundle(b: Broker) {
  const cert = new X509Certificate(anchorsPem(b));
  const jwk = cert.publicKey.export({ format: 'jwk' });
  return {
    keys: [{ ...jwk, use: 'x509-svid', x5c: [cert.raw.toString('base64')] }],
    spiffe_refresh_hint: 300,
    spiffe_sequence: Math.floor(Date.parse(cert.validFrom) / 1000),
  };
}

/** An OCSP answer: HTTP 200 whatever its status, as a responder's errors are (RFC 6960 §2.3, §A.1). */
const ocspAnswer = (c: Context, body: Buffer): Response => c.body(new Uint8Array(body), 200, { 'Content-Type': 'application/ocsp-response', 'Cache-Control': 'no-store' });

/** malformedRequest: what an OCSP client is told of a request it cannot have meant. */
const ocspMalformed = (c: Context): Response => ocspAnswer(c, ocspError('malformedRequest'));

/**
 * The body cap of POST /v1/ca/ocsp, ahead of the app-wide one (app.ts): an OCSP request over
 * OCSP_MAX_REQUEST, or encoded, is answered malformedRequest in OCSP form rather than with the JSON 413/415.
 */
export const ocspBodyLimit = (b: Broker): MiddlewareHandler => limitBody(Math.min(OCSP_MAX_REQUEST, b.config.limits.bodyBytes), ocspMalformed);

async function ocsp(b: Broker, c: Context, der: Uint8Array): Promise<Response> {
  let req;
  try {
    req = parseOcspRequest(der);
  } catch (e) {
    if (e instanceof X509Error) return ocspMalformed(c);
    throw e;
  }
  const now = new Date(b.clock.now());
  try {
    const responses: OcspSingleResponse[] = await Promise.all(
      req.certIds.map(async (certId): Promise<OcspSingleResponse> => {
        if (!certIdMatchesCa(b.ca, certId)) return { certId, status: 'unknown', thisUpdate: now };
        const s = await certificateStatus(b, certId.serialHex);
        if (s.status === 'revoked') return { certId, status: 'revoked', revokedAt: new Date(s.revokedAt), thisUpdate: now, nextUpdate: new Date(now.getTime() + 60_000) };
        // RFC 6960 §2.2: `good` says no certificate of that serial is revoked, `unknown` that the responder
        // does not know it: an expired one it still keeps and never revoked is good (as JSON says expired)
        if (s.status === 'good' || s.status === 'expired') return { certId, status: 'good', thisUpdate: now, nextUpdate: new Date(now.getTime() + 60_000) };
        return { certId, status: 'unknown', thisUpdate: now };
      }),
    );
    return ocspAnswer(c, buildOcspResponse(b.ca, responses, { ...(req.nonce ? { nonce: req.nonce } : {}), producedAt: now }));
  } catch {
    return ocspAnswer(c, ocspError('tryLater'));
  }
}

/**
 * GET /v1/ca/bundle answers the JWK Set instead of PEM when the client asks for JSON only: an Accept
 * naming `application/jwk-set+json`, or `application/json` with nothing that PEM would also satisfy
 * (a PEM type, `text/plain`, or a wildcard, as in most HTTP clients' defaults).
 */
function wantsJwks(accept: string | undefined): false | 'application/json' | 'application/jwk-set+json' {
  if (!accept) return false;
  const types = accept.toLowerCase().split(',').map((t) => t.split(';')[0]!.trim());
  // the JWK Set's own media type (RFC 7517 §8.5) when the client names it
  if (types.includes('application/jwk-set+json')) return 'application/jwk-set+json';
  return types.includes('application/json') && !types.some((t) => t.includes('pem') || t === 'text/plain' || t.endsWith('/*')) && 'application/json';
}

/**
 * A strong entity tag for a CRL: the last 16 bytes of its DER, which lie in its signature. The same
 * bytes have the same tag; another CRL (other content, or the same content signed again with ECDSA's
 * random nonce) has another, without hashing hundreds of KB per request.
 */
function crlEtag(der: Buffer): string {
  return `"${der.subarray(-16).toString('base64url')}"`;
}

const MONTH = '(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)';
/**
 * An HTTP-date (RFC 9110 §5.6.7) in ms, or NaN: IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), and the
 * two obsolete forms a recipient must accept, rfc850-date (`Sunday, 06-Nov-94 08:49:37 GMT`) and
 * asctime-date (`Sun Nov  6 08:49:37 1994`, UTC).
 */
const IMF_FIXDATE = new RegExp(`^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \\d{2} ${MONTH} \\d{4} \\d{2}:\\d{2}:\\d{2} GMT$`);
const RFC850_DATE = new RegExp(`^(Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday), \\d{2}-${MONTH}-\\d{2} \\d{2}:\\d{2}:\\d{2} GMT$`);
const ASCTIME_DATE = new RegExp(`^(Mon|Tue|Wed|Thu|Fri|Sat|Sun) ${MONTH} [ \\d]\\d \\d{2}:\\d{2}:\\d{2} \\d{4}$`);
function httpDate(v: string): number {
  const t = v.trim();
  if (IMF_FIXDATE.test(t) || RFC850_DATE.test(t)) return Date.parse(t);
  if (ASCTIME_DATE.test(t)) return Date.parse(`${t} GMT`);
  return NaN;
}

/**
 * RFC 9110 §13.1.2 and §13.1.3: If-None-Match (a list of tags, or `*`; weak comparison) decides when
 * present; else If-Modified-Since, an HTTP date at or after the CRL's thisUpdate (whole seconds). A
 * date that is not an HTTP-date, or lies ahead of the server's clock, is ignored (§13.1.3). When the
 * CRL before this one was built in the same second, that second names either: the date is not enough
 * (RFC 9110 §8.8.2.2, a weak validator), and the CRL is sent whole.
 */
function notModified(ifNoneMatch: string | undefined, ifModifiedSince: string | undefined, etag: string, crl: { builtAt: number; previousAt: number }, now: number): boolean {
  if (ifNoneMatch !== undefined) {
    if (ifNoneMatch.trim() === '*') return true;
    return ifNoneMatch.split(',').some((t) => t.trim().replace(/^W\//, '') === etag);
  }
  if (ifModifiedSince === undefined) return false;
  const since = httpDate(ifModifiedSince);
  const second = (t: number) => Math.floor(t / 1000) * 1000;
  const { builtAt, previousAt } = crl;
  if (!Number.isFinite(since) || since > now || second(builtAt) > since) return false;
  return !(second(previousAt) === second(builtAt) && since < second(builtAt) + 1000);
}

export function caRoutes(app: Hono, b: Broker): void {
  app.get('/v1/ca/bundle', (c) => {
    rejectRepeated(c, ['format']);
    const format = c.req.query('format');
    if (format !== undefined && format !== 'jwks' && format !== 'pem')
      throw new MayflyError('invalid_request', 'format must be pem (the default) or jwks (the SPIFFE trust bundle)', { reason: 'malformed_request' });
    const json = format === 'jwks' ? 'application/json' : format === undefined && wantsJwks(c.req.header('accept'));
    if (json) return c.json(spiffeBundle(b), 200, { 'Content-Type': json, 'Cache-Control': 'public, max-age=300', Vary: 'Accept' });
    return c.body(anchorsPem(b), 200, { 'Content-Type': 'application/x-pem-file', 'Cache-Control': 'public, max-age=300', Vary: 'Accept' });
  });
  app.get('/v1/ca/spiffe-bundle', (c) => c.json(spiffeBundle(b), 200, { 'Cache-Control': 'public, max-age=300' }));
  app.get('/v1/ca/crl', async (c) => {
    const crl = await b.crl.currentCrl();
    const { der, builtAt } = crl;
    const validators = { ETag: crlEtag(der), 'Last-Modified': new Date(builtAt).toUTCString(), 'Cache-Control': 'no-cache' };
    // a relying party that polls revalidates: 304 while it holds this CRL (RFC 9110 §13.1.2, §13.1.3)
    if (notModified(c.req.header('if-none-match'), c.req.header('if-modified-since'), validators.ETag, crl, b.clock.now())) return c.body(null, 304, validators);
    // a view of the cached DER, not a copy (hundreds of KB with many revoked serials)
    const view = new Uint8Array(der.buffer as ArrayBuffer, der.byteOffset, der.length);
    return c.body(view, 200, { 'Content-Type': 'application/pkix-crl', ...validators });
  });
  app.post('/v1/ca/ocsp', async (c) => {
    const mt = (c.req.header('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
    const body = new Uint8Array(await c.req.arrayBuffer());
    if (mt !== 'application/ocsp-request' || body.length === 0 || body.length > OCSP_MAX_REQUEST)
      return ocspMalformed(c);
    return ocsp(b, c, body);
  });
  app.get('/v1/ca/ocsp/:req{.+}', async (c) => {
    const encoded = c.req.path.slice('/v1/ca/ocsp/'.length);
    if (encoded.length > OCSP_MAX_REQUEST * 6) return ocspMalformed(c); // before decoding: at most 3 characters per decoded one
    let raw: string;
    try {
      raw = decodeURIComponent(encoded);
    } catch {
      return ocspMalformed(c); // a broken percent-encoding (`%ZZ`, invalid UTF-8) is a malformed request, not an error of ours
    }
    if (raw.length > OCSP_MAX_REQUEST * 2 || !/^[A-Za-z0-9+/=_-]+$/.test(raw)) return ocspMalformed(c);
    return ocsp(b, c, Buffer.from(raw, 'base64'));
  });
}
