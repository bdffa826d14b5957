/**
 * Minimal strict DER reader and writer (X.690 §10), the hot path under CSR parsing, certificate, CRL
 * and OCSP building. Schema-driven libraries (asn1js/@peculiar) are BER-lenient and slow; this file
 * only knows TLVs, so every caller spells out the structure it expects.
 *
 * Reader: `readTlv(buf, pos, end)` → `Tlv` (offsets into `buf`), `children(buf, tlv)`, and
 * `checkDer(buf, tlv)` which walks a whole subtree and rejects what DER forbids: indefinite or
 * non-minimal lengths, high tag numbers, constructed string types, non-minimal INTEGERs, BOOLEANs
 * other than 00/FF, NULL with content, malformed OIDs, BIT STRINGs with non-zero padding bits.
 * Every reader failure throws `DerError`; callers turn it into their own `X509Error` code.
 *
 * Writer: `tlv(tag, ...parts)`, `seq`, `set`, `ctx`, `oid`, `int*`, strings and `time` (UTCTime for
 * 1950–2049, GeneralizedTime otherwise, RFC 5280 §4.1.2.5; fractions of seconds dropped).
 */

export class DerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DerError';
  }
}

/** One TLV: `tag` byte, the content is `buf[start, end)`, the whole element is `buf[off, end)`. */
export interface Tlv {
  tag: number;
  off: number;
  start: number;
  end: number;
}

export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  ENUMERATED: 0x0a,
  UTF8String: 0x0c,
  PrintableString: 0x13,
  IA5String: 0x16,
  UTCTime: 0x17,
  GeneralizedTime: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

// ---------------------------------------------------------------- reading

export function readTlv(buf: Uint8Array, pos: number, end: number): Tlv {
  if (pos >= end) throw new DerError('unexpected end of data');
  const tag = buf[pos]!;
  if ((tag & 0x1f) === 0x1f) throw new DerError('high tag numbers are not used here');
  if (pos + 1 >= end) throw new DerError('truncated length');
  let len = buf[pos + 1]!;
  let p = pos + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0) throw new DerError('indefinite length is not DER');
    if (n > 4) throw new DerError('length too large');
    if (p + n > end) throw new DerError('truncated length');
    if (buf[p] === 0) throw new DerError('non-minimal length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[p + i]!;
    if (len < 0x80) throw new DerError('non-minimal length');
    p += n;
  }
  if (p + len > end) throw new DerError('truncated content');
  return { tag, off: pos, start: p, end: p + len };
}

/** Reads exactly one TLV spanning all of `buf` (no trailing bytes). */
export function readWhole(buf: Uint8Array): Tlv {
  const t = readTlv(buf, 0, buf.length);
  if (t.end !== buf.length) throw new DerError('trailing bytes after the DER element');
  return t;
}

export function children(buf: Uint8Array, t: Tlv): Tlv[] {
  if (!(t.tag & 0x20)) throw new DerError('not a constructed element');
  const out: Tlv[] = [];
  let p = t.start;
  while (p < t.end) {
    const c = readTlv(buf, p, t.end);
    out.push(c);
    p = c.end;
  }
  return out;
}

export function expectTag(t: Tlv | undefined, tag: number, what: string): Tlv {
  if (!t || t.tag !== tag) throw new DerError(`expected ${what}`);
  return t;
}

