/**
 * The optional native part (src/native/ecdsa.c and crl.c, built by `npm ci` through
 * scripts/build-native.mjs with node-gyp against Node's own headers and OpenSSL): ECDSA for CSR checks
 * and the CA's signatures, and the CRL entries of a closed task's serials. When it is absent (no
 * compiler, a failed build, `MAYFLY_NATIVE=0`), callers use node:crypto and JavaScript instead: same
 * answers, about twice the CPU for a new agent key's CSR.
 * `nativeStatus()` says which, and the broker warns at start when the build failed.
 */
import { createRequire } from 'node:module';

/** An EC private key held by the addon (see ecdsa.c `signer`). */
export type NativeSigner = { readonly __nativeSigner: unique symbol };

export interface NativeEcdsa {
  /** 1 valid, 0 invalid signature, -1 the point is not a key on that curve. See ecdsa.c. */
  verify(curve: 0 | 1, point: Uint8Array, hash: 0 | 1 | 2, message: Uint8Array, signature: Uint8Array): number;
  /** Loads a SEC1 EC private key on `curve`; throws a TypeError if it is not one. */
  signer(curve: 0 | 1, sec1: Uint8Array): NativeSigner;
  /** DER ECDSA-Sig-Value over the hash of `message`, or null if OpenSSL failed. */
  sign(signer: NativeSigner, hash: 0 | 1 | 2, message: Uint8Array): Buffer | null;
}

/** See crl.c: the revokedCertificates entries of a task's serial slots, and how many. */
export type NativeCrlSlots = (slots: Uint8Array, slotSize: number, time: Uint8Array) => [Buffer, number];

const BINARY = './build/Release/mayfly_native.node';

function load(): { ecdsa: NativeEcdsa | null; crlSlots: NativeCrlSlots | null; reason: string } {
  if (process.env.MAYFLY_NATIVE === '0') return { ecdsa: null, crlSlots: null, reason: 'disabled by MAYFLY_NATIVE=0' };
  try {
    const mod = createRequire(import.meta.url)(BINARY) as Partial<NativeEcdsa> & { crlSlots?: NativeCrlSlots };
    if (typeof mod.verify !== 'function' || typeof mod.signer !== 'function' || typeof mod.sign !== 'function' || typeof mod.crlSlots !== 'function')
      return { ecdsa: null, crlSlots: null, reason: `${BINARY} lacks verify/signer/sign/crlSlots: rebuild it (node scripts/build-native.mjs --force)` };
    return { ecdsa: mod as NativeEcdsa, crlSlots: mod.crlSlots, reason: 'loaded' };
  } catch (e) {
    return { ecdsa: null, crlSlots: null, reason: `not built (${(e as Error).message.split('\n')[0]}); run \`node scripts/build-native.mjs\`` };
  }
}

const loaded = load();

/** The native ECDSA check, or null when callers must use node:crypto. */
export const nativeEcdsa: NativeEcdsa | null = loaded.ecdsa;

/** The native CRL entry writer for serial slots, or null when src/x509/crl.ts writes them itself. */
export const nativeCrlSlots: NativeCrlSlots | null = loaded.crlSlots;

export function nativeStatus(): { ecdsa: boolean; reason: string } {
  return { ecdsa: loaded.ecdsa !== null, reason: loaded.reason };
}
