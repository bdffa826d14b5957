/**
 * The three servers under test, each started as its own child process on a free loopback port and
 * checked to answer correctly before any load is applied.
 */
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JSONWebKeySet } from 'jose';
import { startChild, type Child } from './child.js';
import type { HttpRequestSpec } from './mayfly-client.js';
import { freePort, LOOPBACK } from './net.js';
import { writeBrokerConfig } from './broker-config.js';
import { OIDC_CLIENT, OIDC_RESOURCE } from '../servers/oidc-client.js';

export interface Target {
  child: Child;
  baseUrl: string;
}

/** `flags`: e.g. ['--fixed-middleware'] (see bench/servers/bare-hono.ts). */
export async function startBareHono(root: string, flags: string[] = []): Promise<Target & { request: HttpRequestSpec }> {
  const port = await freePort();
  const baseUrl = `http://${LOOPBACK}:${port}`;
  const name = ['bare-hono', ...flags].join(' ');
  const child = await startChild({ name, args: ['bench/servers/bare-hono.ts', String(port), ...flags], readyUrl: `${baseUrl}/ready` }, root);
  const request: HttpRequestSpec = { method: 'POST', path: '/echo', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=ping&x=1' };
  const res = await fetch(baseUrl + request.path, { method: 'POST', headers: request.headers, body: request.body });
  if (res.status !== 200) throw new Error(`bare hono answered ${res.status}`);
  await res.arrayBuffer();
  return { child, baseUrl, request };
}

export async function startOidcProvider(root: string): Promise<Target & { request: HttpRequestSpec }> {
  const port = await freePort();
  const baseUrl = `http://${LOOPBACK}:${port}`;
  const child = await startChild(
    { name: 'oidc-provider', args: ['bench/servers/oidc-provider.ts', String(port)], readyUrl: `${baseUrl}/.well-known/openid-configuration` },
    root,
  );
  const basic = Buffer.from(`${OIDC_CLIENT.id}:${OIDC_CLIENT.secret}`).toString('base64');
  const request: HttpRequestSpec = {
    method: 'POST',
    path: '/token',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${basic}` },
    body: 'grant_type=client_credentials&scope=read',
  };
  try {
    await checkOidcIssuesJwt(baseUrl, request);
  } catch (e) {
    await child.stop();
    throw e;
  }
  return { child, baseUrl, request };
}

/** The comparison is only fair if the provider really signs an ES256 JWT per request: verify one. */
async function checkOidcIssuesJwt(baseUrl: string, req: HttpRequestSpec): Promise<void> {
  const res = await fetch(baseUrl + req.path, { method: 'POST', headers: req.headers, body: req.body });
  const body = (await res.json()) as { access_token?: string };
  if (res.status !== 200 || typeof body.access_token !== 'string') throw new Error(`oidc-provider token request failed: ${res.status} ${JSON.stringify(body)}`);
  const header = decodeProtectedHeader(body.access_token);
  if (header.alg !== 'ES256' || header.typ !== 'at+jwt') throw new Error(`oidc-provider token is not an ES256 at+jwt: ${JSON.stringify(header)}`);
  const discovery = (await (await fetch(`${baseUrl}/.well-known/openid-configuration`)).json()) as { jwks_uri: string };
  const jwks = (await (await fetch(discovery.jwks_uri)).json()) as JSONWebKeySet;
  await jwtVerify(body.access_token, createLocalJWKSet(jwks), { issuer: baseUrl, audience: OIDC_RESOURCE, algorithms: ['ES256'] });
}

export interface BrokerOptions {
  root: string;
  /** CLI entry relative to root: compiled JS (see build-broker.ts) or src/cli/main.ts through tsx. */
  entry: string;
  dir: string;
  redisUrl: string;
  prefix: string;
  jwksPath: string;
  /** Preload the profiler agent, writing the profile to this path. */
  cpuProfilePath?: string;
  /** Let the agent registration ask for certificates (see broker-config.ts); default off. */
  certificates?: boolean;
  /** The broker's `workers` setting (HTTP processes); default 1. */
  workers?: number;
  /** Extra flags for the broker's Node (its workers inherit them), e.g. GC settings to compare. */
  nodeFlags?: string[];
}

export async function startMayfly(o: BrokerOptions): Promise<Target> {
  const port = await freePort();
  const baseUrl = `http://${LOOPBACK}:${port}`;
  const config = writeBrokerConfig({ dir: o.dir, port, redisUrl: o.redisUrl, prefix: o.prefix, jwksPath: o.jwksPath, ...(o.certificates ? { certificates: true } : {}), ...(o.workers ? { workers: o.workers } : {}) });
  const child = await startChild(
    {
      name: o.cpuProfilePath ? 'mayfly (profiled)' : 'mayfly',
      args: [o.entry, 'serve', '--config', config],
      readyUrl: `${baseUrl}/readyz`,
      nodeFlags: [...(o.nodeFlags ?? []), ...(o.cpuProfilePath ? ['--import', pathToFileURL(join(o.root, 'bench/lib/profiler-agent.ts')).href] : [])],
      ...(o.cpuProfilePath ? { env: { BENCH_CPU_PROFILE: o.cpuProfilePath } } : {}),
    },
    o.root,
  );
  return { child, baseUrl };
}
