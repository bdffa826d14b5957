/** The broker's YAML config for the bench: Redis store, ES256, one JWT attestor, orch + agent, one RS client. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ATTEST_AUDIENCE, ATTEST_ISSUER } from './attestation.js';
import { LOOPBACK } from './net.js';

export const TRUST_DOMAIN = 'bench.local';
export const ORCH_ID = `spiffe://${TRUST_DOMAIN}/orch`;
export const AGENT_ID = `spiffe://${TRUST_DOMAIN}/agent`;
export const AUDIENCE = 'https://api.example';
export const RS_CLIENT = { id: 'rs', secret: 'rs-secret' } as const;

export interface BrokerConfigInput {
  dir: string;
  port: number;
  redisUrl: string;
  jwksPath: string;
  /** Redis key prefix (no `{` or `}`). */
  prefix: string;
  /** Register the agent with `certificates: true` (X509-SVIDs at POST /v1/certificates); default off. */
  certificates?: boolean;
  /** `workers` (HTTP processes sharing the port); default 1. */
  workers?: number;
}

/** Writes `<dir>/mayfly.yaml` and returns its path. Every string is JSON-quoted (valid YAML flow scalars). */
export function writeBrokerConfig(i: BrokerConfigInput): string {
  const q = (s: string) => JSON.stringify(s);
  const reg = (id: string, sub: string, role: string, extra = '') =>
    `  - { spiffe_id: ${q(id)}, attestor: bench, match: { sub: ${sub} }, owner: bench@example.com, roles: [${role}], scopes: [read, write], tools: [t1, t2], audiences: [${q(AUDIENCE)}]${extra} }`;
  const yaml = [
    `issuer: ${q(`http://${LOOPBACK}:${i.port}`)}`,
    `trust_domain: ${TRUST_DOMAIN}`,
    `listen: { host: ${LOOPBACK}, port: ${i.port} }`,
    `store: { redis_url: ${q(i.redisUrl)}, prefix: ${q(i.prefix)} }`,
    `workers: ${i.workers ?? 1}`,
    `tokens: { default_ttl: 5m, max_ttl: 15m, alg: ES256 }`,
    `tasks: { default_ttl: 1h, max_ttl: 24h }`,
    `keys: { dir: ${q(join(i.dir, 'keys'))} }`,
    `log: { level: warn }`,
    `attestors:`,
    `  - { name: bench, type: jwt, issuer: ${q(ATTEST_ISSUER)}, audience: ${ATTEST_AUDIENCE}, jwks_file: ${q(i.jwksPath)} }`,
    `registrations:`,
    reg(ORCH_ID, 'orch', 'orchestrator'),
    reg(AGENT_ID, 'agent', 'agent', i.certificates ? ', certificates: true' : ''),
    `clients: [ { client_id: ${RS_CLIENT.id}, client_secret: ${RS_CLIENT.secret} } ]`,
    `operators: [ { name: admin, token: admin-token } ]`,
    '',
  ].join('\n');
  const path = join(i.dir, 'mayfly.yaml');
  writeFileSync(path, yaml, { mode: 0o600 });
  return path;
}
