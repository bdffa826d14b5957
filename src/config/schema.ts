/**
 * The configuration file's schema: a user-facing contract (README "Configuration"). Unknown keys are
 * refused so a typo is named at start-up instead of silently ignored.
 */
import { isIP } from 'node:net';
import { z } from 'zod';
import { parseDuration } from './duration.js';
import { isAgentPattern, isSpiffeId, parseSpiffeId } from '../ids/spiffe.js';
import { isAudience, isScopeToken } from '../ids/tokens.js';

/** Registrations with this attestor are attested by one-time join tokens (POST /v1/join-tokens). */
export const JOIN_ATTESTOR = 'join';

/** An IPv4/IPv6 address, optionally with a prefix length. */
export function isCidr(s: string): boolean {
  const [addr, bits, ...rest] = s.split('/');
  if (rest.length || !addr) return false;
  const v = isIP(addr);
  if (v === 0) return false;
  return bits === undefined || (/^\d{1,3}$/.test(bits) && Number(bits) <= (v === 4 ? 32 : 128));
}

const duration = z.string().refine((s) => parseDuration(s) !== null, {
  message: 'expected a duration such as "90s", "5m", "1h30m"',
});
const scopeList = z.array(z.string().refine(isScopeToken, { message: 'not a valid scope/tool token (printable ASCII, no spaces)' }));
const audienceList = z.array(z.string().refine(isAudience, { message: 'not a valid audience (printable ASCII, no spaces)' }));

export const SIGNING_ALGS = ['ES256', 'ES384', 'EdDSA', 'RS256', 'PS256'] as const;
export const ATTESTATION_ALGS = ['ES256', 'ES384', 'ES512', 'EdDSA', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'] as const;

const jwksObject = z.object({ keys: z.array(z.record(z.string(), z.unknown())).min(1) });

const attestorName = z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'letters, digits, . _ - (1-64)');

const jwtAttestor = z
  .object({
    name: attestorName,
    type: z.literal('jwt'),
    issuer: z.string().min(1),
    audience: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]),
    jwks: jwksObject.optional(),
    jwks_uri: z.url().optional(),
    jwks_file: z.string().min(1).optional(),
    algorithms: z.array(z.enum(ATTESTATION_ALGS)).min(1).optional(),
    /** Longest lifetime (exp - iat) accepted for an attestation token. */
    max_token_age: duration.optional(),
    clock_skew: duration.optional(),
  })
  .strict()
  .refine((a) => [a.jwks, a.jwks_uri, a.jwks_file].filter((x) => x !== undefined).length === 1, {
    message: 'exactly one of jwks, jwks_uri, jwks_file is required',
  });

/** Client certificates (mTLS) chaining to `trust_bundle_file` (PEM CA certificates): attest/client-certificate.ts. */
const x509Attestor = z
  .object({
    name: attestorName,
    type: z.literal('x509'),
    trust_bundle_file: z.string().min(1),
  })
  .strict();

const attestor = z.discriminatedUnion('type', [jwtAttestor, x509Attestor]);

const matchValue = z.union([z.string().min(1).max(1024), z.number(), z.boolean()]);

const registration = z
  .object({
    spiffe_id: z.string().refine(isSpiffeId, { message: 'not a valid SPIFFE ID (spiffe://trust-domain/path)' }),
    attestor: z.string().min(1),
    /** Claims the attestation must carry; not used with `attestor: join` (the join token names the identity). */
    match: z
      .record(z.string().min(1), matchValue)
      .refine((m) => Object.keys(m).length > 0, {
        message: 'at least one claim to match is required',
      })
      .optional(),
    owner: z.string({ error: 'every registration needs an accountable owner' }).trim().min(1, 'every registration needs an accountable owner'),
    roles: z.array(z.enum(['agent', 'orchestrator'])).min(1).default(['agent']),
    scopes: scopeList.default([]),
    tools: scopeList.default([]),
    audiences: audienceList.default([]),
    /** Task agent patterns an orchestrator may name (default: any ID in the trust domain). */
    agents: z.array(z.string().refine(isAgentPattern, { message: 'not a SPIFFE ID or prefix pattern ending in /*' })).optional(),
    max_ttl: duration.optional(),
    certificates: z.boolean().default(false),
  })
  .strict();

