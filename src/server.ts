/**
 * Assembling and running a broker: config -> store, keys, attestors, audit -> hono app -> HTTP server.
 */
import { getRequestListener, type ServerType } from '@hono/node-server';
import { createServer as createHttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Config } from './config/config.js';
import type { Broker } from './broker.js';
import { systemClock, randomId, type Clock } from './clock.js';
import { createStore } from './store/index.js';
import type { Store } from './store/store.js';
import { Keyring } from './keys/keyring.js';
import { createLogger, type Logger } from './audit/logger.js';
import { Audit } from './audit/audit.js';
import { Attestation } from './attest/attestation.js';
import type { Attestor } from './attest/attestor.js';
import { JwtAttestor } from './attest/jwt-attestor.js';
import { createDevAttestor } from './attest/dev-attestor.js';
import { AccessTokenVerifier } from './issue/access-token.js';
import { createApp } from './http/app.js';
import { FeedHub } from './feed/hub.js';
import { IssuerStates } from './issue/issuer-states.js';
import { TaskCache } from './tasks/cache.js';
import { caValidity, loadAuthority } from './ca/authority.js';
import { CrlService } from './ca/crl-service.js';
import { loadCertificateAttestors } from './attest/client-certificate.js';
import { DpopNonces } from './attest/dpop-nonce.js';
import { nativeStatus } from './native/index.js';
import { X509Certificate } from 'node:crypto';
import { readConfigFile, readPasswordFile } from './config/files.js';
import { openPemPrivateKey, PrivateKeyError } from './x509/index.js';
import { createServer as createHttpsServer } from 'node:https';
import { createSecureContext } from 'node:tls';
import type { TLSSocket } from 'node:tls';
import { answerClientErrors, answerExpectations, requireHost } from './http/client-errors.js';
import { withFastPath } from './http/fast-path.js';
import { ConfigError } from './config/load.js';
import { primaryAddress, serveHandedConnections } from './balancer.js';

export interface BuildOptions {
  clock?: Clock;
  store?: Store;
  logger?: Logger;
}

/**
 * A start-up step that reads what a config key names (a file, a directory, a key set): a failure says
 * which key, as config validation does, and the CLI exits 2 with that line rather than a stack trace.
 */
async function fromConfig<T>(key: string, step: () => T | Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    const message = (e as Error).message ?? String(e);
    throw new ConfigError(message.startsWith(key) ? message : `${key}: ${message}`);
  }
}

