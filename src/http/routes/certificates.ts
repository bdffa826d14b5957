/**
 * Certificates for tasks:
 * POST /v1/certificates (Bearer attestation, or over mTLS the client certificate, e.g. the task's own
 *   X509-SVID to renew it; JSON {task_id, csr} with a PEM CSR, or a DER body as
 *   application/pkcs10 with ?task_id=) -> 201 {certificate, chain, serial, not_after, spiffe_id, task_id}
 * GET /v1/certificates/{serial} -> JSON status (good | revoked | expired), 404 when unknown
 * POST /v1/certificates/{serial}/revoke (operator or configured client) -> revoked until it expires
 */
import type { Context, Hono } from 'hono';
import type { Broker } from '../../broker.js';
import { MayflyError } from '../../errors.js';
import { issueSvid } from '../../issue/certificate.js';
import { certificateStatus, SERIAL_HEX } from '../../ca/status.js';
import { revokeCertificateSerial } from '../../revoke/revocations.js';
import { TASK_ID } from '../../tasks/tasks.js';
import { workPhase } from '../../turn.js';
import { asCallerError, bearerToken, requireClientOrOperator } from '../auth.js';
import { readJson } from '../body.js';
import { rejectRepeated } from '../query.js';
import { clientCertificate } from '../client-certificate.js';
import { normalizeSerial } from '../../x509/peer.js';
import type { PresentedCertificate } from '../../attest/client-certificate.js';

const bad = (msg: string) => new MayflyError('invalid_request', msg, { reason: 'malformed_request' });

/** The Bearer attestation; without an Authorization header, the client certificate of this mTLS connection. */
function proofOf(b: Broker, c: Context): string | PresentedCertificate {
  const h = c.req.header('authorization');
  if (h === undefined) {
    const cert = clientCertificate(b, c);
    if (cert) return cert;
  }
  return bearerProof(h);
}

/** The attestation of an `Authorization: Bearer` header. */
export function bearerProof(h: string | undefined): string {
  const t = h === undefined ? undefined : bearerToken(h);
  if (!t) throw new MayflyError('invalid_token', 'bearer attestation token (or, over mTLS, a client certificate) required', { reason: 'no_credentials' });
  return t;
}

async function readRequest(c: Context): Promise<{ taskId: string; csr: string | Uint8Array }> {
  const mt = (c.req.header('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
  rejectRepeated(c, ['task_id']);
  const inQuery = c.req.queries('task_id') ?? [];
  if (mt === 'application/pkcs10') {
    const taskId = inQuery[0];
    if (!taskId) throw bad('missing task_id query parameter');
    return { taskId, csr: new Uint8Array(await c.req.arrayBuffer()) };
  }
  if (mt !== 'application/json' && !mt.endsWith('+json'))
    throw new MayflyError('unsupported_media_type', 'request body must be application/json ({task_id, csr}) or application/pkcs10 (a DER CSR, with ?task_id=)', {
      reason: 'bad_media_type',
    });
  // one place for the task: a query parameter beside the JSON body could name another one
  if (inQuery.length > 0) throw bad('with a JSON body, task_id goes in the body only');
  return jsonRequest(await readJson(c, CERTIFICATE_FIELDS));
}

export const CERTIFICATE_FIELDS = ['task_id', 'csr'] as const;

/** The JSON form's fields ({task_id, csr}), checked. */
export function jsonRequest(body: Record<string, unknown>): { taskId: string; csr: string } {
  if (typeof body.task_id !== 'string' || body.task_id === '') throw bad('task_id: a string is required');
  if (typeof body.csr !== 'string' || body.csr === '') throw bad('csr: a PEM certificate request is required');
  return { taskId: body.task_id, csr: body.csr };
}

/** A certificate request as read: the proof, the task and the CSR. */
export interface CertificateAsk {
  proof: string | PresentedCertificate;
  taskId: string;
  csr: string | Uint8Array;
}

/**
 * The request `read` reads, and the task id's shape: a refusal here (no credentials, a malformed body or
 * task id, a body of another type) is audited `certificate.denied` with its reason, as issuance audits
 * its own, so every denial is in the trail.
 */
export async function certificateAsk(b: Broker, read: () => Promise<CertificateAsk>): Promise<CertificateAsk> {
  try {
    const ask = await read();
    if (!TASK_ID.test(ask.taskId)) throw bad('unknown task_id');
    return ask;
  } catch (e) {
    if (e instanceof MayflyError) b.audit.record('certificate.denied', { reason: e.reason });
    throw e;
  }
}

/** Issues on a request read (certificateAsk), its refusals as the caller's errors. */
export async function certificateFor(b: Broker, { proof, taskId, csr }: CertificateAsk) {
  try {
    // the CSR check and the signing wait for the turn's check phase, after the answers due (turn.ts)
    await workPhase();
    return await issueSvid(b, proof, taskId, csr);
  } catch (e) {
    throw asCallerError(e, proof, 'agent');
  }
}

/** The serial in the URL, in any common hex spelling (upper case, `:`-separated, leading zero bytes). */
function serialParam(c: Context): string {
  const raw = c.req.param('serial')!;
  const s = /^[0-9A-Fa-f:]{1,128}$/.test(raw) ? normalizeSerial(raw) : '';
  if (!SERIAL_HEX.test(s)) throw bad('serial must be the certificate serial in hex');
  return s;
}

export function certificateRoutes(app: Hono, b: Broker): void {
  app.post('/v1/certificates', async (c) => {
    const ask = await certificateAsk(b, async () => ({ proof: proofOf(b, c), ...(await readRequest(c)) }));
    return c.json(await certificateFor(b, ask), 201, { 'Cache-Control': 'no-store' });
  });

  app.get('/v1/certificates/:serial', async (c) => {
    const serial = serialParam(c);
    const s = await certificateStatus(b, serial);
    if (s.status === 'unknown') throw new MayflyError('not_found', 'unknown or expired certificate serial', { reason: 'serial_unknown' });
    return c.json(
      {
        serial,
        status: s.status,
        spiffe_id: s.record.agent,
        task_id: s.record.taskId,
        issued_at: new Date(s.record.issuedAt).toISOString(),
        not_after: new Date(s.record.notAfter).toISOString(),
        ...(s.status === 'revoked' ? { reason: s.reason, revoked_at: new Date(s.revokedAt).toISOString(), ...(s.attestedBy ? { attested_by: s.attestedBy } : {}) } : {}),
      },
      200,
      { 'Cache-Control': 'no-store' },
    );
  });

  app.post('/v1/certificates/:serial/revoke', async (c) => {
    const by = requireClientOrOperator(b, c);
    return c.json(await revokeCertificateSerial(b, serialParam(c), by), 200);
  });
}
