/**
 * src/issue/csr-cache.ts: a CSR is cached the second time it comes (while its fingerprint is still
 * remembered), a hit is the same parse, a stream of CSRs each seen once leaves the cache empty, and a
 * bad CSR is never remembered.
 */
import { describe, expect, it } from 'vitest';
import { CsrCache } from '../../../src/issue/csr-cache.js';
import { buildCsr, keyPair } from '../x509/helpers.js';

const csr = () => {
  const { privateKey, publicKey } = keyPair('p256');
  return buildCsr(privateKey, publicKey);
};

describe('CsrCache', () => {
  it('caches a CSR on its second coming; later ones are hits, as PEM or DER bytes alike', () => {
    const c = new CsrCache(16);
    const der = csr();
    const first = c.parse(der);
    expect(c.size).toBe(0);
    const second = c.parse(der);
    expect(second).not.toBe(first); // parsed again, then admitted
    expect(second).toEqual(first);
    expect(c.size).toBe(1);
    expect(c.parse(der)).toBe(second);
    expect(c.parse(Buffer.from(der))).toBe(second);
  });

  it('CSRs each seen once are not cached, and the cache never holds more than its size', () => {
    const c = new CsrCache(8);
    const many = Array.from({ length: 40 }, csr);
    for (const d of many) c.parse(d);
    expect(c.size).toBe(0);
    for (const d of many) c.parse(d);
    expect(c.size).toBeLessThanOrEqual(8);
  });

  it('a CSR that does not parse throws every time and is never admitted', () => {
    const c = new CsrCache(16);
    const bad = csr();
    bad.writeUInt8(bad.at(-1)! ^ 0xff, bad.length - 1); // the signature no longer verifies
    for (let i = 0; i < 3; i++) expect(() => c.parse(bad)).toThrow();
    expect(c.size).toBe(0);
  });
});