export async function buildBroker(config: Config, opts: BuildOptions = {}): Promise<Broker> {
  const clock = opts.clock ?? systemClock;
  const log = opts.logger ?? createLogger(config.log.level);
  const store =
    opts.store ??
    createStore(
      config.store.kind === 'memory'
        ? { kind: 'memory', auditMaxLen: config.audit.streamMaxLen }
        : { ...config.store, auditMaxLen: config.audit.streamMaxLen },
      clock,
    );
  // once per outage and once when it ends: every request in between answers 503 (fail closed)
  store.onAvailability?.((up, err) =>
    up
      ? log.info('store reachable again: issuing and answering as before')
      : log.error({ err: err?.message }, 'store unreachable: nothing is issued or reported active until it returns (503)'),
  );
  const keyring = await fromConfig('keys.dir', () => Keyring.open(config.keysDir, config.tokens.alg, { publishAheadMs: config.keysPublishAheadMs, now: () => clock.now() }));
  const attestors: Attestor[] = [];
  for (const [i, a] of config.attestors.entries()) {
    const key = `attestors[${i}].${a.jwksFile ? 'jwks_file' : a.jwksUri ? 'jwks_uri' : 'jwks'}`;
    const attestor = await fromConfig(key, () => new JwtAttestor(a));
    attestors.push(attestor);
    // fails closed (no workload attests with it), but is most likely a placeholder not yet filled in
    if (attestor.keyCount === 0) log.warn(`${key}: the key set is empty: no workload attests with attestor "${a.name}" until it holds its issuer's keys`);
  }
  let devMint: Broker['devMint'];
  if (config.dev) {
    const dev = await createDevAttestor(config.issuer);
    attestors.push(dev.attestor);
    devMint = dev.mint;
  }
  const ca = await fromConfig(config.ca ? 'ca' : 'keys.dir', () => loadAuthority(config, new Date(clock.now())));
  if (ca.rootPem === undefined)
    log.warn(
      'ca: no self-signed root in cert_file or chain_file, so GET /v1/ca/bundle serves the issuing CA itself as the trust anchor; ' +
        'relying parties that need a root (openssl verify without -partial_chain, most TLS stacks) must get it elsewhere: add it to chain_file',
    );
  // a CA past its notAfter issues nothing (policy/rules/within-ca-validity.ts); said at start, and a day ahead
  const caState = caValidity(ca, clock.now());
  if (caState !== 'valid')
    log[caState === 'expired' ? 'error' : 'warn']({ not_after: ca.notAfter.toISOString() }, caState === 'expired' ? 'ca: the CA certificate has expired: no certificate is issued until it is replaced' : 'ca: the CA certificate expires within a day: certificates are cut short to it, then none is issued');
  const native = nativeStatus();
  if (!native.ecdsa && process.env.MAYFLY_NATIVE !== '0')
    log.warn({ reason: native.reason }, 'csr: src/native is not loaded; EC CSR signatures are checked with node:crypto (about 2x the CPU per new agent key)');
  const broker: Omit<Broker, 'crl'> & { crl?: CrlService } = {
    config,
    store,
    keyring,
    clock,
    ids: randomId,
    log,
    audit: new Audit(log, store),
    attestation: new Attestation(attestors, config.registrations, config.issuer, clock),
    accessTokens: new AccessTokenVerifier(keyring, config.issuer),
    feed: new FeedHub(store),
    taskCache: new TaskCache(),
    issuerStates: new IssuerStates(),
    ca,
    caAnchors: [new X509Certificate(ca.cert.der)],
    certificateAttestors: loadCertificateAttestors(config.certificateAttestors),
    ...(config.dpop.requireNonce ? { dpopNonces: DpopNonces.fromCaKey(ca.key, config.dpop.nonceLifetimeMs) } : {}),
    ...(devMint ? { devMint } : {}),
  };
  broker.crl = new CrlService(broker as Broker);
  broker.crl.warm();
  return broker as Broker;
}

/**
 * HTTPS with client certificates asked for but not required (`requestCert`, not `rejectUnauthorized`):
 * a caller without one still reaches every endpoint with its other credentials; one with a certificate
 * proved it holds its key, which attest/client-certificate.ts and RFC 8705 binding build on. The
 * handshake offers the broker's CA and every x509 attestor's anchors as acceptable issuers; whether a
 * certificate is trusted is decided per request, by the attestation, not by the handshake.
 */
function tlsOptions(b: Broker, t: { certFile: string; keyFile: string; keyPasswordFile?: string }) {
  const ca = [b.ca.cert.pem, ...b.certificateAttestors.flatMap((a) => a.anchors.map((x) => x.toString()))];
  const keyPem = readConfigFile(t.keyFile, 'listen.tls.key_file');
  // the key is opened here, so a missing or wrong password is a clear start-up error rather than
  // OpenSSL's when the server is made
  const password = t.keyPasswordFile ? readPasswordFile(t.keyPasswordFile, 'listen.tls.key_password_file') : undefined;
  try {
    openPemPrivateKey(keyPem, password);
  } catch (e) {
    const problem = e instanceof PrivateKeyError ? e.problem : 'not_a_key';
    throw new Error(
      problem === 'needs_password'
        ? 'listen.tls.key_file is encrypted: give its password in listen.tls.key_password_file'
        : problem === 'wrong_password'
          ? 'listen.tls.key_file cannot be decrypted with the password in listen.tls.key_password_file'
          : `listen.tls.key_file is not a private key PEM (${(((e as Error).cause as Error | undefined) ?? (e as Error)).message.split('\n')[0]})`,
      { cause: e },
    );
  }
  // node:tls gets the same PEM and passphrase (empty without one: never a prompt)
  const options = { cert: readConfigFile(t.certFile, 'listen.tls.cert_file'), key: keyPem, passphrase: password ?? '', ca, requestCert: true, rejectUnauthorized: false };
  try {
    createSecureContext(options); // what the server will make: a certificate that is none, or not the key's, is said here
  } catch (e) {
    throw new Error(`listen.tls.cert_file and listen.tls.key_file do not make a TLS server (${(e as Error).message.split('\n')[0]}): the certificate must be PEM and the key's own`, { cause: e });
  }
  return options;
}