const redisUrl = z.string().regex(/^rediss?:\/\//, 'expected redis:// or rediss:// URL');

const store = z.union([
  z.literal('memory'),
  z.object({ memory: z.literal(true) }).strict().transform(() => 'memory' as const),
  z.object({ redis_url: redisUrl, prefix: z.string().max(64).optional() }).strict(),
  /** A Redis Cluster: some of its nodes (the others are discovered). */
  z.object({ redis_cluster: z.array(redisUrl).min(1).max(32), prefix: z.string().max(64).optional() }).strict(),
]);

/** An integer, or its digits as a string: what `${ENV}` interpolation yields (`port: ${PORT}`). */
const integer = (min: number, max: number) =>
  z
    .union([z.number(), z.string().regex(/^[0-9]{1,16}$/, 'an integer').transform(Number)])
    .pipe(z.number().int().min(min).max(max));

export const configSchema = z
  .object({
    issuer: z.url().refine((u) => !u.endsWith('/') && !u.includes('?') && !u.includes('#'), {
      message: 'issuer must be an https (or http for local use) URL without trailing slash, query or fragment',
    }),
    trust_domain: z.string().regex(/^[a-z0-9._-]{1,255}$/, 'lowercase letters, digits, . _ -'),
    listen: z
      .object({
        host: z.string().min(1).default('127.0.0.1'),
        port: integer(0, 65535).default(8080),
        /** HTTPS, asking every client for a certificate (optional): mTLS attestation and RFC 8705 bound tokens. */
        tls: z.object({ cert_file: z.string().min(1), key_file: z.string().min(1), key_password_file: z.string().min(1).optional() }).strict().optional(),
        /**
         * Behind a proxy that terminates mTLS: the client certificate it verified, in a request header,
         * believed only from `trusted_proxies` (CIDRs). `format`: `xfcc` (Envoy's
         * X-Forwarded-Client-Cert, its `Cert=` field) or `pem` (a URL-encoded PEM, as nginx's
         * $ssl_client_escaped_cert or AWS ALB's X-Amzn-Mtls-Clientcert).
         */
        forwarded_client_certificate: z
          .object({
            header: z.string().regex(/^[A-Za-z0-9-]{1,64}$/, 'a header name').transform((h) => h.toLowerCase()),
            format: z.enum(['xfcc', 'pem']),
            trusted_proxies: z.array(z.string().refine(isCidr, { message: 'an IPv4 or IPv6 address or CIDR (10.0.0.0/8)' })).min(1),
          })
          .strict()
          .optional(),
      })
      .strict()
      .default({ host: '127.0.0.1', port: 8080 }),
    store: store.default('memory'),
    /**
     * Processes serving HTTP on `listen` (node:cluster; the primary only supervises): an integer, or
     * "auto" for one per CPU. More than 1 needs the Redis store: every worker is a replica of the others.
     */
    workers: z
      .union([
        z.number().int().min(1).max(256),
        z.literal('auto'),
        // from ${ENV} interpolation, which yields strings
        z.string().regex(/^[1-9][0-9]{0,2}$/, 'a count of processes or "auto"').transform(Number).pipe(z.number().max(256)),
      ])
      .default(1),
    tokens: z
      .object({ default_ttl: duration.default('5m'), max_ttl: duration.default('15m'), alg: z.enum(SIGNING_ALGS).default('ES256') })
      .strict()
      .default({ default_ttl: '5m', max_ttl: '15m', alg: 'ES256' }),
    tasks: z
      .object({ default_ttl: duration.default('30m'), max_ttl: duration.default('24h'), retention: duration.default('1h') })
      .strict()
      .default({ default_ttl: '30m', max_ttl: '24h', retention: '1h' }),
    /** publish_ahead: how long a new key is published before it signs (keys rotate; SPIRE-style pre-publication). */
    keys: z.object({ dir: z.string().min(1).optional(), publish_ahead: duration.default('0s') }).strict().optional(),
    attestors: z.array(attestor).default([]),
    registrations: z.array(registration).default([]),
    clients: z.array(z.object({ client_id: z.string().min(1).max(256), client_secret: z.string().min(1) }).strict()).default([]),
    operators: z.array(z.object({ name: z.string().min(1).max(128), token: z.string().min(1) }).strict()).default([]),
    feed: z.object({ heartbeat: duration.default('15s') }).strict().default({ heartbeat: '15s' }),
    /**
     * DPoP (RFC 9449): `require_nonce` makes every proof at the token endpoint carry a nonce this broker
     * issued (§8: answered `use_dpop_nonce` with a `DPoP-Nonce` header), so a proof made in advance by a
     * stolen key is useless; a nonce is good for `nonce_lifetime` to twice that.
     */
    dpop: z
      .object({
        require_nonce: z.boolean().default(false),
        nonce_lifetime: duration.refine((d) => parseDuration(d)! >= 10_000 && parseDuration(d)! <= 3_600_000, { message: 'between 10s and 1h' }).default('5m'),
      })
      .strict()
      .default({ require_nonce: false, nonce_lifetime: '5m' }),
    limits: z
      .object({ body_bytes: integer(1024, 16 * 1024 * 1024).default(65536), idle_timeout: duration.default('2m') })
      .strict()
      .default({ body_bytes: 65536, idle_timeout: '2m' }),
    audit: z.object({ stream_max_len: integer(100, Number.MAX_SAFE_INTEGER).default(100_000) }).strict().default({ stream_max_len: 100_000 }),
    log: z.object({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info') }).strict().default({ level: 'info' }),
    /** Dev mode: enables the dev attestor and its mint endpoint; refuses to listen beyond loopback. */
    dev: z.boolean().default(false),
    /** X.509 CA for certificates: a root or an intermediate (its chain is served). Without cert_file/key_file: one is generated in keys.dir. */
    ca: z
      .object({
        cert_file: z.string().min(1).optional(),
        key_file: z.string().min(1).optional(),
        /** A file holding the password of an encrypted key_file (as step-ca's --password-file): its first line. */
        key_password_file: z.string().min(1).optional(),
        chain_file: z.string().min(1).optional(),
        /** How far not_before is set before the issuance instant (clock skew of relying parties): small only. */
        backdate: duration.refine((d) => parseDuration(d)! <= 10 * 60_000, { message: 'at most 10m: certificates live minutes' }).default('30s'),
        crl_validity: duration
          .refine((d) => parseDuration(d)! >= 60_000 && parseDuration(d)! <= 7 * 86_400_000, { message: 'between 1m and 7d' })
          .default('10m'),
      })
      .strict()
      .optional(),
  })
  .strict()
  .superRefine((c, ctx) => {
    const names = new Set<string>();
    c.attestors.forEach((a, i) => {
      if (names.has(a.name)) ctx.addIssue({ code: 'custom', path: ['attestors', i, 'name'], message: `duplicate attestor name "${a.name}"` });
      names.add(a.name);
    });
    if (names.has(JOIN_ATTESTOR))
      ctx.addIssue({ code: 'custom', path: ['attestors'], message: `"${JOIN_ATTESTOR}" is the built-in join-token attestor: pick another name` });
    c.attestors.forEach((a, i) => {
      if (a.type === 'x509' && !c.listen.tls && !c.listen.forwarded_client_certificate)
        ctx.addIssue({
          code: 'custom',
          path: ['attestors', i, 'type'],
          message: 'an x509 attestor needs listen.tls (or listen.forwarded_client_certificate behind a proxy): client certificates arrive with the TLS handshake',
        });
    });
    c.registrations.forEach((r, i) => {
      if (r.attestor !== JOIN_ATTESTOR && r.match === undefined)
        ctx.addIssue({ code: 'custom', path: ['registrations', i, 'match'], message: 'at least one claim to match is required' });
      if (!names.has(r.attestor) && r.attestor !== JOIN_ATTESTOR && !(c.dev && r.attestor === 'dev'))
        ctx.addIssue({ code: 'custom', path: ['registrations', i, 'attestor'], message: `no attestor named "${r.attestor}"` });
      if (parseSpiffeId(r.spiffe_id)?.trustDomain !== c.trust_domain)
        ctx.addIssue({ code: 'custom', path: ['registrations', i, 'spiffe_id'], message: `not in trust domain "${c.trust_domain}"` });
    });
    const ids = new Set<string>();
    c.clients.forEach((cl, i) => {
      if (ids.has(cl.client_id)) ctx.addIssue({ code: 'custom', path: ['clients', i, 'client_id'], message: 'duplicate client_id' });
      ids.add(cl.client_id);
    });
    // an operator's token says who acted in the audit trail: one token, one name
    const operatorNames = new Set<string>();
    const tokens = new Set<string>();
    c.operators.forEach((op, i) => {
      if (operatorNames.has(op.name)) ctx.addIssue({ code: 'custom', path: ['operators', i, 'name'], message: 'duplicate operator name' });
      if (tokens.has(op.token)) ctx.addIssue({ code: 'custom', path: ['operators', i, 'token'], message: 'the same token as another operator (the audit trail could not tell them apart)' });
      operatorNames.add(op.name);
      tokens.add(op.token);
    });
    if (parseDuration(c.tokens.default_ttl)! > parseDuration(c.tokens.max_ttl)!)
      ctx.addIssue({ code: 'custom', path: ['tokens', 'default_ttl'], message: 'must not exceed tokens.max_ttl' });
    if (parseDuration(c.tasks.default_ttl)! > parseDuration(c.tasks.max_ttl)!)
      ctx.addIssue({ code: 'custom', path: ['tasks', 'default_ttl'], message: 'must not exceed tasks.max_ttl' });
    if (c.ca && (c.ca.cert_file === undefined) !== (c.ca.key_file === undefined))
      ctx.addIssue({
        code: 'custom',
        path: ['ca', c.ca.cert_file === undefined ? 'cert_file' : 'key_file'],
        message: 'cert_file and key_file go together (omit both for the CA generated in keys.dir)',
      });
    if (c.ca?.chain_file !== undefined && c.ca.cert_file === undefined)
      ctx.addIssue({ code: 'custom', path: ['ca', 'chain_file'], message: 'a chain needs the CA it belongs to: set cert_file and key_file' });
    if (c.ca?.key_password_file !== undefined && c.ca.key_file === undefined)
      ctx.addIssue({ code: 'custom', path: ['ca', 'key_password_file'], message: 'a key password needs the key it opens: set cert_file and key_file' });
    if (parseDuration(c.limits.idle_timeout)! <= parseDuration(c.feed.heartbeat)!)
      ctx.addIssue({ code: 'custom', path: ['limits', 'idle_timeout'], message: 'must be longer than feed.heartbeat (a revocation stream is quiet between heartbeats)' });
    if ((c.workers === 'auto' || c.workers > 1) && c.store === 'memory')
      ctx.addIssue({
        code: 'custom',
        path: ['workers'],
        message: 'more than one worker needs store.redis_url: the memory store lives inside one process',
      });
    if (c.dev && (c.workers === 'auto' || c.workers > 1))
      ctx.addIssue({
        code: 'custom',
        path: ['workers'],
        message: "dev mode runs one process: the dev attestor's key lives in its memory, so another worker would refuse the tokens it mints",
      });
    if (c.dev && !['127.0.0.1', 'localhost', '::1'].includes(c.listen.host))
      ctx.addIssue({ code: 'custom', path: ['listen', 'host'], message: 'dev mode listens on loopback only' });
  });

export type RawConfig = z.infer<typeof configSchema>;
