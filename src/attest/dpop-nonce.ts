/**
 * DPoP nonces (RFC 9449 §8 at the broker's token endpoint, §9 at resource servers), stateless and
 * shared by every replica: a nonce is the time window it was issued in (8 bytes) and a MAC of that
 * window (16 bytes of HMAC-SHA256) under a key every replica shares: at the broker, derived from the
 * CA's private key (`fromCaKey`); at a resource server, from its configured secret (`fromSecret`, the
 * SDK verifier). Good in its window and the next, so for `lifetime` to twice that; nothing is stored.
 */
import { createHash, createHmac, timingSafeEqual, type KeyObject } from 'node:crypto';

const MAC_BYTES = 16;
const NONCE = /^[A-Za-z0-9_-]{32}$/; // base64url of 24 bytes
/** A resource server's nonce secret: at least this many bytes (as much as the MAC key it makes). */
export const MIN_NONCE_SECRET_BYTES = 32;

export class DpopNonces {
  /** `key`: the MAC key, 32 bytes; see fromCaKey and fromSecret. */
  private constructor(
    private readonly key: Buffer,
    private readonly lifetimeMs: number,
  ) {
    if (!Number.isSafeInteger(lifetimeMs) || lifetimeMs < 1000) throw new RangeError('a DPoP nonce lifetime is a whole number of ms, at least 1000');
  }

  /** The broker's nonces: keyed by its CA key, which every replica has. */
  static fromCaKey(caKey: KeyObject, lifetimeMs: number): DpopNonces {
    const key = createHash('sha256').update('mayfly dpop nonce v1\0').update(caKey.export({ format: 'der', type: 'pkcs8' })).digest();
    return new DpopNonces(key, lifetimeMs);
  }

  /** A resource server's nonces: keyed by a secret its replicas share (a string as UTF-8), at least 32 bytes. */
  static fromSecret(secret: string | Uint8Array, lifetimeMs: number): DpopNonces {
    const bytes = typeof secret === 'string' ? Buffer.from(secret, 'utf8') : Buffer.from(secret);
    if (bytes.length < MIN_NONCE_SECRET_BYTES) throw new RangeError(`the DPoP nonce secret must be at least ${MIN_NONCE_SECRET_BYTES} bytes`);
    return new DpopNonces(createHash('sha256').update('mayfly resource server dpop nonce v1\0').update(bytes).digest(), lifetimeMs);
  }

  private mac(window: bigint): Buffer {
    const w = Buffer.alloc(8);
    w.writeBigUInt64BE(window);
    return Buffer.concat([w, createHmac('sha256', this.key).update(w).digest().subarray(0, MAC_BYTES)]);
  }

  /** The nonce to hand out at `now`. */
  current(now: number): string {
    return this.mac(BigInt(Math.floor(now / this.lifetimeMs))).toString('base64url');
  }

  /** Whether `nonce` is one of ours, issued in this window or the one before. */
  valid(nonce: unknown, now: number): boolean {
    if (typeof nonce !== 'string' || !NONCE.test(nonce)) return false;
    const raw = Buffer.from(nonce, 'base64url');
    const window = raw.readBigUInt64BE(0);
    const current = BigInt(Math.floor(now / this.lifetimeMs));
    if (window !== current && window !== current - 1n) return false;
    return timingSafeEqual(raw, this.mac(window));
  }
}
