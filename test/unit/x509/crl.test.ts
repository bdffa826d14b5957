/** buildCrl: openssl verifies and reads it; 10,000 entries are fast (time logged, not asserted). */
import { performance } from 'node:perf_hooks';
import fc from 'fast-check';
import { AsnConvert } from '@peculiar/asn1-schema';
import { CertificateList } from '@peculiar/asn1-x509';
import { afterAll, describe, expect, it } from 'vitest';
import { generateDevCa, loadCa } from '../../../src/x509/ca.js';
import { issueCertificate, randomSerial, serialHexOf } from '../../../src/x509/certificate.js';
import { buildCrl, encodeCrlEntries, encodeRevokedSlots, serialKey } from '../../../src/x509/crl.js';
import { parseCsr } from '../../../src/x509/csr.js';
import { nativeCrlSlots } from '../../../src/native/index.js';
import { randomBytes } from 'node:crypto';
import { X509Error } from '../../../src/x509/errors.js';
import { HOUR, Workdir, opensslCsr, opensslIntermediate, opensslRoot } from './helpers.js';

const w = new Workdir();
afterAll(() => w.cleanup());

describe('buildCrl', () => {
  it('openssl verifies the signature and lists the serials, CRL number, dates and AKI', () => {
    const ca = generateDevCa('example.org');
    w.write('ca.pem', ca.cert.pem);
    const now = new Date('2026-05-01T10:00:00Z');
    const entries = [
      { serialHex: '7f0102030405060708090a0b0c0d0e0f', revokedAt: new Date('2026-05-01T09:00:00Z') },
      { serialHex: '00A1', revokedAt: new Date('2026-05-01T09:30:00.700Z') }, // leading zeros, upper case
      { serialHex: '80', revokedAt: new Date('2026-04-30T00:00:00Z') }, // needs a 0x00 pad
      { serialHex: 'a1', revokedAt: new Date('2026-05-01T09:31:00Z') }, // duplicate of 00A1: dropped
    ];
    const der = buildCrl(ca, { entries, thisUpdate: now, nextUpdate: new Date(now.getTime() + HOUR), crlNumber: 42n });
    w.write('crl.der', der);
    const r = w.openssl(['crl', '-inform', 'DER', '-in', 'crl.der', '-CAfile', 'ca.pem', '-noout', '-text']);
    expect(r.out).toContain('Version 2 (0x1)');
    expect(r.out).toMatch(/X509v3 CRL Number:\s+42/);
    expect(r.out).toContain('Last Update: May  1 10:00:00 2026 GMT');
    expect(r.out).toContain('Next Update: May  1 11:00:00 2026 GMT');
    expect(r.out).toContain(`X509v3 Authority Key Identifier: \n                ${ca.ski.toString('hex').toUpperCase().match(/../g)!.join(':')}`);
    expect(r.out).toContain('Serial Number: 7F0102030405060708090A0B0C0D0E0F');
    expect(r.out).toContain('Serial Number: A1\n        Revocation Date: May  1 09:30:00 2026 GMT');
    expect(r.out).toContain('Serial Number: 80');
    expect(r.out.match(/Serial Number:/g)).toHaveLength(3);
    const v = w.opensslAll(['crl', '-inform', 'DER', '-in', 'crl.der', '-CAfile', 'ca.pem', '-noout']);
    expect(v.out).toContain('verify OK');
    // a tampered CRL does not verify
    const bad = Buffer.from(der);
    bad[bad.indexOf(Buffer.from('7f0102030405', 'hex'))] = 0x7e;
    w.write('bad.der', bad);
    expect(w.opensslAll(['crl', '-inform', 'DER', '-in', 'bad.der', '-CAfile', 'ca.pem', '-noout']).out).toContain('verify failure');
  });

  it('an empty CRL omits revokedCertificates; a big CRL number; an RSA intermediate signs one openssl checks with the chain', () => {
    opensslRoot(w, 'root', 'p256');
    opensslIntermediate(w, 'int', 'root', 'rsa2048');
    const ca = loadCa({ certPem: w.readText('int.pem'), keyPem: w.readText('int.key'), chainPem: w.readText('root.pem') });
    const now = new Date();
    const der = buildCrl(ca, { entries: [], thisUpdate: now, nextUpdate: new Date(now.getTime() + HOUR), crlNumber: (1n << 100n) + 5n });
    const parsed = AsnConvert.parse(der, CertificateList);
    expect(parsed.tbsCertList.revokedCertificates ?? []).toHaveLength(0);
    w.write('empty.der', der);
    w.write('bundle.pem', w.readText('int.pem') + w.readText('root.pem'));
    const r = w.opensslAll(['crl', '-inform', 'DER', '-in', 'empty.der', '-CAfile', 'bundle.pem', '-noout', '-text']);
    expect(r.out).toContain('verify OK');
    expect(r.out).toContain('No Revoked Certificates.');
    expect(r.out).toMatch(new RegExp(`CRL Number: \\s+${((1n << 100n) + 5n).toString(10)}\\n`));
  });

  it('revokes a real leaf: openssl verify -crl_check rejects it, accepts another leaf', () => {
    const ca = generateDevCa('example.org');
    w.write('ca2.pem', ca.cert.pem);
    const now = Date.now();
    const mk = (name: string) => {
      const csr = parseCsr(opensslCsr(w, name, 'p256'));
      const c = issueCertificate(ca, {
        ...csr, spiffeId: 'spiffe://example.org/a', taskId: 'tsk_1', notBefore: new Date(now - 60_000), notAfter: new Date(now + HOUR), crlUrl: 'http://x/crl',
      });
      w.write(`${name}.pem`, c.pem);
      return c;
    };
    const revoked = mk('revoked');
    mk('fine');
    const crl = buildCrl(ca, { entries: [{ serialHex: revoked.serialHex, revokedAt: new Date(now - 1000) }], thisUpdate: new Date(now - 1000), nextUpdate: new Date(now + HOUR), crlNumber: 1n });
    w.write('crl2.der', crl);
    w.openssl(['crl', '-inform', 'DER', '-in', 'crl2.der', '-out', 'crl2.pem']);
    const bad = w.openssl(['verify', '-crl_check', '-CAfile', 'ca2.pem', '-CRLfile', 'crl2.pem', 'revoked.pem'], { allowFail: true });
    expect(bad.ok).toBe(false);
    expect(bad.out).toContain('certificate revoked');
    expect(w.openssl(['verify', '-crl_check', '-CAfile', 'ca2.pem', '-CRLfile', 'crl2.pem', 'fine.pem']).out).toContain('fine.pem: OK');
  });

  it('revocation dates: any second in 1950..9999 round-trips (UTCTime to 2049, GeneralizedTime after)', () => {
    const ca = generateDevCa('example.org');
    const now = new Date('2026-01-01T00:00:00Z');
    const next = new Date('2026-01-02T00:00:00Z');
    fc.assert(
      fc.property(fc.date({ min: new Date('1950-01-01T00:00:00Z'), max: new Date('9999-12-31T23:59:59.999Z'), noInvalidDate: true }), (d) => {
        const der = buildCrl(ca, { entries: [{ serialHex: '01', revokedAt: d }], thisUpdate: now, nextUpdate: next, crlNumber: 1n });
        const entry = AsnConvert.parse(der, CertificateList).tbsCertList.revokedCertificates![0]!;
        const t = entry.revocationDate;
        const got = (t.utcTime ?? t.generalTime)!.getTime();
        return got === Math.floor(d.getTime() / 1000) * 1000 && (t.utcTime !== undefined) === (d.getUTCFullYear() < 2050);
      }),
      { numRuns: 500 },
    );
    const der = buildCrl(ca, {
      entries: [
        { serialHex: '02', revokedAt: new Date('2028-02-29T23:59:59.999Z') },
        { serialHex: '03', revokedAt: new Date('2051-02-03T04:05:06Z') },
      ],
      thisUpdate: now,
      nextUpdate: next,
      crlNumber: 1n,
    });
    w.write('dates.der', der);
    const text = w.openssl(['crl', '-inform', 'DER', '-in', 'dates.der', '-noout', '-text']).out;
    expect(text).toContain('Revocation Date: Feb 29 23:59:59 2028 GMT');
    expect(text).toContain('Revocation Date: Feb  3 04:05:06 2051 GMT');
  });

  it('rejects bad input with crl_invalid', () => {
    const ca = generateDevCa('example.org');
    const now = new Date();
    const later = new Date(now.getTime() + HOUR);
    const call = (over: object) => () => buildCrl(ca, { entries: [], thisUpdate: now, nextUpdate: later, crlNumber: 1n, ...over });
    for (const over of [
      { entries: [{ serialHex: 'xyz', revokedAt: now }] },
      { entries: [{ serialHex: '00', revokedAt: now }] },
      { entries: [{ serialHex: 'a'.repeat(41), revokedAt: now }] },
      { entries: [{ serialHex: '01', revokedAt: new Date(NaN) }] },
      { nextUpdate: now },
      { crlNumber: -1n },
      { crlNumber: 1 },
    ]) {
      expect(call(over)).toThrow(X509Error);
      try {
        call(over)();
      } catch (e) {
        expect((e as X509Error).code).toBe('crl_invalid');
      }
    }
  });

  it('10,000 entries: builds, openssl verifies and lists them all (logs the time)', () => {
    const ca = generateDevCa('example.org');
    const now = new Date();
    const entries = Array.from({ length: 10_000 }, (_, i) => ({ serialHex: serialHexOf(randomSerial()), revokedAt: new Date(now.getTime() - i * 1000) }));
    const next = new Date(now.getTime() + HOUR);
    buildCrl(ca, { entries: entries.slice(0, 100), thisUpdate: now, nextUpdate: next, crlNumber: 1n }); // warm-up
    const times: number[] = [];
    const cpus: number[] = [];
    let der: Buffer = Buffer.alloc(0);
    for (let i = 0; i < 10; i++) {
      const t0 = performance.now();
      const c0 = process.cpuUsage();
      der = buildCrl(ca, { entries, thisUpdate: now, nextUpdate: next, crlNumber: BigInt(i + 2) });
      const c = process.cpuUsage(c0);
      times.push(performance.now() - t0);
      cpus.push((c.user + c.system) / 1000);
    }
    times.sort((a, b) => a - b);
    cpus.sort((a, b) => a - b);
    console.log(
      `[x509 bench] CRL with 10,000 entries: ${der.length} bytes, build+sign wall median ${times[5]!.toFixed(2)} ms ` +
        `(min ${times[0]!.toFixed(2)}), cpu median ${cpus[5]!.toFixed(2)} ms (min ${cpus[0]!.toFixed(2)})`,
    );
    w.write('big.der', der);
    w.write('big-ca.pem', ca.cert.pem);
    expect(w.opensslAll(['crl', '-inform', 'DER', '-in', 'big.der', '-CAfile', 'big-ca.pem', '-noout']).out).toContain('verify OK');
    // (asn1-schema refuses a list this long: "Maximum ASN.1 node count exceeded"; openssl reads it all)
    const text = w.openssl(['crl', '-inform', 'DER', '-in', 'big.der', '-noout', '-text']).out;
    expect(text.match(/Serial Number:/g)).toHaveLength(10_000);
    expect(text).toContain(`Serial Number: ${entries[0]!.serialHex.toUpperCase()}\n`);
    expect(text).toContain(`Serial Number: ${entries[9999]!.serialHex.toUpperCase()}\n`);
  });
});