/** Validates a whole subtree as DER (see file comment); `depth` guards recursion on hostile input. */
export function checkDer(buf: Uint8Array, t: Tlv, depth = 0): void {
  if (depth > 32) throw new DerError('nesting too deep');
  const len = t.end - t.start;
  switch (t.tag) {
    case 0x00: // end-of-contents: only meaningful with BER indefinite lengths
      throw new DerError('unexpected end-of-contents octets');
    case 0x23: // constructed BIT STRING
    case 0x24: // constructed OCTET STRING
    case 0x2c: // constructed UTF8String
    case 0x33: // constructed PrintableString
    case 0x36: // constructed IA5String
      throw new DerError('constructed string encodings are not DER');
    case TAG.BOOLEAN:
      if (len !== 1 || (buf[t.start] !== 0 && buf[t.start] !== 0xff)) throw new DerError('bad BOOLEAN');
      return;
    case TAG.INTEGER:
    case TAG.ENUMERATED:
      checkInteger(buf, t);
      return;
    case TAG.NULL:
      if (len !== 0) throw new DerError('bad NULL');
      return;
    case TAG.OID:
      checkOid(buf, t);
      return;
    case TAG.BIT_STRING:
      checkBitString(buf, t);
      return;
    default:
      if (t.tag & 0x20) for (const c of children(buf, t)) checkDer(buf, c, depth + 1);
  }
}

function checkInteger(buf: Uint8Array, t: Tlv): void {
  const len = t.end - t.start;
  if (len === 0) throw new DerError('empty INTEGER');
  if (len > 1) {
    const a = buf[t.start]!;
    const b = buf[t.start + 1]!;
    if ((a === 0 && !(b & 0x80)) || (a === 0xff && b & 0x80)) throw new DerError('non-minimal INTEGER');
  }
}

function checkOid(buf: Uint8Array, t: Tlv): void {
  if (t.end === t.start) throw new DerError('empty OID');
  if (buf[t.end - 1]! & 0x80) throw new DerError('truncated OID');
  let first = true;
  for (let i = t.start; i < t.end; i++) {
    if (first && buf[i] === 0x80) throw new DerError('non-minimal OID arc');
    first = !(buf[i]! & 0x80);
  }
}

function checkBitString(buf: Uint8Array, t: Tlv): void {
  const len = t.end - t.start;
  if (len === 0) throw new DerError('empty BIT STRING');
  const unused = buf[t.start]!;
  if (unused > 7 || (len === 1 && unused !== 0)) throw new DerError('bad BIT STRING');
  if (unused && buf[t.end - 1]! & ((1 << unused) - 1)) throw new DerError('BIT STRING padding bits set');
}

/** Content of a BIT STRING with no unused bits (keys, signatures). */
export function bitStringBytes(buf: Uint8Array, t: Tlv): Uint8Array {
  if (t.tag !== TAG.BIT_STRING) throw new DerError('expected BIT STRING');
  checkBitString(buf, t);
  if (buf[t.start] !== 0) throw new DerError('BIT STRING with unused bits');
  return buf.subarray(t.start + 1, t.end);
}

export const content = (buf: Uint8Array, t: Tlv): Uint8Array => buf.subarray(t.start, t.end);
export const whole = (buf: Uint8Array, t: Tlv): Uint8Array => buf.subarray(t.off, t.end);

/** Hex of an OID's content octets: the cheap key for OID lookups (see `oidHex`). */
export function oidKey(buf: Uint8Array, t: Tlv): string {
  if (t.tag !== TAG.OID) throw new DerError('expected OBJECT IDENTIFIER');
  checkOid(buf, t);
  return Buffer.from(buf.buffer, buf.byteOffset + t.start, t.end - t.start).toString('hex');
}

export function oidToString(bytes: Uint8Array): string {
  const arcs: bigint[] = [];
  let v = 0n;
  for (const b of bytes) {
    v = (v << 7n) | BigInt(b & 0x7f);
    if (!(b & 0x80)) {
      arcs.push(v);
      v = 0n;
    }
  }
  const first = arcs.shift() ?? 0n;
  const head = first < 40n ? [0n, first] : first < 80n ? [1n, first - 40n] : [2n, first - 80n];
  return [...head, ...arcs].join('.');
}

