/**
 * src/native (ECDSA for CSRs and the CA): built on our machines, and the same answers as node:crypto
 * for valid, mutated and foreign signatures, points off the curve and hostile arguments; its CA
 * signatures verify with node:crypto. parseCsr gives the same results with it and without it
 * (MAYFLY_NATIVE=0 re-imports the node:crypto path).
 */
import { createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import fc from 'fast-check';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { nativeEcdsa, nativeStatus } from '../../../src/native/index.js';
import { buildCsr } from '../x509/helpers.js';

const hasCompiler = spawnSync('g++', ['--version']).status === 0 || spawnSync('cc', ['--version']).status === 0;
const HASHES = ['sha256', 'sha384', 'sha512'] as const;

function point(pub: KeyObject): Buffer {
  const jwk = pub.export({ format: 'jwk' });
  return Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x!, 'base64url'), Buffer.from(jwk.y!, 'base64url')]);
}

describe('native ECDSA', () => {
  it('is built and loaded wherever a C compiler is (npm ci runs scripts/build-native.mjs)', () => {
    if (process.env.MAYFLY_NATIVE === '0') return;
    if (hasCompiler) expect(nativeStatus()).toEqual({ ecdsa: true, reason: 'loaded' });
  });

  const n = nativeEcdsa;
  const curves = [
    { name: 'P-256', id: 0 as const },
    { name: 'P-384', id: 1 as const },
  ];

  it.runIf(n)('agrees with node:crypto on valid, mutated and foreign signatures (fast-check)', () => {
    for (const c of curves) {
      const a = generateKeyPairSync('ec', { namedCurve: c.name });
      const b = generateKeyPairSync('ec', { namedCurve: c.name });
      const pa = point(a.publicKey);
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat({ max: 2 }), fc.nat(), fc.integer({ min: 0, max: 255 }), fc.boolean(), (msg, h, pos, delta, foreign) => {
          const hash = HASHES[h]!;
          const sig = Buffer.from(sign(hash, msg, foreign ? b.privateKey : a.privateKey));
          if (delta) sig[pos % sig.length] = (sig[pos % sig.length]! + delta) & 0xff;
          const expected = verify(hash, msg, a.publicKey, sig);
          return n!.verify(c.id, pa, h as 0 | 1 | 2, msg, sig) === (expected ? 1 : 0);
        }),
        { numRuns: 300 },
      );
    }
  });

  it.runIf(n)('refuses points that are not keys on the curve (-1), as node:crypto refuses to load them', () => {
    const kp = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const msg = Buffer.from('m');
    const sig = sign('sha256', msg, kp.privateKey);
    const p = point(kp.publicKey);
    const off = Buffer.from(p);
    off[64] = off[64]! ^ 1; // y changed: off the curve
    expect(() => createPublicKey({ key: { kty: 'EC', crv: 'P-256', x: off.subarray(1, 33).toString('base64url'), y: off.subarray(33).toString('base64url') }, format: 'jwk' })).toThrow();
    expect(n!.verify(0, off, 0, msg, sig)).toBe(-1);
    expect(n!.verify(0, Buffer.alloc(65), 0, msg, sig)).toBe(-1); // zero bytes, x = y = 0 with 0x00 prefix
    expect(n!.verify(0, Buffer.from([0]), 0, msg, sig)).toBe(-1); // the point at infinity
    expect(n!.verify(1, p, 0, msg, sig)).toBe(-1); // a P-256 point given as P-384
    expect(n!.verify(0, Buffer.concat([p, Buffer.from([0])]), 0, msg, sig)).toBe(-1); // trailing byte
    expect(n!.verify(0, p, 0, msg, sig)).toBe(1);
    // after failures, node:crypto still works (the OpenSSL error queue was cleared)
    expect(verify('sha256', msg, kp.publicKey, sig)).toBe(true);
  });

  it.runIf(n)('non-canonical DER signatures are invalid, as in node:crypto', () => {
    const kp = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const msg = Buffer.from('m');
    const sig = Buffer.from(sign('sha256', msg, kp.privateKey));
    const long = Buffer.concat([Buffer.from([0x30, 0x81, sig[1]!]), sig.subarray(2)]); // non-minimal length
    const trailing = Buffer.concat([sig, Buffer.from([0])]);
    for (const bad of [long, trailing, Buffer.alloc(0)]) {
      expect(verify('sha256', msg, kp.publicKey, bad)).toBe(false);
      expect(n!.verify(0, point(kp.publicKey), 0, msg, bad)).toBe(0);
    }
  });

  it.runIf(n)('signatures with r or s out of range (0, n, n+1, negative, oversized) are invalid, as in node:crypto', () => {
    const N = BigInt('0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551'); // P-256 group order
    const kp = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const msg = Buffer.from('m');
    const good = Buffer.from(sign('sha256', msg, kp.privateKey));
    const int = (v: bigint | Buffer): Buffer => {
      let b = Buffer.isBuffer(v) ? v : Buffer.from((v === 0n ? '00' : v.toString(16).padStart(Math.ceil(v.toString(16).length / 2) * 2, '0')), 'hex');
      if (b[0]! & 0x80) b = Buffer.concat([Buffer.from([0]), b]);
      return Buffer.concat([Buffer.from([0x02, b.length]), b]);
    };
    const der = (r: Buffer, s: Buffer) => Buffer.concat([Buffer.from([0x30, r.length + s.length]), r, s]);
    // the good signature's own r and s, to pair with out-of-range values
    const rLen = good[3]!;
    const r = good.subarray(2, 4 + rLen);
    const s = good.subarray(4 + rLen);
    const cases = [
      der(int(0n), s),
      der(r, int(0n)),
      der(int(N), s),
      der(r, int(N)),
      der(int(N + 1n), s),
      der(r, int(N + BigInt('0x' + s.subarray(2).toString('hex')))), // s + n: the same s modulo n
      der(Buffer.from([0x02, 0x01, 0xff]), s), // negative r
      der(int(2n ** 300n), s), // r far larger than the order
    ];
    for (const bad of cases) {
      expect(verify('sha256', msg, kp.publicKey, bad)).toBe(false);
      expect(n!.verify(0, point(kp.publicKey), 0, msg, bad)).toBe(0);
    }
    expect(n!.verify(0, point(kp.publicKey), 0, msg, der(r, s))).toBe(1); // the pieces themselves are fine
  });

  it.runIf(n)('throws a TypeError on wrong argument types or sizes, never crashes', () => {
    const p = point(generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey);
    const m = Buffer.from('m');
    const s = Buffer.alloc(70);
    const calls: (() => unknown)[] = [
      () => (n!.verify as (...a: unknown[]) => number)(),
      () => (n!.verify as (...a: unknown[]) => number)(0, p, 0, m),
      () => n!.verify(2 as 0, p, 0, m, s),
      () => n!.verify(-1 as 0, p, 0, m, s),
      () => n!.verify(0, p, 3 as 0, m, s),
      () => n!.verify(0, 'x' as unknown as Uint8Array, 0, m, s),
      () => n!.verify(0, new Uint16Array(33) as unknown as Uint8Array, 0, m, s),
      () => n!.verify(0, Buffer.alloc(0), 0, m, s),
      () => n!.verify(0, Buffer.alloc(98), 0, m, s),
      () => n!.verify(0, p, 0, Buffer.alloc(64 * 1024 + 1), s),
      () => n!.verify(0, p, 0, m, Buffer.alloc(140)),
      () => n!.verify('0' as unknown as 0, p, 0, m, s),
    ];
    for (const call of calls) expect(call).toThrow(TypeError);
  });
});

