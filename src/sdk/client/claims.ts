/**
 * A token's claims read without verifying it (jose `decodeJwt`): only to know when a token expires or
 * which task it names, never to trust it (the broker checks every token it is given). Undefined when
 * the token is no compact JWT.
 */
import { decodeJwt, type JWTPayload } from 'jose';

export function unverifiedClaims(token: string): JWTPayload | undefined {
  try {
    return decodeJwt(token);
  } catch {
    return undefined;
  }
}
