/** Configuration is a user-facing contract: validated at start-up, bad keys named, secrets from the environment. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { availableParallelism } from 'node:os';
import { buildConfig, ConfigError, loadConfigFile } from '../../src/config/load.js';
import { devConfig } from '../../src/config/dev-default.js';
import { parseDuration } from '../../src/config/duration.js';
import { loadAuthority } from '../../src/ca/authority.js';
import { generateDevCa } from '../../src/x509/index.js';

const minimal = {
  issuer: 'https://mayfly.example.com',
  trust_domain: 'example.com',
  attestors: [{ name: 'k8s', type: 'jwt', issuer: 'https://k8s', audience: 'mayfly', jwks_file: '/dev/null' }],
  registrations: [
    { spiffe_id: 'spiffe://example.com/a', attestor: 'k8s', match: { sub: 'a' }, owner: 'team@example.com', roles: ['agent'] },
  ],
};
const errorOf = (doc: unknown, env: NodeJS.ProcessEnv = {}) => {
  try {
    buildConfig(doc, 'cfg.yaml', env);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as Error).message;
  }
  throw new Error('expected a ConfigError');
};

describe('config', () => {
  it('applies documented defaults', () => {
    const c = buildConfig(minimal, 'x', {});
    expect(c.store).toEqual({ kind: 'memory' });
    expect(c.tokens).toEqual({ defaultTtlMs: 300_000, maxTtlMs: 900_000, alg: 'ES256' });
    expect(c.listen).toEqual({ host: '127.0.0.1', port: 8080 });
    expect(c.keysDir.endsWith('.mayfly/keys')).toBe(true);
    expect(c.limits.bodyBytes).toBe(65536);
    expect(c.dev).toBe(false);
    expect(c.workers).toBe(1);
  });

  it('ca: backdate and crl_validity apply to the generated CA too; cert_file and key_file go together', () => {
    const c = buildConfig({ ...minimal, ca: { backdate: '10s', crl_validity: '2m' } }, 'x', {});
    expect(c.ca).toBeUndefined();
    expect(c.caDefaults).toEqual({ backdateMs: 10_000, crlValidityMs: 120_000 });
    expect(buildConfig({ ...minimal, ca: { cert_file: 'ca.pem', key_file: 'ca.key' } }, 'x', {}).ca).toMatchObject({ backdateMs: 30_000, crlValidityMs: 600_000 });
    expect(errorOf({ ...minimal, ca: { cert_file: 'ca.pem' } })).toMatch(/ca\.key_file: cert_file and key_file go together/);
    expect(errorOf({ ...minimal, ca: { key_file: 'ca.key' } })).toMatch(/ca\.cert_file: cert_file and key_file go together/);
    expect(errorOf({ ...minimal, ca: { chain_file: 'chain.pem' } })).toMatch(/ca\.chain_file/);
    expect(errorOf({ ...minimal, limits: { idle_timeout: '10s' } })).toMatch(/limits\.idle_timeout: must be longer than feed\.heartbeat/);
    const op = (name: string, token: string) => ({ name, token });
    expect(errorOf({ ...minimal, operators: [op('a', 't1'), op('b', 't1')] })).toMatch(/operators\.1\.token|operators\[1\]\.token/);
    expect(errorOf({ ...minimal, operators: [op('a', 't1'), op('a', 't2')] })).toMatch(/operators\.1\.name|operators\[1\]\.name/);
    expect(errorOf({ ...minimal, clients: [{ client_id: 'c', client_secret: 's' }, { client_id: 'c', client_secret: 't' }] })).toMatch(/client_id: duplicate/);
    expect(errorOf({ ...minimal, ca: { backdate: '1h' } })).toMatch(/ca\.backdate: at most 10m/);
    expect(errorOf({ ...minimal, ca: { crl_validity: '10s' } })).toMatch(/ca\.crl_validity/);
  });

  it('ca.key_password_file: the first line of the file opens an encrypted key_file; needs key_file; a wrong or empty one stops the start', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mayfly-ca-pass-'));
    const made = generateDevCa('example.com');
    writeFileSync(join(dir, 'ca.pem'), made.cert.pem);
    writeFileSync(join(dir, 'ca.key'), made.key.export({ format: 'pem', type: 'pkcs8', cipher: 'aes-256-cbc', passphrase: 'correct horse' }) as string);
    writeFileSync(join(dir, 'pass'), 'correct horse\nsecond line ignored\n');
    writeFileSync(join(dir, 'wrong'), 'battery staple\n');
    writeFileSync(join(dir, 'empty'), '\n');
    const ca = (pass?: string) => ({ cert_file: join(dir, 'ca.pem'), key_file: join(dir, 'ca.key'), ...(pass ? { key_password_file: join(dir, pass) } : {}) });
    const c = buildConfig({ ...minimal, ca: ca('pass') }, 'x', {});
    expect(c.ca?.keyPasswordFile).toBe(join(dir, 'pass'));
    expect(loadAuthority(c).ski.equals(made.ski)).toBe(true);
    expect(() => loadAuthority(buildConfig({ ...minimal, ca: ca() }, 'x', {}))).toThrow(/encrypted: give its password \(config ca\.key_password_file\)/);
    expect(() => loadAuthority(buildConfig({ ...minimal, ca: ca('wrong') }, 'x', {}))).toThrow(/cannot be decrypted/);
    expect(() => loadAuthority(buildConfig({ ...minimal, ca: ca('empty') }, 'x', {}))).toThrow(/ca\.key_password_file: .* empty first line/);
    expect(() => loadAuthority(buildConfig({ ...minimal, ca: ca('missing') }, 'x', {}))).toThrow(/ca\.key_password_file: cannot read/);
    expect(errorOf({ ...minimal, ca: { key_password_file: join(dir, 'pass') } })).toMatch(/ca\.key_password_file: a key password needs the key it opens/);
  });

  it('registrations with attestor "join" need no match (the join token names the identity); others do', () => {
    const join = { spiffe_id: 'spiffe://example.com/edge', attestor: 'join', owner: 'edge@example.com', roles: ['agent'] };
    expect(buildConfig({ ...minimal, registrations: [...minimal.registrations, join] }, 'x', {}).registrations[1]).toMatchObject({ attestor: 'join', match: {} });
    const { match: _, ...noMatch } = minimal.registrations[0]!;
    expect(errorOf({ ...minimal, registrations: [noMatch] })).toMatch(/registrations\[0\]\.match: at least one claim/);
    expect(errorOf({ ...minimal, attestors: [{ ...minimal.attestors[0], name: 'join' }] })).toMatch(/attestors: "join" is the built-in join-token attestor/);
  });

  it('workers: a count, or "auto" for one per CPU; more than one only on the Redis store', () => {
    const redis = { ...minimal, store: { redis_url: 'redis://127.0.0.1:6379' } };
    expect(buildConfig({ ...redis, workers: 3 }, 'x', {}).workers).toBe(3);
    // dev mode: one process (its dev attestor's key is in that process's memory)
    expect(() => buildConfig({ ...redis, dev: true, workers: 2 }, 'x', {})).toThrow(/workers: dev mode runs one process/);
    expect(buildConfig({ ...redis, workers: 'auto' }, 'x', {}).workers).toBe(availableParallelism());
    expect(buildConfig({ ...redis, workers: '${W:-4}' }, 'x', {}).workers).toBe(4); // from the environment
    expect(buildConfig({ ...redis, workers: '${W:-4}' }, 'x', { W: 'auto' }).workers).toBe(availableParallelism());
    expect(errorOf({ ...minimal, workers: 2 })).toMatch(/workers: more than one worker needs store\.redis_url/);
    const zero = errorOf({ ...minimal, workers: 0 });
    expect(zero).toMatch(/workers/);
    expect(zero).not.toMatch(/more than one worker/);
    expect(errorOf({ ...minimal, workers: 'auto' })).toMatch(/workers: more than one worker needs store\.redis_url/);
    expect(errorOf({ ...redis, workers: 0 })).toMatch(/workers/);
    expect(errorOf({ ...redis, workers: 1.5 })).toMatch(/workers/);
    expect(errorOf({ ...redis, workers: 'many' })).toMatch(/workers/);
  });

  it('listen.tls and x509 attestors: files resolved, an x509 attestor needs TLS and a trust bundle file', () => {
    const tls = { cert_file: 'srv.pem', key_file: 'srv.key' };
    const x509 = { name: 'corp', type: 'x509', trust_bundle_file: 'corp.pem' };
    const c = buildConfig({ ...minimal, listen: { port: 8443, tls }, attestors: [...minimal.attestors, x509] }, 'x', {});
    expect(c.listen.tls?.certFile.endsWith('/srv.pem')).toBe(true);
    expect(c.listen.tls?.keyPasswordFile).toBeUndefined();
    expect(buildConfig({ ...minimal, listen: { tls: { ...tls, key_password_file: 'srv.pass' } } }, 'x', {}).listen.tls?.keyPasswordFile).toMatch(/^\/.*\/srv\.pass$/);
    expect(c.certificateAttestors).toEqual([{ name: 'corp', trustBundleFile: expect.stringMatching(/\/corp\.pem$/) }]);
    expect(c.attestors.map((a) => a.name)).toEqual(['k8s']);
    expect(errorOf({ ...minimal, attestors: [...minimal.attestors, x509] })).toMatch(/attestors\[1\]\.type: an x509 attestor needs listen\.tls/);
    expect(errorOf({ ...minimal, listen: { tls }, attestors: [...minimal.attestors, { name: 'corp', type: 'x509' }] })).toMatch(/trust_bundle_file/);
    expect(errorOf({ ...minimal, listen: { tls: { cert_file: 'srv.pem' } } })).toMatch(/key_file/);
    expect(errorOf({ ...minimal, listen: { tls }, attestors: [...minimal.attestors, { ...x509, issuer: 'x' }] })).toMatch(/unknown key/);
    // behind a proxy: the forwarded certificate header instead of TLS
    const fwd = { header: 'X-Forwarded-Client-Cert', format: 'xfcc', trusted_proxies: ['10.0.0.0/8', '::1', '192.168.1.7'] };
    const behind = buildConfig({ ...minimal, listen: { forwarded_client_certificate: fwd }, attestors: [...minimal.attestors, x509] }, 'x', {});
    expect(behind.listen.forwardedClientCertificate).toEqual({ header: 'x-forwarded-client-cert', format: 'xfcc', trustedProxies: fwd.trusted_proxies });
    for (const bad of [['10.0.0.0/33'], ['example.com'], ['::1/129'], ['10.0.0.0/8/1'], []])
      expect(errorOf({ ...minimal, listen: { forwarded_client_certificate: { ...fwd, trusted_proxies: bad } } }), String(bad)).toMatch(/trusted_proxies/);
    expect(errorOf({ ...minimal, listen: { forwarded_client_certificate: { ...fwd, format: 'json' } } })).toMatch(/format/);
  });

  it('store: memory, one Redis server, or a Redis Cluster by some of its nodes', () => {
    expect(buildConfig({ ...minimal, store: { redis_url: 'redis://r:6379', prefix: 'a:' } }, 'x', {}).store).toEqual({ kind: 'redis', url: 'redis://r:6379', prefix: 'a:' });
    expect(buildConfig({ ...minimal, store: { redis_cluster: ['redis://r1:7000', 'rediss://r2:7001'] } }, 'x', {}).store).toEqual({
      kind: 'redis',
      cluster: ['redis://r1:7000', 'rediss://r2:7001'],
    });
    expect(errorOf({ ...minimal, store: { redis_cluster: [] } })).toMatch(/store/);
    expect(errorOf({ ...minimal, store: { redis_cluster: ['http://r1:7000'] } })).toMatch(/redis:\/\//);
    expect(errorOf({ ...minimal, store: { redis_cluster: ['redis://r1:7000'], redis_url: 'redis://r:6379' } })).toMatch(/store/);
  });

  it('dpop: nonces off by default; require_nonce with a lifetime of 10s-1h', () => {
    expect(buildConfig(minimal, 'x', {}).dpop).toEqual({ requireNonce: false, nonceLifetimeMs: 300_000 });
    expect(buildConfig({ ...minimal, dpop: { require_nonce: true, nonce_lifetime: '30s' } }, 'x', {}).dpop).toEqual({ requireNonce: true, nonceLifetimeMs: 30_000 });
    expect(errorOf({ ...minimal, dpop: { require_nonce: true, nonce_lifetime: '5s' } })).toMatch(/dpop\.nonce_lifetime/);
    expect(errorOf({ ...minimal, dpop: { require_nonces: true } })).toMatch(/unknown key/);
  });

  it('names the bad key', () => {
    expect(errorOf({ ...minimal, registrations: [{ ...minimal.registrations[0], owner: '' }] })).toMatch(/registrations\[0\]\.owner/);
    expect(errorOf({ ...minimal, tokens: { max_ttl: 'forever' } })).toMatch(/tokens\.max_ttl/);
    expect(errorOf({ ...minimal, tokens: { alg: 'HS256' } })).toMatch(/tokens\.alg/);
    expect(errorOf({ ...minimal, listen: { port: 70000 } })).toMatch(/listen\.port/);
    expect(errorOf({ ...minimal, stroe: 'memory' })).toMatch(/unknown key.*"stroe"/);
    expect(errorOf({ ...minimal, store: { redis_url: 'http://x' } })).toMatch(/store/);
    expect(errorOf({ ...minimal, registrations: [{ ...minimal.registrations[0], attestor: 'nope' }] })).toMatch(/registrations\[0\]\.attestor: no attestor named "nope"/);
    expect(errorOf({ ...minimal, registrations: [{ ...minimal.registrations[0], spiffe_id: 'spiffe://other.org/a' }] })).toMatch(/registrations\[0\]\.spiffe_id: not in trust domain/);
    expect(errorOf({ ...minimal, attestors: [{ ...minimal.attestors[0], jwks_uri: 'https://k8s/jwks' }] })).toMatch(/exactly one of jwks, jwks_uri, jwks_file/);
    expect(errorOf({ ...minimal, tokens: { default_ttl: '1h', max_ttl: '15m' } })).toMatch(/tokens\.default_ttl: must not exceed/);
    expect(errorOf({ ...minimal, issuer: 'https://x/' })).toMatch(/issuer/);
  });

  it('requires an owner on every registration', () => {
    const { owner: _o, ...noOwner } = minimal.registrations[0]!;
    expect(errorOf({ ...minimal, registrations: [noOwner] })).toMatch(/registrations\[0\]\.owner: every registration needs an accountable owner/);
    expect(errorOf({ ...minimal, registrations: [{ ...noOwner, owner: ' ' }] })).toMatch(/registrations\[0\]\.owner: every registration needs an accountable owner/);
  });

  it('dev mode never listens beyond loopback', () => {
    expect(errorOf({ ...minimal, dev: true, listen: { host: '0.0.0.0', port: 1 } })).toMatch(/listen\.host: dev mode listens on loopback only/);
  });

  it('interpolates ${ENV} and ${ENV:-default}, and refuses an unset secret', () => {
    const doc = { ...minimal, store: { redis_url: '${REDIS:-redis://127.0.0.1:6379}' }, operators: [{ name: 'op', token: '${OP_TOKEN}' }] };
    const c = buildConfig(doc, 'x', { OP_TOKEN: 's3cret' });
    expect(c.operators[0]!.token).toBe('s3cret');
    expect(c.store).toEqual({ kind: 'redis', url: 'redis://127.0.0.1:6379' });
    expect(errorOf(doc, {})).toMatch(/operators\[0\]\.token: environment variable OP_TOKEN is not set/);
  });

  it('takes numbers from ${ENV} too (port, workers, limits), checked as numbers', () => {
    const doc = { ...minimal, store: { redis_url: 'redis://127.0.0.1:6379' }, listen: { port: '${PORT}' }, workers: '${WORKERS:-2}', limits: { body_bytes: '${BODY:-4096}' }, audit: { stream_max_len: '${AUDIT_LEN:-500}' } };
    const c = buildConfig(doc, 'x', { PORT: '9443' });
    expect(c.listen.port).toBe(9443);
    expect(c.workers).toBe(2);
    expect(c.limits.bodyBytes).toBe(4096);
    expect(c.audit.streamMaxLen).toBe(500);
    expect(errorOf(doc, { PORT: '70000' })).toMatch(/listen\.port/);
    expect(errorOf(doc, { PORT: '80a' })).toMatch(/listen\.port/);
    expect(errorOf(doc, { PORT: '' })).toMatch(/listen\.port/);
    expect(errorOf({ ...doc, listen: { port: 8443.5 } }, { PORT: '1' })).toMatch(/listen\.port/);
  });

  it('loads YAML and JSON files and reports unreadable or invalid files by path', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mayfly-cfg-'));
    const y = join(dir, 'm.yaml');
    writeFileSync(y, 'issuer: https://m.example\ntrust_domain: example.com\nstore: memory\n');
    expect(loadConfigFile(y, {}).issuer).toBe('https://m.example');
    const j = join(dir, 'm.json');
    writeFileSync(j, JSON.stringify(minimal));
    expect(loadConfigFile(j, {}).registrations).toHaveLength(1);
    writeFileSync(y, 'issuer: [unclosed');
    expect(() => loadConfigFile(y, {})).toThrow(/m\.yaml: not valid YAML/);
    expect(() => loadConfigFile(join(dir, 'missing.yaml'), {})).toThrow(/cannot read config file \(ENOENT\)/);
  });

  it('start-up names the config key whose file or directory cannot be used (a ConfigError: the CLI exits 2)', async () => {
    const { buildBroker } = await import('../../src/server.js');
    const dir = mkdtempSync(join(tmpdir(), 'mayfly-cfg-'));
    const plainFile = join(dir, 'plain');
    writeFileSync(plainFile, 'x');
    const jwks = join(dir, 'jwks.json');
    writeFileSync(jwks, '{"keys":[]}');
    const base = { ...minimal, keys: { dir: join(dir, 'keys') }, attestors: [{ ...minimal.attestors[0], jwks_file: jwks }] };
    const startError = async (doc: unknown) => {
      const e = await buildBroker(buildConfig(doc, 'cfg.yaml', {}), { logger: (await import('../../src/audit/logger.js')).createLogger('silent') }).then(
        () => undefined,
        (x: Error) => x,
      );
      expect(e).toBeInstanceOf(ConfigError);
      return e!.message;
    };
    expect(await startError({ ...base, attestors: [{ ...minimal.attestors[0], jwks_file: join(dir, 'missing.json') }] })).toMatch(/^attestors\[0\]\.jwks_file: .*ENOENT/);
    expect(await startError({ ...base, attestors: [{ ...minimal.attestors[0], jwks_file: plainFile }] })).toMatch(/^attestors\[0\]\.jwks_file: /);
    expect(await startError({ ...base, keys: { dir: join(plainFile, 'keys') } })).toMatch(/^keys\.dir: /);
    expect(await startError({ ...base, ca: { cert_file: join(dir, 'no-ca.pem'), key_file: join(dir, 'no-ca-key.pem') } })).toMatch(/^ca\.cert_file: .*ENOENT/);
  });

  it('every config file shipped in the repository is valid', () => {
    const env = { GITHUB_PROXY_SECRET: 'x', MAYFLY_OPERATOR_TOKEN: 'y', MAYFLY_CLIENT_SECRET: 'z' };
    for (const f of ['config/mayfly.example.yaml', 'deploy/mayfly.yaml']) expect(() => loadConfigFile(f, env)).not.toThrow();
    expect(devConfig(8080, {}).dev).toBe(true);
  });

  it('parses durations strictly', () => {
    expect(parseDuration('90s')).toBe(90_000);
    expect(parseDuration('1h30m')).toBe(5_400_000);
    expect(parseDuration('500ms')).toBe(500);
    for (const bad of ['', '10', '-5m', '5 m', '5x', '1.5h', 'm5', '0s', '5m ']) expect(parseDuration(bad)).toBeNull();
  });
});

describe('audit.stream_max_len', () => {
  it('bounds the embedded (memory) store audit trail too, not only Redis', async () => {
    const { buildBroker } = await import('../../src/server.js');
    const { createLogger } = await import('../../src/audit/logger.js');
    const dir = mkdtempSync(join(tmpdir(), 'mayfly-cfg-'));
    const jwks = join(dir, 'jwks.json');
    writeFileSync(jwks, '{"keys":[]}');
    const doc = { ...minimal, store: 'memory', keys: { dir: join(dir, 'keys') }, audit: { stream_max_len: 100 }, attestors: [{ ...minimal.attestors[0], jwks_file: jwks }] };
    const b = await buildBroker(buildConfig(doc, 'cfg.yaml', {}), { logger: createLogger('silent') });
    for (let i = 0; i < 300; i++) await b.audit.write('task.opened', { n: i });
    const kept = await b.store.readAudit('', 1000);
    expect(kept.length).toBeGreaterThanOrEqual(100);
    expect(kept.length).toBeLessThan(150); // trimmed in steps, like Redis's MAXLEN ~
    expect(kept.at(-1)!.event.n).toBe('299');
    await b.store.close();
    b.feed.close();
  });
});
