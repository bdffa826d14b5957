/**
 * Query parameters at the boundary: each parameter an endpoint reads may be given once. A repeated one
 * (`?limit=5&limit=6`) is refused rather than one copy silently winning, as repeated form parameters
 * are (RFC 6749 §3.1); parameters the endpoint does not read are left alone.
 */
import type { Context } from 'hono';
import { MayflyError } from '../errors.js';

export function rejectRepeated(c: Context, names: Iterable<string>): void {
  for (const name of names) {
    const all = c.req.queries(name);
    if (all && all.length > 1) throw new MayflyError('invalid_request', `${name} must be given once`, { reason: 'malformed_request' });
  }
}
