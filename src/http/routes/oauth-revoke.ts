/**
 * POST /oauth/revoke: RFC 7009, for configured clients (HTTP Basic) or operators. Always 200 for a
 * well-formed request. Mayfly extension: `token` may also name a certificate of this CA, by its serial
 * (hex, any common spelling) or as the PEM certificate (`token_type_hint=certificate` optional): it is
 * revoked as by POST /v1/certificates/{serial}/revoke.
 */
import type { Hono } from 'hono';
import type { Broker } from '../../broker.js';
import { MayflyError } from '../../errors.js';
import { revokeCertificateSerial, revokeToken } from '../../revoke/revocations.js';
import { issuedBy, normalizeSerial } from '../../x509/peer.js';
import { SERIAL_HEX } from '../../ca/status.js';
import { X509Certificate } from 'node:crypto';
import { requireClientOrOperator } from '../auth.js';
import { param, readForm } from '../body.js';

export function revokeRoute(app: Hono, b: Broker): void {
  app.post('/oauth/revoke', async (c) => {
    const by = requireClientOrOperator(b, c);
    const form = await readForm(c);
    const token = param(form, 'token');
    if (!token) throw new MayflyError('invalid_request', 'missing token', { reason: 'malformed_request' });
    const serial = certificateSerial(b, token);
    if (serial === undefined) await revokeToken(b, token, by);
    else if (serial !== null) {
      try {
        await revokeCertificateSerial(b, serial, by);
      } catch (e) {
        // RFC 7009 §2.2: a token the server does not know is answered 200 all the same
        if (!(e instanceof MayflyError && e.reason === 'serial_unknown')) throw e;
      }
    }
    return c.body(null, 200, { 'Cache-Control': 'no-store' });
  });
}

/**
 * The serial `token` names when it is a certificate: hex digits (a JWT always has dots), or a PEM
 * certificate issued by this CA; null for a PEM certificate of another CA (nothing of ours to revoke);
 * undefined when it is not a certificate at all (an access token, or garbage).
 */
function certificateSerial(b: Broker, token: string): string | null | undefined {
  if (/^[0-9A-Fa-f:]{1,128}$/.test(token)) {
    const s = normalizeSerial(token);
    return SERIAL_HEX.test(s) ? s : null;
  }
  if (!token.startsWith('-----BEGIN CERTIFICATE-----')) return undefined;
  try {
    const cert = new X509Certificate(token);
    return issuedBy(cert, b.caAnchors[0]!) ? normalizeSerial(cert.serialNumber) : null;
  } catch {
    return null;
  }
}
