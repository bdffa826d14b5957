/**
 * The client certificate of this request, or undefined:
 *  - listen.tls: the one the TLS client presented on this connection (read once per connection: a
 *    kept-alive connection presents the same certificate to every request);
 *  - listen.forwarded_client_certificate: behind a proxy that terminated mTLS, the one it verified and
 *    forwarded in a header, believed only from a trusted proxy's address. From a trusted proxy only the
 *    header counts (the proxy's own TLS certificate is not the client's); from anyone else the header
 *    is refused, so a client cannot forge it.
 * Undefined as well for plain HTTP without either, or a request that did not come through a socket
 * (app.request in tests).
 */
import type { Context } from 'hono';
import { X509Certificate } from 'node:crypto';
import { BlockList, isIP } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Broker } from '../broker.js';
import type { Config } from '../config/config.js';
import { MayflyError } from '../errors.js';
import { presented, type PresentedCertificate } from '../attest/client-certificate.js';
import { parseCertificates } from '../x509/peer.js';

const perSocket = new WeakMap<TLSSocket, PresentedCertificate | null>();

export function clientCertificate(b: Broker, c: Context): PresentedCertificate | undefined {
  const socket = (c.env as { incoming?: { socket?: unknown } } | undefined)?.incoming?.socket as TLSSocket | undefined;
  if (!socket) return undefined;
  const fwd = b.config.listen.forwardedClientCertificate;
  if (fwd) {
    const value = c.req.header(fwd.header);
    if (fromTrustedProxy(b.config, socket.remoteAddress)) return value === undefined ? undefined : fromHeader(value, fwd.format);
    if (value !== undefined)
      throw new MayflyError('invalid_request', `${fwd.header} is only believed from a trusted proxy`, { reason: 'untrusted_forwarded_certificate' });
  }
  if (typeof socket.getPeerCertificate !== 'function') return undefined;
  let p = perSocket.get(socket);
  if (p === undefined) {
    p = read(socket);
    perSocket.set(socket, p);
  }
  return p ?? undefined;
}

function read(socket: TLSSocket): PresentedCertificate | null {
  const leaf = socket.getPeerCertificate(true);
  if (!leaf || !leaf.raw) return null;
  try {
    // the rest of what the client sent (node links it as issuerCertificate, ending in a self-reference)
    const intermediates: X509Certificate[] = [];
    const seen = new Set<Buffer>([leaf.raw]);
    for (let c = leaf.issuerCertificate; c && c.raw && !seen.has(c.raw) && intermediates.length < 8; c = c.issuerCertificate) {
      seen.add(c.raw);
      intermediates.push(new X509Certificate(c.raw));
    }
    return presented(new X509Certificate(leaf.raw), intermediates);
  } catch {
    return null;
  }
}

// ---- forwarded by a proxy ------------------------------------------------------------------------

const proxiesOf = new WeakMap<Config, BlockList>();

function fromTrustedProxy(config: Config, address: string | undefined): boolean {
  let list = proxiesOf.get(config);
  if (!list) {
    list = new BlockList();
    for (const cidr of config.listen.forwardedClientCertificate?.trustedProxies ?? []) {
      const [addr, bits] = cidr.split('/') as [string, string | undefined];
      const family = isIP(addr) === 6 ? 'ipv6' : 'ipv4';
      list.addSubnet(addr, bits === undefined ? (family === 'ipv6' ? 128 : 32) : Number(bits), family);
    }
    proxiesOf.set(config, list);
  }
  const v = address ? isIP(address) : 0;
  return v !== 0 && list.check(address!, v === 6 ? 'ipv6' : 'ipv4');
}

/** Parsed header values (a proxy forwards the same certificate for every request of a client). */
const parsed = new Map<string, PresentedCertificate>();
const MAX_PARSED = 1024;
const MAX_HEADER = 16 * 1024;

function fromHeader(value: string, format: 'xfcc' | 'pem'): PresentedCertificate | undefined {
  const known = parsed.get(value);
  if (known) return known;
  const bad = (why: string) => new MayflyError('invalid_request', `malformed forwarded client certificate: ${why}`, { reason: 'malformed_forwarded_certificate' });
  if (value.length > MAX_HEADER) throw bad('too long');
  let pem: string | undefined;
  if (format === 'pem') pem = value;
  else {
    const fields = xfccElement(value);
    if (!fields) throw bad('not an X-Forwarded-Client-Cert element');
    pem = fields.get('cert');
    if (pem === undefined) return undefined; // the proxy saw no client certificate
    const chain = fields.get('chain');
    if (chain) pem = `${pem}\n${chain}`;
  }
  let certs: X509Certificate[];
  try {
    certs = parseCertificates(decodeURIComponent(pem));
  } catch {
    throw bad('not a URL-encoded PEM certificate');
  }
  const leaf = certs[0];
  if (!leaf) throw bad('no certificate');
  const p = presented(leaf, certs.slice(1));
  if (parsed.size >= MAX_PARSED) parsed.delete(parsed.keys().next().value!);
  parsed.set(value, p);
  return p;
}

/**
 * The last element of an XFCC header (the one the nearest proxy added): `key=value` pairs separated
 * by `;`, a value optionally quoted (with `\"` inside). Keys lowercased. Null when it does not parse.
 */
function xfccElement(header: string): Map<string, string> | null {
  const elements: Map<string, string>[] = [];
  let fields = new Map<string, string>();
  let i = 0;
  while (i < header.length) {
    const eq = header.indexOf('=', i);
    if (eq < 0) return null;
    const key = header.slice(i, eq).trim().toLowerCase();
    if (!/^[a-z]+$/.test(key)) return null;
    let j = eq + 1;
    let val = '';
    if (header[j] === '"') {
      j++;
      for (; j < header.length && header[j] !== '"'; j++) val += header[j] === '\\' && j + 1 < header.length ? header[++j] : header[j];
      if (header[j] !== '"') return null;
      j++;
    } else {
      const end = header.slice(j).search(/[;,]/);
      val = end < 0 ? header.slice(j) : header.slice(j, j + end);
      j += val.length;
    }
    fields.set(key, val.trim());
    if (header[j] === ',') {
      elements.push(fields);
      fields = new Map();
    } else if (j < header.length && header[j] !== ';') return null;
    i = j + 1;
  }
  elements.push(fields);
  return elements.at(-1)!;
}
