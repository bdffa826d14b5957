/**
 * Where an agent's proof of identity comes from: an attestation JWT the broker's attestors trust
 * (a Kubernetes projected service-account token, a GitHub Actions OIDC token, a dev token...).
 */
import { readFile } from 'node:fs/promises';
import { endpoint, jsonOrThrow, request, type FetchLike } from '../http.js';
import { unverifiedClaims } from './claims.js';

export interface AttestationSource {
  /** What kind of source this is, for messages. */
  readonly kind: string;
  /** A currently valid attestation JWT. */
  token(): Promise<string>;
}

const defaultFetch: FetchLike = (...a) => fetch(...a);

/** A fixed token (tests, short scripts). */
export function staticToken(token: string): AttestationSource {
  return { kind: 'static', token: async () => token };
}

/** A token file, re-read on every use: Kubernetes rotates projected service-account tokens in place. */
export function fileToken(path: string): AttestationSource {
  return {
    kind: `file:${path}`,
    async token() {
      const t = (await readFile(path, 'utf8')).trim();
      if (!t) throw new Error(`attestation file ${path} is empty`);
      return t;
    },
  };
}

/** Fetches through `get` and reuses the token until a minute before its `exp`; concurrent calls share one fetch. */
function cached(kind: string, get: () => Promise<string>, now: () => number): AttestationSource {
  let current: { token: string; until: number } | undefined;
  let inflight: Promise<string> | undefined;
  return {
    kind,
    async token() {
      if (current && now() < current.until) return current.token;
      inflight ??= get()
        .then((t) => {
          const exp = unverifiedClaims(t)?.exp;
          current = { token: t, until: typeof exp === 'number' ? exp * 1000 - 60_000 : 0 };
          return t;
        })
        .finally(() => (inflight = undefined));
      return inflight;
    },
  };
}

/**
 * GitHub Actions OIDC (`permissions: id-token: write`): ACTIONS_ID_TOKEN_REQUEST_URL and
 * ACTIONS_ID_TOKEN_REQUEST_TOKEN from the environment, `audience` as the broker's attestor expects.
 */
export function githubActions(o: { audience: string; env?: NodeJS.ProcessEnv; fetch?: FetchLike; now?: () => number }): AttestationSource {
  const env = o.env ?? process.env;
  const f = o.fetch ?? defaultFetch;
  return cached(
    'github-actions',
    async () => {
      const url = env.ACTIONS_ID_TOKEN_REQUEST_URL;
      const bearer = env.ACTIONS_ID_TOKEN_REQUEST_TOKEN;
      if (!url || !bearer) throw new Error('not in GitHub Actions with id-token: write (ACTIONS_ID_TOKEN_REQUEST_URL/TOKEN unset)');
      const u = new URL(url);
      u.searchParams.set('audience', o.audience);
      const body = await jsonOrThrow<{ value?: unknown }>(await request(f, u.href, { headers: { authorization: `bearer ${bearer}`, accept: 'application/json' } }));
      if (typeof body?.value !== 'string') throw new Error('GitHub Actions OIDC answer has no token value');
      return body.value;
    },
    o.now ?? Date.now,
  );
}

/** The broker's dev attestor (POST /dev/attest; dev mode only). */
export function devAttestor(brokerUrl: string, workload: string, o: { fetch?: FetchLike; now?: () => number } = {}): AttestationSource {
  const f = o.fetch ?? defaultFetch;
  return cached(
    `dev:${workload}`,
    async () => {
      const res = await request(f, endpoint(brokerUrl, '/dev/attest'), {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ workload }),
      });
      const body = await jsonOrThrow<{ token?: unknown }>(res);
      if (typeof body?.token !== 'string') throw new Error('dev attestor answer has no token');
      return body.token;
    },
    o.now ?? Date.now,
  );
}
