/**
 * Certificate revocation lists (RFC 5280 §5): v2, signed by the CA key.
 *
 * API
 *   buildCrl(ca, {
 *     entries: { serialHex, revokedAt: Date }[],   // serialHex as issueCertificate returns it (any case,
 *                                                  // leading zeros tolerated); duplicates are dropped
 *     thisUpdate: Date, nextUpdate: Date,          // nextUpdate is always written
 *     crlNumber: bigint,                           // monotonically increasing, 0 ≤ n < 2^159
 *     encoded?: Buffer[],                          // runs from encodeCrlEntries, listed first
 *   }): Buffer                                     // DER CertificateList
 *   encodeCrlEntries(entries, seen?): {der, count} // entries encoded once, to reuse across CRLs
 *   encodeRevokedSlots(slots, size, at): {der, count} // the same from fixed-size binary serials (src/native
 *                                                  // crl.c when loaded; useNative=false: JavaScript)
 *   serialKey(hex): string                         // the dedup key of a serial
 *
 * Extensions: authorityKeyIdentifier (the CA's SKI) and cRLNumber, both non-critical (§5.2.1, §5.2.3).
 * `revokedCertificates` is omitted when there are no entries (an empty SEQUENCE is not allowed).
 * Times are UTCTime through 2049, GeneralizedTime after, whole seconds.
 *
 * Speed: the entry list is written straight into one preallocated buffer (no per-entry Buffer
 * concatenation), so 10,000 entries take a few milliseconds; the signature hashes the TBS once.
 */
import { OID, sign, signatureAlgorithmDer } from './algs.js';
import type { CertificateAuthority } from './ca.js';
import { TAG, bits, ctx, ctxPrim, floorSecond, headerLen, intFromBigint, octets, oid, seq, time, writeHeader } from './der.js';
import { X509Error } from './errors.js';
import { nativeCrlSlots } from '../native/index.js';

export interface CrlEntry {
  serialHex: string;
  revokedAt: Date;
}

export interface CrlInput {
  entries: readonly CrlEntry[];
  /** Entries already encoded by encodeCrlEntries (deduplicated by the caller against each other and `entries`). */
  encoded?: readonly Buffer[];
  thisUpdate: Date;
  nextUpdate: Date;
  crlNumber: bigint;
}

const bad = (msg: string): never => {
  throw new X509Error('crl_invalid', msg);
};

function validDate(d: Date, what: string): Date {
  if (!(d instanceof Date) || Number.isNaN(d.getTime())) bad(`${what} is not a valid date`);
  const y = d.getUTCFullYear();
  if (y < 1950 || y > 9999) bad(`${what} is out of range`);
  return floorSecond(d);
}

// Epoch milliseconds bounds of the years 1950 and 10000 (what RFC 5280 Time can carry).
const MIN_MS = Date.UTC(1950, 0, 1);
const MAX_MS = Date.UTC(10000, 0, 1);
const UTC_END_MS = Date.UTC(2050, 0, 1);

/** Hex digit value, or -1. */
function nibble(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  const l = c | 0x20;
  return l >= 97 && l <= 102 ? l - 87 : -1;
}

function twoDigits(out: Buffer, pos: number, v: number): number {
  out[pos] = 48 + Math.floor(v / 10);
  out[pos + 1] = 48 + (v % 10);
  return pos + 2;
}

/**
 * Writes an RFC 5280 Time for epoch `ms` (floored to the second) straight into `out`; the civil date
 * comes from integer arithmetic (H. Hinnant's civil_from_days) rather than Date objects and strings,
 * which is most of the cost of a 10k-entry CRL otherwise.
 */
function writeTimeMs(out: Buffer, pos: number, ms: number): number {
  const secs = Math.floor(ms / 1000);
  const days = Math.floor(secs / 86400);
  let rem = secs - days * 86400;
  const z = days + 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const d = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const m = mp < 10 ? mp + 3 : mp - 9;
  const y = yoe + era * 400 + (m <= 2 ? 1 : 0);
  const h = Math.floor(rem / 3600);
  rem -= h * 3600;
  const mi = Math.floor(rem / 60);
  const se = rem - mi * 60;
  const utc = ms < UTC_END_MS;
  out[pos++] = utc ? TAG.UTCTime : TAG.GeneralizedTime;
  out[pos++] = utc ? 13 : 15;
  if (!utc) {
    out[pos++] = 48 + Math.floor(y / 1000);
    out[pos++] = 48 + (Math.floor(y / 100) % 10);
  }
  pos = twoDigits(out, pos, y % 100);
  pos = twoDigits(out, pos, m);
  pos = twoDigits(out, pos, d);
  pos = twoDigits(out, pos, h);
  pos = twoDigits(out, pos, mi);
  pos = twoDigits(out, pos, se);
  out[pos++] = 0x5a; // 'Z'
  return pos;
}