describe('native ECDSA signing (the CA key)', () => {
  const n = nativeEcdsa;
  const sec1 = (k: KeyObject) => k.export({ type: 'sec1', format: 'der' });

  it.runIf(n)('its signatures verify with node:crypto: P-256/SHA-256 and P-384/SHA-384, any message (fast-check)', () => {
    for (const [name, id, hash] of [['P-256', 0, 'sha256'], ['P-384', 1, 'sha384']] as const) {
      const kp = generateKeyPairSync('ec', { namedCurve: name });
      const signer = n!.signer(id, sec1(kp.privateKey));
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 2000 }), (msg) => {
          const sig = n!.sign(signer, id, msg);
          return sig !== null && verify(hash, msg, kp.publicKey, sig) && !verify(hash, Buffer.concat([msg, Buffer.from([1])]), kp.publicKey, sig);
        }),
        { numRuns: 200 },
      );
      // randomised: two signatures of the same message differ, both valid
      const a = n!.sign(signer, id, Buffer.from('m'))!;
      const b = n!.sign(signer, id, Buffer.from('m'))!;
      expect(a.equals(b)).toBe(false);
      expect(verify(hash, Buffer.from('m'), kp.publicKey, b)).toBe(true);
    }
  });

  it.runIf(n)('signer refuses anything but a consistent EC private key on the named curve', () => {
    const p256 = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    const good = sec1(p256);
    const tampered = Buffer.from(good);
    tampered[10] = tampered[10]! ^ 0xff; // the private scalar no longer matches the embedded public key
    const bad: [number, Uint8Array][] = [
      [1, good], // a P-256 key for P-384
      [0, sec1(generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey)],
      [0, generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs1', format: 'der' }).subarray(0, 500)],
      [0, good.subarray(0, good.length - 1)],
      [0, Buffer.concat([good, Buffer.from([0])])],
      [0, tampered],
      [0, Buffer.alloc(0)],
      [0, Buffer.alloc(513)],
    ];
    for (const [curve, der] of bad) expect(() => n!.signer(curve as 0, der)).toThrow(TypeError);
    expect(() => n!.signer(0, good)).not.toThrow();
  });

  it.runIf(n)('sign takes only its own handles', () => {
    const signer = n!.signer(0, sec1(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey));
    const m = Buffer.from('m');
    const calls: (() => unknown)[] = [
      () => n!.sign({} as never, 0, m),
      () => n!.sign(null as never, 0, m),
      () => n!.sign(Buffer.alloc(8) as never, 0, m),
      () => n!.sign(signer, 3 as 0, m),
      () => n!.sign(signer, 0, 'm' as unknown as Uint8Array),
      () => (n!.sign as (...a: unknown[]) => unknown)(signer, 0),
    ];
    for (const call of calls) expect(call).toThrow(TypeError);
  });
});

