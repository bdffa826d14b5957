/** Reading a compact JWT without verifying it: for display only, never for a decision. */
import { UsageError } from './common.js';

export interface Decoded {
  header: Record<string, unknown>;
  payload: Record<string, unknown>;
}

export function decodeJwt(token: string): Decoded {
  const parts = token.split('.');
  if (parts.length !== 3) throw new UsageError('not a compact JWT (want three base64url parts separated by dots)');
  const part = (s: string, what: string) => {
    try {
      const v = JSON.parse(Buffer.from(s, 'base64url').toString('utf8')) as unknown;
      if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error('not an object');
      return v as Record<string, unknown>;
    } catch {
      throw new UsageError(`not a JWT: its ${what} is not base64url JSON`);
    }
  };
  return { header: part(parts[0]!, 'header'), payload: part(parts[1]!, 'payload') };
}

const iso = (s: unknown) => (typeof s === 'number' ? new Date(s * 1000).toISOString() : undefined);

/** The claims with their NumericDates also as ISO times, for people. */
export function withTimes(p: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...p };
  for (const k of ['iat', 'nbf', 'exp']) if (typeof p[k] === 'number') out[`${k}_time`] = iso(p[k]);
  return out;
}
