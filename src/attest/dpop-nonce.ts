/**
 * DPoP nonces (RFC 9449 §8), stateless and shared by every replica: a nonce is the time window it was
 * issued in (8 bytes) and a MAC of that window (16 bytes of HMAC-SHA256) under a key derived from the
 * CA's private key, which every replica of one broker shares. Good in its window and the next, so for
 * `lifetime` to twice that; nothing is stored.
 */
import { createHash, createHmac, timingSafeEqual, type KeyObject } from 'node:crypto';

const MAC_BYTES = 16;
const NONCE = /^[A-Za-z0-9_-]{32}$/; // base64url of 24 bytes

export class DpopNonces {
  private readonly key: Buffer;

  constructor(
    caKey: KeyObject,
    private readonly lifetimeMs: number,
  ) {
    this.key = createHash('sha256')
      .update('mayfly dpop nonce v1\0')
      .update(caKey.export({ format: 'der', type: 'pkcs8' }))
      .digest();
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
