/**
 * Discovery: RFC 8414 authorization server metadata (also served at the OIDC discovery path) and the
 * RFC 7517 JWK Set resource servers verify tokens with.
 */
import type { Hono } from 'hono';
import type { Broker } from '../../broker.js';
import { GRANT_TOKEN_EXCHANGE, TT_ACCESS_TOKEN, TT_ID_TOKEN, TT_JWT } from './oauth-token.js';
import { DPOP_ALGORITHMS } from '../../attest/dpop-proof.js';
import { JOIN_TOKEN_TYPE } from '../../attest/join-token.js';
import { CERTIFICATE_TOKEN_TYPE } from '../../attest/client-certificate.js';

export function metadata(b: Broker) {
  const iss = b.config.issuer;
  const tls = b.config.listen.tls !== undefined || b.config.listen.forwardedClientCertificate !== undefined; // client certificates arrive
  return {
    issuer: iss,
    token_endpoint: `${iss}/oauth/token`,
    jwks_uri: `${iss}/.well-known/jwks.json`,
    introspection_endpoint: `${iss}/oauth/introspect`,
    revocation_endpoint: `${iss}/oauth/revoke`,
    grant_types_supported: [GRANT_TOKEN_EXCHANGE],
    dpop_signing_alg_values_supported: DPOP_ALGORITHMS, // RFC 9449 §5.1
    response_types_supported: [],
    token_endpoint_auth_methods_supported: ['none'],
    introspection_endpoint_auth_methods_supported: ['client_secret_basic'],
    revocation_endpoint_auth_methods_supported: ['client_secret_basic'],
    token_exchange_subject_token_types_supported: [TT_JWT, TT_ID_TOKEN, JOIN_TOKEN_TYPE, TT_ACCESS_TOKEN, ...(tls ? [CERTIFICATE_TOKEN_TYPE] : [])],
    // RFC 8705 §3.3: over mTLS, tokens are bound to the client certificate presented
    ...(tls ? { tls_client_certificate_bound_access_tokens: true } : {}),
    token_exchange_requested_token_types_supported: [TT_ACCESS_TOKEN, TT_JWT],
    access_token_signing_alg_values_supported: [b.config.tokens.alg],
    introspection_endpoint_response_types_supported: ['application/json'],
    service_documentation: 'https://github.com/mayfly-dev/mayfly#readme',
    // Mayfly's own endpoints
    tasks_endpoint: `${iss}/v1/tasks`,
    identities_endpoint: `${iss}/v1/identities`,
    principals_endpoint: `${iss}/v1/principals`,
    audit_endpoint: `${iss}/v1/audit`,
    revocations_endpoint: `${iss}/v1/revocations`,
    certificates_endpoint: `${iss}/v1/certificates`,
    ca_bundle_endpoint: `${iss}/v1/ca/bundle`,
    spiffe_bundle_endpoint: `${iss}/v1/ca/spiffe-bundle`,
    crl_endpoint: `${iss}/v1/ca/crl`,
    ocsp_endpoint: `${iss}/v1/ca/ocsp`,
    trust_domain: b.config.trustDomain,
  };
}

export function wellKnownRoutes(app: Hono, b: Broker): void {
  const meta = () => metadata(b);
  app.get('/.well-known/oauth-authorization-server', (c) => c.json(meta(), 200, { 'Cache-Control': 'public, max-age=300' }));
  app.get('/.well-known/openid-configuration', (c) => c.json(meta(), 200, { 'Cache-Control': 'public, max-age=300' }));
  app.get('/.well-known/jwks.json', (c) =>
    c.json(b.keyring.jwks(), 200, { 'Content-Type': 'application/jwk-set+json', 'Cache-Control': 'public, max-age=300' }),
  );
}
