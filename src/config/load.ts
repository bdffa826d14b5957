/**
 * Loading configuration: the only place that reads the environment. YAML or JSON at MAYFLY_CONFIG
 * (default config/mayfly.yaml), `${ENV}` interpolated, validated against the schema; a bad key is named
 * in the error ("registrations[1].owner: ...").
 */
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { configSchema, type RawConfig } from './schema.js';
import { interpolate, InterpolationError } from './interpolate.js';
import { parseDuration } from './duration.js';
import type { Config } from './config.js';

export const DEFAULT_CONFIG_PATH = 'config/mayfly.yaml';
/** Where signing keys live when the config has no `keys` section (relative to the working directory). */
export const DEFAULT_KEYS_DIR = '.mayfly/keys';

export class ConfigError extends Error {
  override name = 'ConfigError';
}

export function loadConfigFile(path: string, env: NodeJS.ProcessEnv = process.env): Config {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError(`${path}: cannot read config file (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  let doc: unknown;
  try {
    doc = path.endsWith('.json') ? JSON.parse(text) : parseYaml(text, { maxAliasCount: 100 });
  } catch (e) {
    throw new ConfigError(`${path}: not valid ${path.endsWith('.json') ? 'JSON' : 'YAML'}: ${(e as Error).message}`);
  }
  return buildConfig(doc, path, env);
}

export function buildConfig(doc: unknown, source: string, env: NodeJS.ProcessEnv = process.env): Config {
  let expanded: unknown;
  try {
    expanded = interpolate(doc, env);
  } catch (e) {
    if (e instanceof InterpolationError) throw new ConfigError(`${source}: ${e.message}`);
    throw e;
  }
  const parsed = configSchema.safeParse(expanded ?? {});
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => {
      const where = formatPath(i.path);
      const msg = i.code === 'unrecognized_keys' ? `unknown key(s) ${i.keys.map((k) => `"${k}"`).join(', ')}` : i.message;
      return `  ${where || '(root)'}: ${msg}`;
    });
    throw new ConfigError(`${source}: invalid configuration\n${lines.join('\n')}`);
  }
  return normalise(parsed.data, source);
}

function formatPath(path: PropertyKey[]): string {
  return path.reduce<string>((acc, p) => (typeof p === 'number' ? `${acc}[${p}]` : acc ? `${acc}.${String(p)}` : String(p)), '');
}

const ms = (d: string) => parseDuration(d)!;

function normalise(c: RawConfig, source: string): Config {
  return {
    issuer: c.issuer,
    trustDomain: c.trust_domain,
    listen: {
      host: c.listen.host,
      port: c.listen.port,
      ...(c.listen.tls
        ? {
            tls: {
              certFile: resolve(c.listen.tls.cert_file),
              keyFile: resolve(c.listen.tls.key_file),
              ...(c.listen.tls.key_password_file ? { keyPasswordFile: resolve(c.listen.tls.key_password_file) } : {}),
            },
          }
        : {}),
      ...(c.listen.forwarded_client_certificate
        ? {
            forwardedClientCertificate: {
              header: c.listen.forwarded_client_certificate.header,
              format: c.listen.forwarded_client_certificate.format,
              trustedProxies: c.listen.forwarded_client_certificate.trusted_proxies,
            },
          }
        : {}),
    },
    store:
      c.store === 'memory'
        ? { kind: 'memory' }
        : {
            kind: 'redis',
            ...('redis_cluster' in c.store ? { cluster: c.store.redis_cluster } : { url: c.store.redis_url }),
            ...(c.store.prefix ? { prefix: c.store.prefix } : {}),
          },
    workers: c.workers === 'auto' ? availableParallelism() : c.workers,
    tokens: { defaultTtlMs: ms(c.tokens.default_ttl), maxTtlMs: ms(c.tokens.max_ttl), alg: c.tokens.alg },
    tasks: { defaultTtlMs: ms(c.tasks.default_ttl), maxTtlMs: ms(c.tasks.max_ttl), retentionMs: ms(c.tasks.retention) },
    keysDir: resolve(c.keys?.dir ?? DEFAULT_KEYS_DIR),
    keysPublishAheadMs: ms(c.keys?.publish_ahead ?? '0s'),
    attestors: c.attestors.flatMap((a) => (a.type !== 'jwt' ? [] : [{
      name: a.name,
      type: a.type,
      issuer: a.issuer,
      audience: Array.isArray(a.audience) ? a.audience : [a.audience],
      ...(a.jwks ? { jwks: a.jwks } : {}),
      ...(a.jwks_uri ? { jwksUri: a.jwks_uri } : {}),
      ...(a.jwks_file ? { jwksFile: resolve(a.jwks_file) } : {}),
      algorithms: a.algorithms ?? ['ES256', 'ES384', 'EdDSA', 'RS256', 'PS256'],
      maxTokenAgeMs: a.max_token_age ? ms(a.max_token_age) : 24 * 3_600_000,
      clockSkewMs: a.clock_skew ? ms(a.clock_skew) : 30_000,
    }])),
    certificateAttestors: c.attestors.flatMap((a) => (a.type === 'x509' ? [{ name: a.name, trustBundleFile: resolve(a.trust_bundle_file) }] : [])),
    registrations: c.registrations.map((r) => ({
      spiffeId: r.spiffe_id,
      attestor: r.attestor,
      match: r.match ?? {},
      owner: r.owner,
      roles: r.roles,
      scopes: r.scopes,
      tools: r.tools,
      audiences: r.audiences,
      ...(r.agents ? { agents: r.agents } : {}),
      ...(r.max_ttl ? { maxTtlMs: ms(r.max_ttl) } : {}),
      certificates: r.certificates,
    })),
    clients: c.clients.map((x) => ({ clientId: x.client_id, clientSecret: x.client_secret })),
    operators: c.operators,
    feed: { heartbeatMs: ms(c.feed.heartbeat) },
    dpop: { requireNonce: c.dpop.require_nonce, nonceLifetimeMs: ms(c.dpop.nonce_lifetime) },
    limits: { bodyBytes: c.limits.body_bytes, idleTimeoutMs: ms(c.limits.idle_timeout) },
    audit: { streamMaxLen: c.audit.stream_max_len },
    log: c.log,
    dev: c.dev,
    ...(c.ca?.cert_file && c.ca.key_file
      ? {
          ca: {
            certFile: resolve(c.ca.cert_file),
            keyFile: resolve(c.ca.key_file),
            ...(c.ca.key_password_file ? { keyPasswordFile: resolve(c.ca.key_password_file) } : {}),
            ...(c.ca.chain_file ? { chainFile: resolve(c.ca.chain_file) } : {}),
            backdateMs: ms(c.ca.backdate),
            crlValidityMs: ms(c.ca.crl_validity),
          },
        }
      : {}),
    caDefaults: { backdateMs: c.ca ? ms(c.ca.backdate) : 30_000, crlValidityMs: c.ca ? ms(c.ca.crl_validity) : 600_000 },
    source,
  };
}

/** Resolves which config file to load: MAYFLY_CONFIG, else the default path. */
export function configPath(env: NodeJS.ProcessEnv = process.env): string {
  return env.MAYFLY_CONFIG && env.MAYFLY_CONFIG.length > 0 ? env.MAYFLY_CONFIG : DEFAULT_CONFIG_PATH;
}