/**
 * One revokedCertificates entry, SEQUENCE { INTEGER <magnitude src[st, end)>, <the encoded time> }:
 * at most 2 + 23 + 17 bytes, so every length is short-form. Byte loops: cheaper than Buffer#copy's
 * per-call checks for ~16 bytes, even before the JIT warms up.
 */
function writeEntry(out: Buffer, pos: number, src: Uint8Array, st: number, end: number, timeDer: Uint8Array, timeLen: number): number {
  const pad = src[st]! & 0x80 ? 1 : 0;
  const intLen = end - st + pad;
  out[pos++] = TAG.SEQUENCE;
  out[pos++] = 2 + intLen + timeLen;
  out[pos++] = TAG.INTEGER;
  out[pos++] = intLen;
  if (pad) out[pos++] = 0;
  for (let k = st; k < end; k++) out[pos++] = src[k]!;
  for (let k = 0; k < timeLen; k++) out[pos++] = timeDer[k]!;
  return pos;
}

/** The canonical dedup key of a serial: lowercase hex without leading zeros (as serialHexOf writes it). */
export function serialKey(hex: string): string {
  let st = 0;
  while (st < hex.length && hex.charCodeAt(st) === 48) st++;
  const k = st ? hex.slice(st) : hex;
  return /[A-F]/.test(k) ? k.toLowerCase() : k;
}

/**
 * The DER of `entries` as revokedCertificates entries (each `SEQUENCE { userCertificate,
 * revocationDate }`, concatenated, without the enclosing SEQUENCE), for CRLs assembled from pieces
 * that are encoded once and reused (src/ca/crl-service.ts). Serials already in `seen` are skipped;
 * the ones written are added to it. Validates like buildCrl (X509Error 'crl_invalid').
 */
export function encodeCrlEntries(entries: readonly CrlEntry[], seen: Set<string> = new Set()): { der: Buffer; count: number } {
  // First pass: validate, normalise and size every entry. Hex is decoded natively (Buffer.from stops at
  // the first non-hex pair, so a short result means a bad digit): no per-character JavaScript loop,
  // which is what a cold (not yet optimised) 10,000-entry build spent its time on.
  const mags: Buffer[] = [];
  const times: number[] = [];
  let total = 0;
  for (const e of entries) {
    const hex = e?.serialHex;
    if (typeof hex !== 'string' || hex.length === 0 || hex.length > 40) return bad(`bad serialHex "${String(hex).slice(0, 50)}"`);
    const even = hex.length & 1 ? `0${hex}` : hex;
    const raw = Buffer.from(even, 'hex');
    if (raw.length * 2 !== even.length) bad(`bad serialHex "${hex}"`);
    let st = 0;
    while (st < raw.length && raw[st] === 0) st++;
    if (st === raw.length) bad('serial 0 is not a valid certificate serial');
    const mag = st ? raw.subarray(st) : raw;
    let key = mag.toString('hex');
    if (key.charCodeAt(0) === 48) key = key.slice(1); // serialKey form: no leading zero digit either
    if (seen.has(key)) continue;
    seen.add(key);
    const ms = e.revokedAt instanceof Date ? e.revokedAt.getTime() : NaN;
    if (!(ms >= MIN_MS && ms < MAX_MS)) bad('revokedAt is not a valid date in 1950..9999');
    const inner = 2 + mag.length + (mag[0]! & 0x80 ? 1 : 0) + (ms < UTC_END_MS ? 15 : 17);
    mags.push(mag);
    times.push(ms);
    total += headerLen(inner) + inner;
  }

  // Second pass: write every entry into one buffer; a run of entries with one time encodes it once.
  const out = Buffer.allocUnsafe(total);
  const timeDer = Buffer.allocUnsafe(17);
  let timeLen = 0;
  let lastMs = NaN;
  let pos = 0;
  for (let k = 0; k < mags.length; k++) {
    const ms = times[k]!;
    if (ms !== lastMs) {
      timeLen = writeTimeMs(timeDer, 0, ms);
      lastMs = ms;
    }
    pos = writeEntry(out, pos, mags[k]!, 0, mags[k]!.length, timeDer, timeLen);
  }
  if (pos !== out.length) throw new Error('CRL size mismatch (bug)');
  return { der: out, count: mags.length };
}

