/**
 * Behind a proxy that terminates mTLS (listen.forwarded_client_certificate): the client certificate
 * the proxy verified arrives in a header (Envoy's X-Forwarded-Client-Cert, or a URL-encoded PEM as
 * nginx and AWS ALB send it), believed only from a trusted proxy's address. It attests and binds
 * exactly as a certificate presented in a TLS handshake; from anyone else the header is refused.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeJwt } from 'jose';
import fc from 'fast-check';
import { API, id, JWT_TYPE, postForm, startTestBroker, STORES, TOKEN_EXCHANGE, WIDE_TASK, api, type TestBroker } from '../helpers/broker.js';
import { CERT_TYPE, corpPki, thumbprint } from '../helpers/mtls.js';

const { p, build: BUILD } = corpPki('mayfly-fwd-');
const OTHER = p.signed('other', 'corp-ca', 'other-1', 'URI:spiffe://corp.example/other/1');
const BUILD_REG = { spiffe_id: id('agent/build'), attestor: 'corp', match: { spiffe_id: 'spiffe://corp.example/build/7' }, owner: 'ci@example.com', roles: ['agent'], scopes: ['read'], tools: ['search'], audiences: [API] };

function behindProxy(store: (typeof STORES)[number], fwd: Record<string, unknown>) {
  return startTestBroker({
    store,
    edit: (doc) => {
      Object.assign(doc.listen, { forwarded_client_certificate: fwd });
      (doc.attestors as unknown[]).push({ name: 'corp', type: 'x509', trust_bundle_file: p.file('corp-ca.pem') });
      (doc.registrations as unknown[]).push(BUILD_REG);
    },
  });
}

const xfcc = (...pems: string[]) => pems.map((pem, i) => `By=spiffe://mesh/proxy-${i};Hash=00ff;Cert="${encodeURIComponent(pem)}";Subject="CN=x,O=\\"quoted\\"";URI=spiffe://corp.example/x`).join(',');

describe.each(STORES)('forwarded client certificates (%s)', (store) => {
  let b: TestBroker;
  let task: string;
  const exchange = (headers: Record<string, string>, subject = thumbprint(BUILD.cert), type = CERT_TYPE) =>
    postForm(`${b.url}/oauth/token`, { grant_type: TOKEN_EXCHANGE, subject_token: subject, subject_token_type: type, task_id: task, scope: 'read' }, headers);

  describe('from a trusted proxy (XFCC)', () => {
    beforeAll(async () => {
      b = await behindProxy(store, { header: 'X-Forwarded-Client-Cert', format: 'xfcc', trusted_proxies: ['127.0.0.0/8', '::1'] });
      task = (await api(b).openTask(WIDE_TASK)).body.task_id;
    });
    afterAll(() => b.close());

    it('the last element (the nearest proxy\'s) attests and binds', async () => {
      const r = await exchange({ 'x-forwarded-client-cert': xfcc(OTHER.cert, BUILD.cert) });
      expect(r.status, r.text).toBe(200);
      expect(decodeJwt(r.body.access_token)).toMatchObject({ client_id: id('agent/build'), cnf: { 'x5t#S256': thumbprint(BUILD.cert) } });
      const m = await (await fetch(`${b.url}/.well-known/oauth-authorization-server`)).json();
      expect((m as Record<string, unknown>).tls_client_certificate_bound_access_tokens).toBe(true);
    });

    it('a JWT-attested token requested through the proxy is bound to the forwarded certificate', async () => {
      const r = await exchange({ 'x-forwarded-client-cert': xfcc(OTHER.cert) }, await b.attest('agent-a'), JWT_TYPE);
      expect(r.status, r.text).toBe(200);
      expect(decodeJwt(r.body.access_token).cnf).toEqual({ 'x5t#S256': thumbprint(OTHER.cert) });
    });

    it('any header value from the proxy: never a 5xx, never a token unless it is the certificate (fuzz)', async () => {
      const parts = fc.oneof(
        fc.string({ maxLength: 40 }),
        fc.constantFrom('Cert=', 'Cert="', 'Chain=', ';', ',', '"', '\\"', '=', 'By=x', encodeURIComponent(BUILD.cert).slice(0, 200), '%', '%2', '-----BEGIN CERTIFICATE-----'),
      );
      await fc.assert(
        fc.asyncProperty(fc.array(parts, { maxLength: 8 }).map((a) => a.join('')), async (value) => {
          const headerSafe = value.replace(/[^\x20-\x7e]/g, '');
          const r = await exchange({ 'x-forwarded-client-cert': headerSafe });
          expect(r.status).toBeLessThan(500);
          expect(r.status).not.toBe(200);
          expect(typeof r.body?.error).toBe('string');
        }),
        { seed: 20_261_126, numRuns: 150 },
      );
    });

    it('no certificate forwarded: no certificate; a garbled header: 400', async () => {
      const none = await exchange({ 'x-forwarded-client-cert': 'By=spiffe://mesh/proxy;Hash=00ff' });
      expect(none.status).toBe(400);
      expect(none.body.error_description).toMatch(/no client certificate/);
      for (const garbled of ['Cert="unterminated', 'By', `Cert="${encodeURIComponent('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----')}"`, 'Cert=%E0%A4%A']) {
        const r = await exchange({ 'x-forwarded-client-cert': garbled });
        expect(r.status, garbled).toBe(400);
        expect(r.body.error).toBe('invalid_request');
      }
    });
  });

  describe('a URL-encoded PEM header, and a proxy list that does not include the caller', () => {
    let trusted: TestBroker;
    beforeAll(async () => {
      trusted = await behindProxy(store, { header: 'x-client-cert', format: 'pem', trusted_proxies: ['127.0.0.1/32', '::1/128', '::ffff:127.0.0.1'] });
      b = await behindProxy(store, { header: 'x-client-cert', format: 'pem', trusted_proxies: ['10.0.0.0/8'] });
    });
    afterAll(async () => {
      await trusted.close();
      await b.close();
    });

    it('pem: attests from a trusted proxy', async () => {
      const t = (await api(trusted).openTask(WIDE_TASK)).body.task_id;
      const r = await postForm(`${trusted.url}/oauth/token`, { grant_type: TOKEN_EXCHANGE, subject_token: thumbprint(BUILD.cert), subject_token_type: CERT_TYPE, task_id: t }, { 'x-client-cert': encodeURIComponent(BUILD.cert) });
      expect(r.status, r.text).toBe(200);
    });

    it('from an address that is not a trusted proxy the header is refused; without it, nothing changes', async () => {
      task = (await api(b).openTask(WIDE_TASK)).body.task_id;
      const forged = await exchange({ 'x-client-cert': encodeURIComponent(BUILD.cert) });
      expect(forged.status).toBe(400);
      expect(forged.body.error_description).toMatch(/only believed from a trusted proxy/);
      const plain = await exchange({}, await b.attest('agent-a'), JWT_TYPE);
      expect(plain.status).toBe(200);
      expect(decodeJwt(plain.body.access_token).cnf).toBeUndefined();
    });
  });
});
