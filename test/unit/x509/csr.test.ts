/** parseCsr: openssl-made CSRs of every accepted key type, typed rejections, and fuzzing with fast-check. */
import { generateKeyPairSync, createPublicKey, sign } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCsr } from '../../../src/x509/csr.js';
import { X509Error, type X509ErrorCode } from '../../../src/x509/errors.js';
import { toPem } from '../../../src/x509/pem.js';
import { TRUE, bits, ctx, ctxPrim, intSmall, octets, oid, seq, set, utf8 } from '../../../src/x509/der.js';
import { Workdir, buildCsr, keyPair, opensslCsr, type KeySpec } from './helpers.js';

const w = new Workdir();
afterAll(() => w.cleanup());

function codeOf(f: () => unknown): X509ErrorCode | 'returned' | 'other' {
  try {
    f();
    return 'returned';
  } catch (e) {
    return e instanceof X509Error ? e.code : 'other';
  }
}

const derOf = (pem: string) => Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ''), 'base64');

describe('parseCsr accepts openssl CSRs', () => {
  const cases: [KeySpec, string, number | undefined, string][] = [
    ['p256', 'ec-p256', undefined, 'ecdsa-sha256'],
    ['p384', 'ec-p384', undefined, 'ecdsa-sha256'],
    ['ed25519', 'ed25519', undefined, 'ed25519'],
    ['rsa2048', 'rsa', 2048, 'rsa-pkcs1-sha256'],
  ];
  for (const [spec, keyType, rsaBits, alg] of cases) {
    it(`${spec}: PEM, DER and PEM bytes; the SPKI is the key's`, () => {
      const pem = opensslCsr(w, spec, spec);
      const a = parseCsr(pem);
      expect(a.keyType).toBe(keyType);
      expect(a.rsaBits).toBe(rsaBits);
      expect(a.signatureAlgorithm).toBe(alg);
      w.openssl(['pkey', '-in', `${spec}.key`, '-pubout', '-outform', 'DER', '-out', `${spec}.spki`]);
      expect(a.spkiDer.equals(w.read(`${spec}.spki`))).toBe(true);
      w.openssl(['req', '-in', `${spec}.csr`, '-outform', 'DER', '-out', `${spec}.csr.der`]);
      expect(parseCsr(w.read(`${spec}.csr.der`)).spkiDer.equals(a.spkiDer)).toBe(true);
      expect(parseCsr(new Uint8Array(Buffer.from(pem))).keyType).toBe(keyType);
      expect(parseCsr(pem.replace(/CERTIFICATE REQUEST/g, 'NEW CERTIFICATE REQUEST')).keyType).toBe(keyType);
      expect(parseCsr(`\r\n  ${pem.replace(/\n/g, '\r\n')}\n\n`).keyType).toBe(keyType);
    });
  }

  it('RSA-PSS signed CSRs (SHA-256, salt 32) and SHA-384/512 ECDSA', () => {
    opensslCsr(w, 'pss', 'rsa2048');
    w.openssl(['req', '-new', '-key', 'pss.key', '-subj', '/CN=x', '-sha256', '-sigopt', 'rsa_padding_mode:pss', '-sigopt', 'rsa_pss_saltlen:32', '-out', 'pss2.csr']);
    expect(parseCsr(w.readText('pss2.csr')).signatureAlgorithm).toBe('rsa-pss-sha256');
    opensslCsr(w, 'ec384', 'p384', ['-sha384']);
    expect(parseCsr(w.readText('ec384.csr')).signatureAlgorithm).toBe('ecdsa-sha384');
    opensslCsr(w, 'ec512', 'p256', ['-sha512']);
    expect(parseCsr(w.readText('ec512.csr')).signatureAlgorithm).toBe('ecdsa-sha512');
  });

  it('a compressed EC point comes back as the canonical uncompressed SPKI', () => {
    opensslCsr(w, 'cmp', 'p256');
    w.openssl(['ec', '-in', 'cmp.key', '-conv_form', 'compressed', '-out', 'cmpc.key']);
    w.openssl(['req', '-new', '-key', 'cmpc.key', '-subj', '/CN=x', '-out', 'cmpc.csr']);
    const a = parseCsr(w.readText('cmpc.csr'));
    const b = parseCsr(w.readText('cmp.csr'));
    expect(a.spkiDer.equals(b.spkiDer)).toBe(true);
    expect(a.spkiDer.length).toBe(91);
  });

  it('CSRs built by another encoder (asn1-csr) for the four key types', () => {
    for (const kp of [
      generateKeyPairSync('ec', { namedCurve: 'P-256' }),
      generateKeyPairSync('ec', { namedCurve: 'P-384' }),
      generateKeyPairSync('ed25519'),
      generateKeyPairSync('rsa', { modulusLength: 2048 }),
    ]) {
      expect(() => parseCsr(buildCsr(kp.privateKey, kp.publicKey))).not.toThrow();
    }
  });
});

