/** decodePemStrict: the one-pass strict base64 check agrees with RFC 4648's grammar on any input. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodePemStrict, toPem } from '../../../src/x509/pem.js';

// the grammar, as a regular expression over the text with its line breaks and blanks removed
const STRICT = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const wrap = (body: string) => `-----BEGIN CERTIFICATE REQUEST-----\n${body}\n-----END CERTIFICATE REQUEST-----\n`;
const LABELS = ['CERTIFICATE REQUEST'];

describe('decodePemStrict', () => {
  it('round-trips what toPem writes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
        expect(decodePemStrict(toPem('CERTIFICATE REQUEST', bytes), LABELS)).toEqual(Buffer.from(bytes));
      }),
    );
  });

  it('accepts exactly the strict base64 bodies, and decodes them as the grammar says', () => {
    const chars = fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=  \t\r\n\n-_.!é'.split(''));
    fc.assert(
      fc.property(fc.array(chars, { maxLength: 80 }), (cs) => {
        const body = cs.join('');
        const compact = body.replace(/[ \t\r\n]+/g, '');
        const got = decodePemStrict(wrap(body), LABELS);
        if (STRICT.test(compact)) expect(got).toEqual(Buffer.from(compact, 'base64'));
        else expect(got).toBeNull();
      }),
      { numRuns: 3000 },
    );
  });

  it('refuses padding in the middle, too much padding and a partial group', () => {
    for (const body of ['QUJD=QUJD', 'QQ===', 'QUJ', 'QUJDR', '=']) expect(decodePemStrict(wrap(body), LABELS)).toBeNull();
    expect(decodePemStrict(wrap('QQ\n=='), LABELS)).toEqual(Buffer.from('A'));
  });
});
