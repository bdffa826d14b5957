/**
 * From a proof to an identity: pick the attestors trusting the token's issuer, verify with each, then
 * find the first registration of *that* attestor whose selectors match (so a token from attestor A can
 * never match a registration of attestor B). Verified proofs are cached by their exact bytes until they
 * expire, so an agent presenting the same proof again costs no signature check.
 */
import { decodeJwt } from 'jose';
import type { Registration, Role } from '../config/config.js';
import type { Clock } from '../clock.js';
import { AttestationError, type AttestedWorkload, type Attestor } from './attestor.js';
import { claimsMatch } from './match.js';

export const MAX_PROOF_BYTES = 8192;
export const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

export interface Identity {
  spiffeId: string;
  registration: Registration;
  attestor: string;
  /** Expiry of the proof (ms). */
  proofExpiresAt: number;
  /** The proof attests only for this task (a task's own X509-SVID presented over mTLS). */
  taskId?: string;
  /** That X509-SVID's serial (hex): tokens it attests are revoked with it. */
  certificateSerial?: string;
}

export class Attestation {
  private cache = new Map<string, AttestedWorkload>();

  constructor(
    private attestors: Attestor[],
    private registrations: Registration[],
    private ownIssuer: string,
    private clock: Clock,
    private maxCache = 10_000,
  ) {}

  /** Verifies the proof and returns the identity registered for it with the given role. */
  async identify(token: string, role: Role): Promise<Identity> {
    const workload = await this.attest(token);
    const candidates = this.registrations.filter(
      (r) => r.attestor === workload.attestor && claimsMatch(r.match, workload.claims as Record<string, unknown>),
    );
    if (candidates.length === 0) throw new AttestationError('attestation_unregistered', 'no registration matches this workload');
    const reg = candidates.find((r) => r.roles.includes(role));
    if (!reg) throw new AttestationError('attestation_wrong_role', `workload is not registered with role "${role}"`);
    return { spiffeId: reg.spiffeId, registration: reg, attestor: workload.attestor, proofExpiresAt: workload.expiresAt };
  }

  async attest(token: string): Promise<AttestedWorkload> {
    const now = this.clock.now();
    const cached = this.cache.get(token);
    if (cached) {
      if (cached.expiresAt > now) return cached;
      this.cache.delete(token);
    }
    if (typeof token !== 'string' || token.length === 0 || token.length > MAX_PROOF_BYTES)
      throw new AttestationError('attestation_malformed', 'attestation token missing or too large');
    // RFC 7515 §7.1 compact form: three base64url segments, no padding; one token, one spelling
    if (!COMPACT_JWS.test(token)) throw new AttestationError('attestation_malformed', 'attestation token is not a compact JWS (base64url, no padding)');
    let iss: unknown;
    try {
      iss = decodeJwt(token).iss;
    } catch {
      throw new AttestationError('attestation_malformed', 'attestation token is not a JWT');
    }
    if (iss === this.ownIssuer)
      throw new AttestationError('attestation_is_access_token', 'a Mayfly access token is not an attestation (to delegate one, send it as subject_token with its access_token type, and an attestation as actor_token)');
    const trusting = this.attestors.filter((a) => a.issuer === iss);
    if (trusting.length === 0) throw new AttestationError('attestation_unknown_issuer', 'attestation token issuer is not trusted');
    let firstError: AttestationError | undefined;
    for (const a of trusting) {
      try {
        const w = await a.verify(token, now);
        if (this.cache.size >= this.maxCache) this.cache.delete(this.cache.keys().next().value!);
        this.cache.set(token, w);
        return w;
      } catch (e) {
        firstError ??= e instanceof AttestationError ? e : new AttestationError('attestation_invalid', 'attestation token rejected');
      }
    }
    throw firstError!;
  }
}
