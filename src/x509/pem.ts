/**
 * PEM (RFC 7468) helpers.
 *
 * - `toPem(label, der): string`                 64-column base64 between BEGIN/END lines, trailing newline
 * - `pemBlocks(text): PemBlock[]`               every `-----BEGIN X-----…-----END X-----` block, in order
 *                                               (text between blocks is ignored, as RFC 7468 allows)
 * - `decodePemStrict(text, labels): Buffer|null` exactly one block, with one of `labels` (explanatory text
 *                                               around it ignored, RFC 7468 §2); strict base64. `null`
 *                                               when the text is not such a PEM document.
 * Throws `PemError` on a block whose base64 is broken.
 */

export class PemError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PemError';
  }
}

export interface PemBlock {
  label: string;
  der: Buffer;
}

export function toPem(label: string, der: Uint8Array): string {
  const b64 = Buffer.from(der.buffer, der.byteOffset, der.length).toString('base64');
  let body = '';
  for (let i = 0; i < b64.length; i += 64) body += b64.slice(i, i + 64) + '\n';
  return `-----BEGIN ${label}-----\n${body}-----END ${label}-----\n`;
}

const BLOCK = /-----BEGIN ([A-Z0-9 ]{1,64})-----([\s\S]*?)-----END ([A-Z0-9 ]{1,64})-----/g;
const ALPHABET = new Uint8Array(128);
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/') ALPHABET[c.charCodeAt(0)] = 1;

/**
 * Strict base64 (RFC 4648 §4) with line breaks and blanks between characters: only the alphabet, `=`
 * only at the end and at most two, a whole number of 4-character groups. One pass over the text (on
 * the issuance path for every CSR), then Node's decoder, which skips the whitespace.
 */
function decodeBase64Strict(body: string): Buffer {
  let n = 0;
  let pad = 0;
  for (let i = 0; i < body.length; i++) {
    const c = body.charCodeAt(i);
    if (c === 10 || c === 32 || c === 13 || c === 9) continue;
    if (c === 61) pad++;
    else if (pad > 0 || c > 127 || ALPHABET[c] === 0) throw new PemError('PEM body is not valid base64');
    n++;
  }
  if (n % 4 !== 0 || pad > 2) throw new PemError('PEM body is not valid base64');
  return Buffer.from(body, 'base64');
}

export function pemBlocks(text: string): PemBlock[] {
  const out: PemBlock[] = [];
  for (const m of text.matchAll(BLOCK)) {
    if (m[1] !== m[3]) throw new PemError(`PEM block BEGIN ${m[1]} ends with END ${m[3]}`);
    out.push({ label: m[1]!, der: decodeBase64Strict(m[2]!) });
  }
  return out;
}

export function decodePemStrict(text: string, labels: readonly string[]): Buffer | null {
  // RFC 7468 §2: text before and after the block is allowed (`openssl req -text` prints the request
  // above it); one block only, so there is never a question of which one is meant
  const begin = text.indexOf('-----BEGIN ');
  if (begin < 0 || text.indexOf('-----BEGIN ', begin + 1) >= 0) return null;
  const m = /^-----BEGIN ([A-Z0-9 ]{1,64})-----([A-Za-z0-9+/=\s]*)-----END ([A-Z0-9 ]{1,64})-----/.exec(text.slice(begin));
  if (!m || m[1] !== m[3] || !labels.includes(m[1]!)) return null;
  try {
    return decodeBase64Strict(m[2]!);
  } catch {
    return null;
  }
}