describe('parseCsr with and without src/native', () => {
  afterAll(() => {
    vi.unstubAllEnvs();
    vi.resetModules();
  });

  it.runIf(nativeEcdsa)('same keys, codes and SPKI for valid, mutated and off-curve CSRs', async () => {
    const native = await import('../../../src/x509/csr.js');
    vi.resetModules();
    vi.stubEnv('MAYFLY_NATIVE', '0');
    const plain = await import('../../../src/x509/csr.js');
    expect((await import('../../../src/native/index.js')).nativeStatus().ecdsa).toBe(false);

    const outcome = (parse: typeof native.parseCsr, csr: Uint8Array) => {
      try {
        const r = parse(csr);
        return `${r.keyType} ${r.signatureAlgorithm} ${r.spkiDer.toString('hex')}`;
      } catch (e) {
        return (e as { code?: string }).code ?? 'other';
      }
    };
    const csrs = [generateKeyPairSync('ec', { namedCurve: 'P-256' }), generateKeyPairSync('ec', { namedCurve: 'P-384' })].map((kp) => buildCsr(kp.privateKey, kp.publicKey));
    for (const der of csrs) {
      expect(outcome(native.parseCsr, der)).toMatch(/^ec-p/);
      fc.assert(
        fc.property(fc.nat({ max: der.length - 1 }), fc.integer({ min: 1, max: 255 }), (pos, delta) => {
          const m = Buffer.from(der);
          m[pos] = (m[pos]! + delta) & 0xff;
          return outcome(native.parseCsr, m) === outcome(plain.parseCsr, m);
        }),
        { numRuns: 800 },
      );
    }
    // a key point moved off the curve, signed anyway: not a key (csr_malformed) on both paths
    const kp = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const spki = Buffer.from(kp.publicKey.export({ type: 'spki', format: 'der' }));
    spki[spki.length - 1] = spki[spki.length - 1]! ^ 1;
    const offCurve = buildCsr(kp.privateKey, kp.publicKey, { spkiDer: spki });
    expect(outcome(native.parseCsr, offCurve)).toBe('csr_malformed');
    expect(outcome(plain.parseCsr, offCurve)).toBe('csr_malformed');
  });
});