describe('parseCsr reads out what an extension request asks that policy judges (CA flag, subjectAltNames)', () => {
  const EXT_REQ = '1.2.840.113549.1.9.14';
  const MS_EXT_REQ = '1.3.6.1.4.1.311.2.1.14';
  const ext = (oidDotted: string, value: Buffer, critical = false) => seq(oid(oidDotted), ...(critical ? [TRUE] : []), octets(value));
  const attr = (type: string, ...values: Buffer[]) => seq(oid(type), set(...values));
  const bcCa = ext('2.5.29.19', seq(TRUE), true);
  const sanOf = (...names: Buffer[]) => ext('2.5.29.17', seq(...names));
  /** A P-256 CSR with these attributes, signed by its own key (our DER writer, not openssl). */
  const signed = (...attributes: Buffer[]): Buffer => {
    const kp = keyPair('p256');
    const cri = seq(intSmall(0), seq(), kp.publicKey.export({ type: 'spki', format: 'der' }), ctx(0, ...attributes));
    return seq(cri, seq(oid('1.2.840.10045.4.3.2')), bits(sign('sha256', cri, kp.privateKey)));
  };

  it('from openssl: CA:TRUE and every kind of SAN, in order; none asked without an extension request', () => {
    const pem = opensslCsr(w, 'asks', 'p256', ['-addext', 'basicConstraints=critical,CA:TRUE',
      '-addext', 'subjectAltName=URI:spiffe://x.test/a,DNS:api.example,IP:10.0.0.1,IP:2001:db8::1,email:b@example.com']);
    expect(parseCsr(pem).asks).toEqual({ ca: true, sans: ['URI:spiffe://x.test/a', 'DNS:api.example', 'IP:10.0.0.1', 'IP:2001:db8:0:0:0:0:0:1', 'email:b@example.com'] });
    expect(parseCsr(opensslCsr(w, 'asks-none', 'p256')).asks).toEqual({ ca: false, sans: [] });
    expect(parseCsr(opensslCsr(w, 'asks-noca', 'p256', ['-addext', 'basicConstraints=CA:FALSE', '-addext', 'keyUsage=keyCertSign'])).asks).toEqual({ ca: false, sans: [] });
  });

  it('hand-built: Microsoft msExtReq counts too; other attributes and extensions are not read', () => {
    expect(parseCsr(signed(attr(MS_EXT_REQ, seq(bcCa)))).asks.ca).toBe(true);
    const challenge = attr('1.2.840.113549.1.9.7', utf8('secret'));
    const unknownExt = ext('1.2.3.4.5', Buffer.from('not even DER'));
    expect(parseCsr(signed(challenge, attr(EXT_REQ, seq(unknownExt, sanOf(ctxPrim(6, Buffer.from('spiffe://x.test/b'))))))).asks).toEqual({ ca: false, sans: ['URI:spiffe://x.test/b'] });
    expect(parseCsr(signed(attr(EXT_REQ, seq(sanOf(ctx(4, seq()), ctxPrim(8, Buffer.from([0x2a]))))))).asks.sans).toEqual(['DirName', 'RID']);
  });

  it('a malformed or repeated extension request is csr_malformed, never ignored', () => {
    const cases: [string, Buffer][] = [
      ['two extension requests', signed(attr(EXT_REQ, seq(bcCa)), attr(MS_EXT_REQ, seq()))],
      ['two values', signed(attr(EXT_REQ, seq(bcCa), seq()))],
      ['no value', signed(attr(EXT_REQ))],
      ['value not Extensions', signed(attr(EXT_REQ, utf8('x')))],
      ['the same extension twice', signed(attr(EXT_REQ, seq(sanOf(ctxPrim(2, Buffer.from('a'))), sanOf(ctxPrim(2, Buffer.from('b'))))))],
      ['SAN not GeneralNames', signed(attr(EXT_REQ, seq(ext('2.5.29.17', utf8('URI:spiffe://x.test/a')))))],
      ['empty GeneralNames', signed(attr(EXT_REQ, seq(sanOf())))],
      ['unknown GeneralName tag', signed(attr(EXT_REQ, seq(sanOf(ctxPrim(9, Buffer.from('a'))))))],
      ['basicConstraints not a SEQUENCE', signed(attr(EXT_REQ, seq(ext('2.5.29.19', TRUE))))],
      ['trailing bytes in extnValue', signed(attr(EXT_REQ, seq(ext('2.5.29.19', Buffer.concat([seq(TRUE), Buffer.from([0])])))))],
      ['attribute without values', signed(seq(oid(EXT_REQ)))],
    ];
    for (const [name, der] of cases) expect(codeOf(() => parseCsr(der)), name).toBe('csr_malformed');
  });
});