/** Small non-negative INTEGER (version numbers, CRL reasons). */
export function readSmallInt(buf: Uint8Array, t: Tlv): number {
  if (t.tag !== TAG.INTEGER && t.tag !== TAG.ENUMERATED) throw new DerError('expected INTEGER');
  checkInteger(buf, t);
  if (t.end - t.start > 4 || buf[t.start]! & 0x80) throw new DerError('INTEGER out of range');
  let n = 0;
  for (let i = t.start; i < t.end; i++) n = n * 256 + buf[i]!;
  return n;
}

/** Reads a UTCTime or GeneralizedTime in the RFC 5280 profile (`YYMMDDHHMMSSZ` / `YYYYMMDDHHMMSSZ`). */
export function readTime(buf: Uint8Array, t: Tlv): Date {
  const s = Buffer.from(buf.subarray(t.start, t.end)).toString('latin1');
  let m: RegExpExecArray | null;
  let year: number;
  if (t.tag === TAG.UTCTime && (m = /^(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/.exec(s))) {
    const yy = Number(m[1]);
    year = yy >= 50 ? 1900 + yy : 2000 + yy;
  } else if (t.tag === TAG.GeneralizedTime && (m = /^(\d\d\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/.exec(s))) {
    year = Number(m[1]);
  } else throw new DerError('bad time');
  const [mo, d, h, mi, se] = [m[2], m[3], m[4], m[5], m[6]].map(Number) as [number, number, number, number, number];
  const ms = Date.UTC(year, mo - 1, d, h, mi, se);
  const back = new Date(ms);
  if (back.getUTCMonth() !== mo - 1 || back.getUTCDate() !== d || h > 23 || mi > 59 || se > 59)
    throw new DerError('bad time');
  return back;
}

// ---------------------------------------------------------------- writing

export function lenBytes(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  if (n < 0x100) return Buffer.from([0x81, n]);
  if (n < 0x10000) return Buffer.from([0x82, n >> 8, n & 0xff]);
  if (n < 0x1000000) return Buffer.from([0x83, n >> 16, (n >> 8) & 0xff, n & 0xff]);
  return Buffer.from([0x84, (n >>> 24) & 0xff, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff]);
}

/** Header size for a content of `n` bytes. */
export const headerLen = (n: number): number => (n < 0x80 ? 2 : n < 0x100 ? 3 : n < 0x10000 ? 4 : n < 0x1000000 ? 5 : 6);

/** Writes tag+length at `out[pos]`, returns the position after the header. */
export function writeHeader(out: Buffer, pos: number, tag: number, n: number): number {
  out[pos++] = tag;
  if (n < 0x80) out[pos++] = n;
  else if (n < 0x100) {
    out[pos++] = 0x81;
    out[pos++] = n;
  } else if (n < 0x10000) {
    out[pos++] = 0x82;
    out[pos++] = n >> 8;
    out[pos++] = n & 0xff;
  } else if (n < 0x1000000) {
    out[pos++] = 0x83;
    out[pos++] = n >> 16;
    out[pos++] = (n >> 8) & 0xff;
    out[pos++] = n & 0xff;
  } else {
    out[pos++] = 0x84;
    out.writeUInt32BE(n, pos);
    pos += 4;
  }
  return pos;
}

export function tlv(tag: number, ...parts: Uint8Array[]): Buffer {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = Buffer.allocUnsafe(headerLen(n) + n);
  let pos = writeHeader(out, 0, tag, n);
  for (const p of parts) {
    out.set(p, pos);
    pos += p.length;
  }
  return out;
}

export const seq = (...parts: Uint8Array[]): Buffer => tlv(TAG.SEQUENCE, ...parts);
export const set = (...parts: Uint8Array[]): Buffer => tlv(TAG.SET, ...parts);
/** Context-specific constructed `[n]` (EXPLICIT tagging, or IMPLICIT of a constructed type). */
export const ctx = (n: number, ...parts: Uint8Array[]): Buffer => tlv(0xa0 | n, ...parts);
/** Context-specific primitive `[n]` (IMPLICIT of a primitive type, e.g. GeneralName URI `[6]`). */
export const ctxPrim = (n: number, bytes: Uint8Array): Buffer => tlv(0x80 | n, bytes);
export const octets = (b: Uint8Array): Buffer => tlv(TAG.OCTET_STRING, b);
export const bits = (b: Uint8Array, unused = 0): Buffer => tlv(TAG.BIT_STRING, Buffer.from([unused]), b);
export const utf8 = (s: string): Buffer => tlv(TAG.UTF8String, Buffer.from(s, 'utf8'));
export const ia5 = (s: string): Buffer => tlv(TAG.IA5String, Buffer.from(s, 'latin1'));
export const NULL = Buffer.from([0x05, 0x00]);
export const TRUE = Buffer.from([0x01, 0x01, 0xff]);

export function oidBytes(dotted: string): Buffer {
  const arcs = dotted.split('.').map((a) => BigInt(a));
  if (arcs.length < 2) throw new Error(`bad OID ${dotted}`);
  const out: number[] = [];
  const push = (v: bigint) => {
    const tmp = [Number(v & 0x7fn)];
    v >>= 7n;
    while (v > 0n) {
      tmp.unshift(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    out.push(...tmp);
  };
  push(arcs[0]! * 40n + arcs[1]!);
  for (const a of arcs.slice(2)) push(a);
  return Buffer.from(out);
}

export const oid = (dotted: string): Buffer => tlv(TAG.OID, oidBytes(dotted));
/** The lookup key `oidKey` returns for this dotted OID. */
export const oidHex = (dotted: string): string => oidBytes(dotted).toString('hex');

/** INTEGER from an unsigned big-endian magnitude (leading zeros stripped, 0x00 added when needed). */
export function intFromMagnitude(mag: Uint8Array): Buffer {
  let i = 0;
  while (i < mag.length - 1 && mag[i] === 0) i++;
  const m = mag.subarray(i);
  if (m.length === 0) return Buffer.from([0x02, 0x01, 0x00]);
  return m[0]! & 0x80 ? tlv(TAG.INTEGER, Buffer.from([0]), m) : tlv(TAG.INTEGER, m);
}

export function intFromBigint(v: bigint): Buffer {
  if (v < 0n) throw new Error('negative INTEGER not supported');
  let hex = v.toString(16);
  if (hex.length % 2) hex = '0' + hex;
  return intFromMagnitude(Buffer.from(hex, 'hex'));
}

export const intSmall = (n: number): Buffer => intFromBigint(BigInt(n));

/** Writes the 13 (UTCTime) or 15 (GeneralizedTime) characters of `t` (floored to the second). */
function p2(n: number): string {
  return n < 10 ? '0' + n : String(n);
}

function timeChars(t: Date, generalized: boolean): string {
  const y = t.getUTCFullYear();
  const ys = generalized ? String(y).padStart(4, '0') : p2(y % 100);
  return ys + p2(t.getUTCMonth() + 1) + p2(t.getUTCDate()) + p2(t.getUTCHours()) + p2(t.getUTCMinutes()) + p2(t.getUTCSeconds()) + 'Z';
}

export const useUtcTime = (t: Date): boolean => {
  const y = t.getUTCFullYear();
  return y >= 1950 && y < 2050;
};

/** RFC 5280 §4.1.2.5 Time: UTCTime through 2049, GeneralizedTime from 2050. */
export function time(t: Date): Buffer {
  const g = !useUtcTime(t);
  return tlv(g ? TAG.GeneralizedTime : TAG.UTCTime, Buffer.from(timeChars(t, g), 'latin1'));
}

/** GeneralizedTime (OCSP always uses it, RFC 6960 §4.2.1). */
export const generalizedTime = (t: Date): Buffer => tlv(TAG.GeneralizedTime, Buffer.from(timeChars(t, true), 'latin1'));

/** Floors a date to the whole second (DER times carry no fractions here). */
export const floorSecond = (d: Date): Date => new Date(Math.floor(d.getTime() / 1000) * 1000);