/**
 * Entries for serials given as fixed-size big-endian slots (left-padded with zeros), all revoked at
 * `revokedAt`: a closed task's certificates, read from the store as one binary string. Each entry is
 * the serial's bytes and the time encoded once, copied; all-zero slots are skipped.
 * No dedup: the caller's serials are distinct.
 */
export function encodeRevokedSlots(slots: Uint8Array, slotSize: number, revokedAt: Date, useNative = true): { der: Buffer; count: number } {
  if (!Number.isInteger(slotSize) || slotSize < 1 || slotSize > 20 || slots.length % slotSize !== 0) return bad('slots must be whole slots of 1-20 bytes');
  const ms = revokedAt instanceof Date ? revokedAt.getTime() : NaN;
  if (!(ms >= MIN_MS && ms < MAX_MS)) bad('revokedAt is not a valid date in 1950..9999');
  const timeDer = Buffer.allocUnsafe(17);
  const timeLen = writeTimeMs(timeDer, 0, ms);
  if (nativeCrlSlots && useNative) {
    // the same entries from src/native/crl.c (a test compares both): ~3x faster than warm JavaScript, and no warm-up
    const [der, count] = nativeCrlSlots(slots, slotSize, timeDer.subarray(0, timeLen));
    return { der, count };
  }
  const src = Buffer.from(slots.buffer, slots.byteOffset, slots.length);
  const out = Buffer.allocUnsafe((slots.length / slotSize) * (5 + slotSize + timeLen));
  let pos = 0;
  let count = 0;
  for (let i = 0; i < src.length; i += slotSize) {
    const end = i + slotSize;
    let st = i;
    while (st < end && src[st] === 0) st++;
    if (st === end) continue;
    pos = writeEntry(out, pos, src, st, end, timeDer, timeLen);
    count++;
  }
  return { der: out.subarray(0, pos), count };
}

export function buildCrl(ca: CertificateAuthority, input: CrlInput): Buffer {
  const thisUpdate = validDate(input.thisUpdate, 'thisUpdate');
  const nextUpdate = validDate(input.nextUpdate, 'nextUpdate');
  if (!(nextUpdate > thisUpdate)) bad('nextUpdate must be after thisUpdate');
  if (typeof input.crlNumber !== 'bigint' || input.crlNumber < 0n || input.crlNumber >= 1n << 159n)
    bad('crlNumber must be a bigint in [0, 2^159)');

  const own = encodeCrlEntries(input.entries);
  const runs = [...(input.encoded ?? []), own.der].filter((b) => b.length > 0);
  let listLen = 0;
  for (const r of runs) listLen += r.length;
  let revoked: Buffer | null = null;
  if (listLen) {
    revoked = Buffer.allocUnsafe(headerLen(listLen) + listLen);
    let pos = writeHeader(revoked, 0, TAG.SEQUENCE, listLen);
    for (const r of runs) pos += r.copy(revoked, pos);
  }

  const sigAlg = signatureAlgorithmDer(ca.signatureAlgorithm);
  const extensions = ctx(
    0,
    seq(
      seq(oid(OID.authorityKeyIdentifier), octets(seq(ctxPrim(0, ca.ski)))),
      seq(oid(OID.cRLNumber), octets(intFromBigint(input.crlNumber))),
    ),
  );
  const parts: Buffer[] = [Buffer.from([0x02, 0x01, 0x01]), sigAlg, ca.subjectDer, time(thisUpdate), time(nextUpdate)];
  if (revoked) parts.push(revoked);
  parts.push(extensions);
  const tbs = seq(...parts);
  return seq(tbs, sigAlg, bits(sign(ca.signatureAlgorithm, ca.key, tbs)));
}