describe('parseCsr rejects, with typed codes', () => {
  let p256: string;
  let p256Der: Buffer;
  beforeAll(() => {
    p256 = opensslCsr(w, 'rej', 'p256');
    p256Der = derOf(p256);
  });

  it('garbage, wrong PEM labels, broken base64, non-string input', () => {
    expect(codeOf(() => parseCsr('hello'))).toBe('csr_malformed');
    expect(codeOf(() => parseCsr(''))).toBe('csr_malformed');
    expect(codeOf(() => parseCsr(new Uint8Array()))).toBe('csr_malformed');
    expect(codeOf(() => parseCsr('-----BEGIN CERTIFICATE REQUEST-----\n!!!!\n-----END CERTIFICATE REQUEST-----'))).toBe('csr_malformed');
    expect(codeOf(() => parseCsr('-----BEGIN CERTIFICATE REQUEST-----\nAAA\n-----END CERTIFICATE REQUEST-----'))).toBe('csr_malformed');
    expect(codeOf(() => parseCsr(p256.replace(/CERTIFICATE REQUEST/g, 'CERTIFICATE')))).toBe('csr_malformed');
    expect(codeOf(() => parseCsr(p256.replace('-----END CERTIFICATE REQUEST-----', '-----END NEW CERTIFICATE REQUEST-----')))).toBe('csr_malformed');
    // RFC 7468 §2: explanatory text around the one block is ignored (as `openssl req -text` prints it)
    expect(parseCsr(`Certificate Request:\n    Data: ...\n${p256}trailing words\n`).keyType).toBe(parseCsr(p256).keyType);
    expect(codeOf(() => parseCsr(p256 + p256))).toBe('csr_malformed');
    expect(codeOf(() => parseCsr(42 as unknown as string))).toBe('csr_malformed');
    expect(codeOf(() => parseCsr(Buffer.from('garbage bytes')))).toBe('csr_malformed');
  });

  it('truncated DER, trailing bytes, indefinite length, wrong version', () => {
    expect(codeOf(() => parseCsr(p256Der.subarray(0, p256Der.length - 10)))).toBe('csr_malformed');
    expect(codeOf(() => parseCsr(p256Der.subarray(0, 1)))).toBe('csr_malformed');
    expect(codeOf(() => parseCsr(Buffer.concat([p256Der, Buffer.from([0])])))).toBe('csr_malformed');
    expect(codeOf(() => parseCsr(toPem('CERTIFICATE REQUEST', Buffer.concat([p256Der, Buffer.from([5, 0])]))))).toBe('csr_malformed');
    // outer SEQUENCE re-encoded with a BER indefinite length
    const inner = p256Der.subarray(p256Der[1]! & 0x80 ? 2 + (p256Der[1]! & 0x7f) : 2);
    expect(codeOf(() => parseCsr(Buffer.concat([Buffer.from([0x30, 0x80]), inner, Buffer.from([0, 0])])))).toBe('csr_malformed');
    // version 0 → 1 (02 01 00 right after the two SEQUENCE headers)
    const v = Buffer.from(p256Der);
    const at = v.indexOf(Buffer.from([0x02, 0x01, 0x00]));
    expect(at).toBeGreaterThan(0);
    v[at + 2] = 1;
    expect(codeOf(() => parseCsr(v))).toBe('csr_malformed');
  });

  it('a flipped byte in the signature or in the signed part: csr_bad_signature', () => {
    for (const spec of ['p256', 'ed25519', 'rsa2048'] as const) {
      const der = derOf(opensslCsr(w, `flip-${spec}`, spec));
      const sig = Buffer.from(der);
      sig[sig.length - 1]! ^= 0x01;
      expect(codeOf(() => parseCsr(sig)), spec).toBe('csr_bad_signature');
      const body = Buffer.from(der);
      const cn = body.indexOf(Buffer.from('agent'));
      body[cn]! ^= 0x20; // 'agent' -> 'Agent'
      expect(codeOf(() => parseCsr(body)), spec).toBe('csr_bad_signature');
    }
  });

  it('Ed25519 keys anyone can sign for: small-order points (both signs of x) and y >= p are csr_weak_key', () => {
    // the identity "signs" every message with R = identity, S = 0; OpenSSL verifies it: the check must
    // refuse the key before the signature is asked
    const le = (y: bigint) => Buffer.from(y.toString(16).padStart(64, '0'), 'hex').reverse();
    const p = (1n << 255n) - 19n;
    const weak = [
      ...['00', '01'].map((b) => Buffer.concat([Buffer.from(b, 'hex'), Buffer.alloc(31)])),
      le(p - 1n),
      Buffer.from('26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05', 'hex'),
      Buffer.from('c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a', 'hex'),
      le(p), le(p + 1n), le((1n << 255n) - 1n), // not canonical (y >= p)
    ];
    const edSpki = (key: Buffer) => Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), key]);
    const kp = keyPair('ed25519');
    for (const key of [...weak, ...weak.map((k) => Buffer.concat([k.subarray(0, 31), Buffer.from([k[31]! | 0x80])]))]) {
      const identitySig = Buffer.concat([Buffer.from('01', 'hex'), Buffer.alloc(63)]);
      const der = buildCsr(kp.privateKey, kp.publicKey, { spkiDer: edSpki(key), signature: identitySig });
      expect(codeOf(() => parseCsr(der)), key.toString('hex')).toBe('csr_weak_key');
    }
    // a real key right below the threshold values still works
    expect(parseCsr(buildCsr(kp.privateKey, kp.publicKey)).keyType).toBe('ed25519');
  });

  it('RSA-1024: csr_weak_key', () => {
    expect(codeOf(() => parseCsr(opensslCsr(w, 'rsa1024', 'rsa1024')))).toBe('csr_weak_key');
  });

  it('P-192, secp256k1, P-521, explicit curve parameters: csr_unsupported_key', () => {
    for (const curve of ['prime192v1', 'secp256k1', 'secp521r1']) {
      w.openssl(['ecparam', '-name', curve, '-genkey', '-noout', '-out', `${curve}.key`]);
      w.openssl(['req', '-new', '-key', `${curve}.key`, '-subj', '/CN=x', '-sha256', '-out', `${curve}.csr`]);
      expect(codeOf(() => parseCsr(w.readText(`${curve}.csr`))), curve).toBe('csr_unsupported_key');
    }
    w.openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-param_enc', 'explicit', '-out', 'explicit.key']);
    w.openssl(['req', '-new', '-key', 'explicit.key', '-subj', '/CN=x', '-sha256', '-out', 'explicit.csr']);
    expect(codeOf(() => parseCsr(w.readText('explicit.csr')))).toBe('csr_unsupported_key');
  });

  it('DSA and Ed448: csr_unsupported_key', () => {
    w.openssl(['genpkey', '-genparam', '-algorithm', 'DSA', '-pkeyopt', 'dsa_paramgen_bits:1024', '-out', 'dsap.pem']);
    w.openssl(['genpkey', '-paramfile', 'dsap.pem', '-out', 'dsa.key']);
    w.openssl(['req', '-new', '-key', 'dsa.key', '-subj', '/CN=x', '-sha256', '-out', 'dsa.csr']);
    expect(codeOf(() => parseCsr(w.readText('dsa.csr')))).toBe('csr_unsupported_key');
    w.openssl(['genpkey', '-algorithm', 'ED448', '-out', 'ed448.key']);
    w.openssl(['req', '-new', '-key', 'ed448.key', '-subj', '/CN=x', '-out', 'ed448.csr']);
    expect(codeOf(() => parseCsr(w.readText('ed448.csr')))).toBe('csr_unsupported_key');
  });

  it('SHA-1 signatures: csr_unsupported_algorithm; an algorithm that does not fit the key: csr_malformed', () => {
    opensslCsr(w, 'sha1', 'p256');
    w.openssl(['req', '-new', '-key', 'sha1.key', '-subj', '/CN=x', '-sha1', '-out', 'sha1b.csr']);
    expect(codeOf(() => parseCsr(w.readText('sha1b.csr')))).toBe('csr_unsupported_algorithm');
    const kp = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    expect(codeOf(() => parseCsr(buildCsr(kp.privateKey, kp.publicKey, { sigAlgOid: '1.2.840.113549.1.1.11' })))).toBe('csr_malformed');
    expect(codeOf(() => parseCsr(buildCsr(kp.privateKey, kp.publicKey, { sigAlgOid: '1.3.101.112' })))).toBe('csr_malformed');
  });

  it('RSA above 8192 bits: csr_unsupported_key; even exponent: csr_weak_key (checked before the signature)', () => {
    const kp = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const rsaSpki = (bitsLen: number, e: number) => {
      const n = Buffer.alloc(bitsLen / 8, 0xab);
      n[0] = 0xc1;
      const jwk = { kty: 'RSA', n: n.toString('base64url'), e: Buffer.from([e >> 16, (e >> 8) & 255, e & 255]).toString('base64url') };
      return createPublicKey({ key: jwk, format: 'jwk' }).export({ type: 'spki', format: 'der' });
    };
    const sig = new Uint8Array(256);
    expect(codeOf(() => parseCsr(buildCsr(kp.privateKey, kp.publicKey, { spkiDer: rsaSpki(8200, 65537), signature: sig })))).toBe('csr_unsupported_key');
    expect(codeOf(() => parseCsr(buildCsr(kp.privateKey, kp.publicKey, { spkiDer: rsaSpki(2048, 65536), signature: sig })))).toBe('csr_weak_key');
  });

  it('oversized input: csr_too_large, before any parsing', () => {
    expect(codeOf(() => parseCsr('A'.repeat(16 * 1024 + 1)))).toBe('csr_too_large');
    expect(codeOf(() => parseCsr(Buffer.concat([p256Der, Buffer.alloc(17 * 1024)])))).toBe('csr_too_large');
    const bigPem = p256.replace('-----END', `${'A'.repeat(64)}\n`.repeat(300) + '-----END');
    expect(codeOf(() => parseCsr(bigPem))).toBe('csr_too_large');
  });
});