describe('encodeCrlEntries', () => {
  const at = new Date('2026-11-25T12:00:00Z');
  it('dedups by serialKey: case and leading zeros (digits or bytes) do not make a serial new', () => {
    expect(serialKey('000D33aF')).toBe('d33af');
    const seen = new Set([serialKey('0d33af')]);
    expect(encodeCrlEntries([{ serialHex: 'd33af', revokedAt: at }, { serialHex: '000D33AF', revokedAt: at }], seen).count).toBe(0);
    const fresh = new Set<string>();
    const r = encodeCrlEntries([{ serialHex: '0D33AF', revokedAt: at }, { serialHex: '7f', revokedAt: at }, { serialHex: '0d33af', revokedAt: at }], fresh);
    expect(r.count).toBe(2);
    expect([...fresh].sort()).toEqual(['7f', 'd33af']);
  });

  it('writes what buildCrl lists: pieces assembled from encoded runs equal one list', () => {
    const ca = generateDevCa('example.org', at);
    const base = { thisUpdate: at, nextUpdate: new Date(at.getTime() + HOUR), crlNumber: 7n };
    const a = [{ serialHex: '80', revokedAt: at }, { serialHex: '0102', revokedAt: at }];
    const b = [{ serialHex: 'ff00ee', revokedAt: new Date(at.getTime() - 60_000) }];
    const whole = AsnConvert.parse(buildCrl(ca, { ...base, entries: [...a, ...b] }), CertificateList);
    const pieces = AsnConvert.parse(buildCrl(ca, { ...base, entries: [], encoded: [encodeCrlEntries(a).der, encodeCrlEntries(b).der] }), CertificateList);
    expect(pieces.tbsCertList.revokedCertificates).toEqual(whole.tbsCertList.revokedCertificates);
  });

  it('refuses a bad serial', () => {
    for (const serialHex of ['', 'xyz', '12g4', '00', '1'.repeat(41)]) expect(() => encodeCrlEntries([{ serialHex, revokedAt: at }])).toThrow(X509Error);
  });
});

