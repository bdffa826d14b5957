/**
 * Request size cap. A declared Content-Length is checked from the header alone, so the common case
 * never wraps the body in a web stream (measured in bench/: hono's generic bodyLimit on every request
 * cost ~75% of a bare route's throughput on @hono/node-server). Chunked bodies fall back to hono's
 * streaming bodyLimit, which counts bytes as they arrive. Over the cap: 413 with the standard body.
 * A Content-Encoding (gzip, ...) is refused with 415: bodies are never decoded.
 */
import type { Context, MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { errorBody } from './errors.js';

/** Whether a declared Content-Length is one the broker reads: digits, at most `maxBytes`. */
export const lengthWithin = (cl: string, maxBytes: number): boolean => /^\d{1,15}$/.test(cl) && Number(cl) <= maxBytes;

/** The 413's body for a body over `maxBytes`, wherever it is refused. */
export const bodyTooLarge = (maxBytes: number) => errorBody('invalid_request', `request body exceeds ${maxBytes} bytes`);

/**
 * `refuse`, when given, answers both refusals instead (a protocol with its own error form: OCSP's
 * malformedRequest, routes/ca.ts).
 */
export function limitBody(maxBytes: number, refuse?: (c: Context) => Response): MiddlewareHandler {
  const noStore = { 'Cache-Control': 'no-store' };
  const tooLarge = (c: Context) => refuse?.(c) ?? c.json(bodyTooLarge(maxBytes), 413, noStore);
  const streaming = bodyLimit({ maxSize: maxBytes, onError: tooLarge });
  return async (c, next) => {
    const m = c.req.method;
    if (m === 'GET' || m === 'HEAD' || m === 'OPTIONS') return next();
    // no decoder runs on bodies: an encoded one would be read as if it were not (RFC 9110 §8.4: 415)
    const ce = c.req.header('content-encoding');
    if (ce !== undefined && ce.trim().toLowerCase() !== 'identity')
      return refuse?.(c) ?? c.json(errorBody('unsupported_media_type', 'request bodies are read as sent: no Content-Encoding'), 415, noStore);
    const te = c.req.header('transfer-encoding');
    const cl = c.req.header('content-length');
    if (te === undefined && cl !== undefined) {
      // Node's parser holds the body to exactly this many bytes
      if (!lengthWithin(cl, maxBytes)) return tooLarge(c);
      return next();
    }
    if (te === undefined && cl === undefined) return next(); // no body
    return streaming(c, next);
  };
}
