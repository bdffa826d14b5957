/** The validated, normalised configuration the broker runs on (durations in milliseconds). */
import type { ATTESTATION_ALGS, SIGNING_ALGS } from './schema.js';

export type SigningAlg = (typeof SIGNING_ALGS)[number];
export type AttestationAlg = (typeof ATTESTATION_ALGS)[number];
export type Role = 'agent' | 'orchestrator';

export interface AttestorConfig {
  name: string;
  type: 'jwt' | 'dev';
  issuer: string;
  audience: string[];
  jwks?: { keys: Record<string, unknown>[] };
  jwksUri?: string;
  jwksFile?: string;
  algorithms: AttestationAlg[];
  maxTokenAgeMs: number;
  clockSkewMs: number;
}

/** Client certificates chaining to one of `trustBundle` (PEM) attest (attest/client-certificate.ts). */
export interface CertificateAttestorConfig {
  name: string;
  trustBundleFile: string;
}

export interface Registration {
  spiffeId: string;
  attestor: string;
  match: Record<string, string | number | boolean>;
  owner: string;
  roles: Role[];
  scopes: string[];
  tools: string[];
  audiences: string[];
  /** Agent patterns this orchestrator may put in a task; undefined means any ID in the trust domain. */
  agents?: string[];
  maxTtlMs?: number;
  certificates: boolean;
}

export interface Config {
  issuer: string;
  trustDomain: string;
  listen: {
    host: string;
    port: number;
    tls?: { certFile: string; keyFile: string; keyPasswordFile?: string };
    forwardedClientCertificate?: { header: string; format: 'xfcc' | 'pem'; trustedProxies: string[] };
  };
  store: { kind: 'memory' } | { kind: 'redis'; url: string; prefix?: string } | { kind: 'redis'; cluster: string[]; prefix?: string };
  /** HTTP worker processes (1: the broker runs in this process; "auto" resolved to the CPU count). */
  workers: number;
  tokens: { defaultTtlMs: number; maxTtlMs: number; alg: SigningAlg };
  tasks: { defaultTtlMs: number; maxTtlMs: number; retentionMs: number };
  keysDir: string;
  /** How long a new signing key is published before it signs (keys.publish_ahead). */
  keysPublishAheadMs: number;
  attestors: AttestorConfig[];
  /** `type: x509` attestors (they need listen.tls). */
  certificateAttestors: CertificateAttestorConfig[];
  registrations: Registration[];
  clients: { clientId: string; clientSecret: string }[];
  operators: { name: string; token: string }[];
  feed: { heartbeatMs: number };
  dpop: { requireNonce: boolean; nonceLifetimeMs: number };
  /** idleTimeoutMs: a connection with nothing sent either way this long is closed (one that never sends a request too). */
  limits: { bodyBytes: number; idleTimeoutMs: number };
  audit: { streamMaxLen: number };
  log: { level: string };
  dev: boolean;
  /** The certificate authority; absent: a CA generated once in `<keysDir>/ca` (dev mode: in memory). */
  ca?: { certFile: string; keyFile: string; keyPasswordFile?: string; chainFile?: string; backdateMs: number; crlValidityMs: number };
  caDefaults: { backdateMs: number; crlValidityMs: number };
  /** Where the config came from (a path, or "embedded dev default"). */
  source: string;
}
