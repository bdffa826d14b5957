/**
 * The certificate the TLS client presented on this request's connection (listen.tls), or undefined:
 * plain HTTP, no certificate, or a request that did not come through a socket (app.request in tests).
 * Read once per connection: a kept-alive connection presents the same certificate to every request.
 */
import type { Context } from 'hono';
import { X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import { presented, type PresentedCertificate } from '../attest/client-certificate.js';

const perSocket = new WeakMap<TLSSocket, PresentedCertificate | null>();

export function clientCertificate(c: Context): PresentedCertificate | undefined {
  const socket = (c.env as { incoming?: { socket?: unknown } } | undefined)?.incoming?.socket as TLSSocket | undefined;
  if (!socket || typeof socket.getPeerCertificate !== 'function') return undefined;
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