describe('parseCsr under fuzzing (fast-check)', () => {
  const kps = [generateKeyPairSync('ec', { namedCurve: 'P-256' }), generateKeyPairSync('ed25519'), generateKeyPairSync('rsa', { modulusLength: 2048 })];
  const valid = kps.map((kp) => buildCsr(kp.privateKey, kp.publicKey));

  it('random bytes and strings only ever raise X509Error', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 1200 }), (bytes) => {
        const c = codeOf(() => parseCsr(bytes));
        return c !== 'returned' && c !== 'other';
      }),
      { numRuns: 3000 },
    );
    fc.assert(
      fc.property(fc.string({ maxLength: 600 }), (s) => {
        const c = codeOf(() => parseCsr(s));
        return c !== 'returned' && c !== 'other';
      }),
      { numRuns: 1000 },
    );
  });

  it('every single-byte mutation, truncation or insertion of a valid CSR is rejected with an X509Error', () => {
    for (const der of valid) {
      fc.assert(
        fc.property(fc.nat({ max: der.length - 1 }), fc.integer({ min: 1, max: 255 }), (pos, delta) => {
          const m = Buffer.from(der);
          m[pos] = (m[pos]! + delta) & 0xff;
          const c = codeOf(() => parseCsr(m));
          return c !== 'returned' && c !== 'other';
        }),
        { numRuns: 1500 },
      );
      fc.assert(
        fc.property(fc.nat({ max: der.length - 1 }), fc.uint8Array({ minLength: 1, maxLength: 8 }), fc.boolean(), (pos, ins, truncate) => {
          const m = truncate ? der.subarray(0, pos) : Buffer.concat([der.subarray(0, pos), ins, der.subarray(pos)]);
          const c = codeOf(() => parseCsr(m));
          return c !== 'returned' && c !== 'other';
        }),
        { numRuns: 1000 },
      );
    }
  });

  it('a mutated signature never returns (csr_bad_signature or csr_malformed)', () => {
    for (const der of valid) {
      const sigLen = der.length - (der.length > 300 ? 256 : 64); // the signature sits at the end
      fc.assert(
        fc.property(fc.integer({ min: sigLen, max: der.length - 1 }), fc.integer({ min: 1, max: 255 }), (pos, delta) => {
          const m = Buffer.from(der);
          m[pos] = (m[pos]! + delta) & 0xff;
          const c = codeOf(() => parseCsr(m));
          return c === 'csr_bad_signature' || c === 'csr_malformed';
        }),
        { numRuns: 500 },
      );
    }
  });
});
