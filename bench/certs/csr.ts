/**
 * P-256 certificate requests (PKCS#10, RFC 2986) made in-process: a fresh key per request, the DER
 * written by hand (subject CN only, no attributes), signed ECDSA-SHA256 with node:crypto. Each is what
 * `openssl req -new -key <p256 key> -subj /CN=...` produces, minus the tool's start-up cost, so a pool
 * of hundreds is ready in well under a second.
 */
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';

export interface BenchCsr {
  pem: string;
  der: Buffer;
  /** The requester's public key (SPKI DER): an issued certificate must carry exactly this. */
  spkiDer: Buffer;
  publicKey: KeyObject;
  /** The signed part (CertificationRequestInfo) and its ECDSA signature (DER), for in-process baselines. */
  info: Buffer;
  signature: Buffer;
}

function tlv(tag: number, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content);
  const n = body.length;
  const len = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : [0x82, n >> 8, n & 0xff];
  if (n > 0xffff) throw new Error('DER value too long');
  return Buffer.concat([Buffer.from([tag, ...len]), body]);
}

const SEQ = 0x30;
const SET = 0x31;
const OID_CN = Buffer.from('0603550403', 'hex'); // 2.5.4.3 commonName
const ECDSA_SHA256 = tlv(SEQ, Buffer.from('06082a8648ce3d040302', 'hex')); // 1.2.840.10045.4.3.2, no parameters

export function makeP256Csr(commonName: string): BenchCsr {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const spkiDer = publicKey.export({ type: 'spki', format: 'der' });
  const subject = tlv(SEQ, tlv(SET, tlv(SEQ, OID_CN, tlv(0x0c, Buffer.from(commonName, 'utf8')))));
  const info = tlv(SEQ, Buffer.from([0x02, 0x01, 0x00]), subject, spkiDer, Buffer.from([0xa0, 0x00]));
  const signature = sign('sha256', info, privateKey); // DER-encoded ECDSA-Sig-Value
  const der = tlv(SEQ, info, ECDSA_SHA256, tlv(0x03, Buffer.from([0]), signature));
  const b64 = der.toString('base64').replace(/.{1,64}/g, '$&\n');
  return { pem: `-----BEGIN CERTIFICATE REQUEST-----\n${b64}-----END CERTIFICATE REQUEST-----\n`, der, spkiDer, publicKey, info, signature };
}

/** `n` requests with distinct keys, subjects `CN=<prefix>-0000`, ... */
export function makeCsrPool(n: number, prefix = 'bench-agent'): BenchCsr[] {
  return Array.from({ length: n }, (_, i) => makeP256Csr(`${prefix}-${String(i).padStart(4, '0')}`));
}
