/**
 * The baseline: CloudFlare's cfssl (`cfssl serve`, Debian package golang-cfssl) as an online CA on
 * 127.0.0.1, signing with its own P-256 CA (made with openssl) through POST /api/v1/cfssl/sign
 * {"certificate_request": "<PEM>"}. Its config is minimal: one default signing profile with
 * digital signature + server auth + client auth and the broker's lifetime: notBefore backdated 30 s,
 * notAfter 5 min after now (cfssl counts the expiry from its backdated notBefore, and by default
 * backdates 5 min from the minute-rounded time, so a bare "5m" expiry gives certificates that are
 * already expired about half the time).
 * No auth key, no database, no bundles: the cheapest configuration cfssl serves certificates in.
 *
 * When cfssl is missing and this process is root with apt-get, it is installed (`apt-get install -y
 * golang-cfssl`, then `apt-get update` and again if that fails); otherwise the baseline is skipped
 * and the reason reported.
 */
import { spawnSync } from 'node:child_process';
import { accessSync, constants, writeFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { startChild, type Child } from '../lib/child.js';
import type { HttpRequestSpec } from '../lib/mayfly-client.js';
import { freePort, LOOPBACK } from '../lib/net.js';
import { checkIssued, type IssuedCheck } from './mayfly-certs.js';
import type { BenchCsr } from './csr.js';

export const CFSSL_EXPIRY = '5m30s';
export const CFSSL_BACKDATE = '30s';

function onPath(cmd: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    try {
      accessSync(join(dir, cmd), constants.X_OK);
      return join(dir, cmd);
    } catch {
      // not here
    }
  }
  return null;
}

function run(argv: string[], log: (m: string) => void): boolean {
  log(`$ ${argv.join(' ')}`);
  // the tool's output goes to stderr, next to the bench's progress lines; stdout is for the results
  const r = spawnSync(argv[0]!, argv.slice(1), { stdio: ['ignore', 2, 2], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }, timeout: 300_000 });
  if (r.error) log(`could not run ${argv[0]}: ${r.error.message}`);
  return r.status === 0;
}

export type CfsslBinary = { path: string; version: string; installedNow: boolean } | { path: null; reason: string };

/** Finds cfssl, installing Debian's golang-cfssl when it is missing and we can. */
export function ensureCfssl(log: (m: string) => void): CfsslBinary {
  let path = onPath('cfssl');
  let installedNow = false;
  if (!path) {
    const root = typeof process.getuid === 'function' && process.getuid() === 0;
    if (!root) return { path: null, reason: 'cfssl is not installed and the bench is not root (install it with: apt-get install golang-cfssl)' };
    if (!onPath('apt-get')) return { path: null, reason: 'cfssl is not installed and there is no apt-get to install golang-cfssl with' };
    log('cfssl not found: installing Debian package golang-cfssl');
    const install = ['apt-get', 'install', '-y', '--no-install-recommends', 'golang-cfssl'];
    const ok = run(install, log) || (run(['apt-get', 'update'], log) && run(install, log));
    path = onPath('cfssl');
    if (!ok || !path) return { path: null, reason: 'cfssl is not installed and `apt-get install -y golang-cfssl` failed (see the log above)' };
    installedNow = true;
  }
  const v = spawnSync(path, ['version'], { encoding: 'utf8', timeout: 10_000 });
  const version = `${v.stdout ?? ''}${v.stderr ?? ''}`.trim().split('\n').map((l) => l.trim()).filter(Boolean).join('; ') || 'unknown';
  return { path, version, installedNow };
}

function openssl(args: string[]): void {
  const r = spawnSync('openssl', args, { encoding: 'utf8', timeout: 30_000 });
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')} failed: ${r.error?.message ?? r.stderr}`);
}

export interface CfsslFiles {
  caPem: string;
  caKey: string;
  config: string;
}

/** A P-256 self-signed CA (openssl, ecdsa-with-SHA256) and the minimal signing config, under `dir`. */
export function writeCfsslFiles(dir: string): CfsslFiles {
  const caKey = join(dir, 'cfssl-ca-key.pem');
  const caPem = join(dir, 'cfssl-ca.pem');
  const config = join(dir, 'cfssl-config.json');
  openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', caKey]);
  openssl(['req', '-x509', '-new', '-key', caKey, '-sha256', '-days', '2', '-subj', '/O=bench.local/CN=cfssl bench CA', '-out', caPem]);
  const cfg = { signing: { default: { usages: ['digital signature', 'server auth', 'client auth'], expiry: CFSSL_EXPIRY, backdate: CFSSL_BACKDATE } } };
  writeFileSync(config, JSON.stringify(cfg, null, 2), { mode: 0o600 });
  return { caPem, caKey, config };
}

/** What the load generator accepts as a real answer: success and a PEM certificate in the result. */
export const cfsslIssuedBody = (b: string) => b.includes('"success":true') && b.includes('-----BEGIN CERTIFICATE-----');

export function cfsslSignRequest(csrs: readonly BenchCsr[]): HttpRequestSpec {
  const bodies = csrs.map((c) => JSON.stringify({ certificate_request: c.pem }));
  return {
    method: 'POST',
    path: '/api/v1/cfssl/sign',
    headers: { 'content-type': 'application/json' },
    body: bodies[0]!,
    ...(bodies.length > 1 ? { bodies } : {}),
    verifyBody: cfsslIssuedBody,
  };
}

export interface CfsslServer {
  child: Child;
  baseUrl: string;
}

export async function startCfssl(root: string, bin: string, f: CfsslFiles): Promise<CfsslServer> {
  const port = await freePort();
  const baseUrl = `http://${LOOPBACK}:${port}`;
  const child = await startChild(
    {
      name: 'cfssl serve',
      command: bin,
      args: ['serve', '-address', LOOPBACK, '-port', String(port), '-ca', f.caPem, '-ca-key', f.caKey, '-config', f.config, '-loglevel', '3'],
      // no health endpoint in every cfssl version: any HTTP answer from the sign endpoint means it is up
      readyUrl: `${baseUrl}/api/v1/cfssl/sign`,
      readyStatus: (s) => s > 0,
    },
    root,
  );
  return { child, baseUrl };
}

/** Signs one CSR and checks the answer really is a certificate for it from our CA. */
export async function checkCfsslIssues(s: CfsslServer, csr: BenchCsr, caPem: string): Promise<IssuedCheck> {
  const req = cfsslSignRequest([csr]);
  const res = await fetch(s.baseUrl + req.path, { method: 'POST', headers: req.headers, body: req.body, signal: AbortSignal.timeout(10_000) });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`cfssl sign: HTTP ${res.status}: ${text.slice(0, 400)}\n--- cfssl output ---\n${s.child.output()}`);
  if (!cfsslIssuedBody(text)) throw new Error(`cfssl answer not recognised by the load generator's check: ${text.slice(0, 400)}`);
  const body = JSON.parse(text) as { success: boolean; result?: { certificate?: string } };
  if (!body.result?.certificate) throw new Error(`cfssl answered without a certificate: ${text.slice(0, 400)}`);
  return checkIssued('cfssl', body.result.certificate, caPem, csr);
}