export interface Running {
  broker: Broker;
  server: ServerType;
  url: string;
  close(): Promise<void>;
}

/**
 * A request must arrive whole within 30 s, its headers within 20 s (checked every 5 s): bodies are
 * at most limits.body_bytes, so a client that trickles one, or stops half-way, only holds a connection
 * that long (Node's defaults: 300 s and 60 s). Answers (the SSE stream) are not limited.
 */
const SLOW_CLIENTS = { requestTimeout: 30_000, headersTimeout: 20_000, connectionsCheckingInterval: 5_000 };
/** Node's own answer to a request without Host has no body: http/client-errors.ts requireHost answers it instead. */
const SERVER_OPTIONS = { ...SLOW_CLIENTS, requireHostHeader: false };

export async function startBroker(config: Config, opts: BuildOptions = {}): Promise<Running> {
  const broker = await buildBroker(config, opts);
  const app = createApp(broker);
  let tls: ReturnType<typeof tlsOptions> | undefined;
  let server: ServerType;
  const behind = primaryAddress();
  try {
    const t = config.listen.tls;
    tls = t ? await fromConfig('listen.tls', () => tlsOptions(broker, t)) : undefined;
    // the hono app behind the one route node:http answers directly (http/fast-path.ts)
    const listener = requireHost(withFastPath(broker, getRequestListener(app.fetch, { hostname: config.listen.host })));
    // a TLS handshake must end within limits.idle_timeout (at most the header timeout): the idle timeout
    // starts only with the HTTP connection, after it (node:tls's own default is 120 s)
    const handshakeTimeout = Math.min(config.limits.idleTimeoutMs, SLOW_CLIENTS.headersTimeout);
    const s = tls ? createHttpsServer({ ...tls, ...SERVER_OPTIONS, handshakeTimeout }, listener) : createHttpServer(SERVER_OPTIONS, listener);
    // a worker behind a primary serves the connections it hands over (balancer.ts); otherwise, listen
    server = behind
      ? s
      : await new Promise<ServerType>((resolve, reject) => {
          s.once('error', reject);
          s.listen(config.listen.port, config.listen.host, () => resolve(s));
        });
  } catch (e) {
    // not listening (a TLS key that does not open, a port in use): let go of what was opened
    broker.feed.close();
    await broker.store.close().catch(() => undefined);
    throw e;
  }
  // the certificate a connection presented is read once per connection (http/client-certificate.ts):
  // no renegotiation may swap it (RFC 5746 aside, TLS 1.2 lets a client renegotiate with another one)
  if (tls) server.on('secureConnection', (socket: TLSSocket) => socket.disableRenegotiation());
  answerClientErrors(server);
  answerExpectations(server as Parameters<typeof answerExpectations>[0], config.limits.bodyBytes);
  // a connection with nothing sent either way for limits.idle_timeout is closed, one that never sent a
  // request too (Node's header and request timeouts only start with a first byte)
  (server as { setTimeout(ms: number): unknown }).setTimeout(config.limits.idleTimeoutMs);
  const stopTaking = behind ? serveHandedConnections(server as Parameters<typeof serveHandedConnections>[0]) : () => undefined;
  const addr = behind ?? (server.address() as AddressInfo);
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  // this process's CRL follows every replica's revocations (rebuilt in the background, not on a fetch)
  const unwatch = broker.crl.watch(broker.feed);
  return {
    broker,
    server,
    url: `${tls ? 'https' : 'http'}://${host}:${addr.port}`,
    close: async () => {
      stopTaking();
      unwatch();
      broker.feed.close();
      const closing = new Promise<void>((r) => server.close(() => r()));
      (server as { closeAllConnections?: () => void }).closeAllConnections?.(); // long-lived SSE streams
      await closing;
      await broker.store.close();
    },
  };
}