describe('encodeRevokedSlots', () => {
  const at = new Date('2026-11-25T12:00:00Z');
  const slot = (hex: string) => Buffer.from(hex.padStart(40, '0'), 'hex');
  it('writes what encodeCrlEntries writes for the same serials (short, 16-byte, high-bit), skipping zero slots', () => {
    const serials = ['01', '7f', '80', 'ff00', '1234567890abcdef1234567890abcdef', 'f234567890abcdef1234567890abcdef', '8'.repeat(40)];
    const slots = Buffer.concat([...serials.map(slot), Buffer.alloc(20)]);
    const r = encodeRevokedSlots(slots, 20, at);
    expect(r.count).toBe(serials.length);
    expect(r.der).toEqual(encodeCrlEntries(serials.map((serialHex) => ({ serialHex, revokedAt: at }))).der);
  });
  it('refuses partial slots and bad dates', () => {
    for (const useNative of [true, false]) {
      expect(() => encodeRevokedSlots(Buffer.alloc(21), 20, at, useNative)).toThrow(X509Error);
      expect(() => encodeRevokedSlots(Buffer.alloc(20), 20, new Date(NaN), useNative)).toThrow(X509Error);
    }
  });
  // (test/unit/native checks the addon is built and loaded wherever a compiler is; MAYFLY_NATIVE=0 skips these)
  it.runIf(nativeCrlSlots)('src/native (crl.c) writes exactly what the JavaScript writes, for any slots, sizes and dates', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 20 }).chain((size) =>
          fc.tuple(
            fc.constant(size),
            // slots biased towards leading zeros, all-zero slots and high bits
            fc.array(fc.uint8Array({ minLength: size, maxLength: size }).map((b) => (b[0]! < 64 ? b.fill(0, 0, b[0]! % (size + 1)) : b)), { maxLength: 40 }),
          ),
        ),
        fc.date({ min: new Date('1950-01-01T00:00:00Z'), max: new Date('9999-12-31T23:59:59Z'), noInvalidDate: true }),
        ([size, slots], when) => {
          const all = Buffer.concat(slots);
          const js = encodeRevokedSlots(all, size, when, false);
          const c = encodeRevokedSlots(all, size, when, true);
          expect(c.count).toBe(js.count);
          expect(c.der).toEqual(js.der);
        },
      ),
      { numRuns: 2000 },
    );
    // 10,000 16-byte serials, as a closed task holds them
    const big = randomBytes(20 * 10_000);
    for (let i = 0; i < big.length; i += 20) big.fill(0, i, i + 4);
    expect(encodeRevokedSlots(big, 20, at, true).der).toEqual(encodeRevokedSlots(big, 20, at, false).der);
  });
  it.runIf(nativeCrlSlots)('src/native (crl.c) refuses bad arguments with a TypeError', () => {
    const f = nativeCrlSlots!;
    const t = Buffer.from([0x17, 0x0d, ...Buffer.from('261125120000Z')]);
    for (const args of [[Buffer.alloc(21), 20, t], [Buffer.alloc(20), 0, t], [Buffer.alloc(21), 21, t], [Buffer.alloc(20), 20, Buffer.alloc(0)], [Buffer.alloc(20), 20, Buffer.alloc(18)], ['x', 20, t], [Buffer.alloc(20), '20', t], [Buffer.alloc(20), 20]])
      expect(() => (f as (...a: unknown[]) => unknown)(...args)).toThrow(TypeError);
    expect(f(Buffer.alloc(40), 20, t)).toEqual([Buffer.alloc(0), 0]);
  });
});
